package testenv

import (
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// RepoPath is path (e.g. deploy/local/kafka.sh) inside the repository the
// test runs in, found from the test's folder up to go.mod: for tests that
// start a private server with the project's own scripts.
func RepoPath(t testing.TB, path string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, path)
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test's folder")
		}
		dir = parent
	}
}

// FreePorts returns n loopback ports that were free a moment ago, for a
// private server's listeners.
func FreePorts(t testing.TB, n int) []string {
	t.Helper()
	var ports []string
	var lns []net.Listener
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, ln)
		ports = append(ports, strconv.Itoa(ln.Addr().(*net.TCPAddr).Port))
	}
	for _, ln := range lns {
		ln.Close()
	}
	return ports
}
