package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/prometheus/common/version"
)

const versionUsage = `Usage: crmpulse version

Prints the version, the VCS revision it was built from and the Go version.
The same values are exported by 'crmpulse run' as the crmpulse_build_info
metric. Release builds set the version with
  -ldflags "-X github.com/prometheus/common/version.Version=1.2.3"
`

func init() {
	// A plain `go build` or `go install` has no ldflags: take the module
	// version and the VCS stamp Go records in the binary.
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return
	}
	if version.Version == "" {
		version.Version = bi.Main.Version
		if version.Version == "" || version.Version == "(devel)" {
			version.Version = "devel"
		}
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.time" && version.BuildDate == "" {
			version.BuildDate = s.Value
		}
	}
}

func cmdVersion(w io.Writer, args []string) int {
	for _, a := range args {
		switch a {
		case "-h", "-help", "--help":
			fmt.Fprint(w, versionUsage)
			return exitOK
		default:
			fmt.Fprintf(w, "crmpulse version: unexpected argument %q\n\n%s", a, versionUsage)
			return exitUsage
		}
	}
	fmt.Fprintln(w, version.Print("crmpulse"))
	return exitOK
}
