package rules

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no input makes the parser panic, and that an
// accepted file has the invariants the engine relies on.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/rules/*.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	if b, err := os.ReadFile("../../examples/rules.yaml"); err == nil {
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		if file.Version != 1 || file.Defaults.Location == nil || file.Defaults.AllowedLateness <= 0 {
			t.Fatalf("accepted file without defaults: %+v", file.Defaults)
		}
		names := map[string]bool{}
		for _, r := range file.Rules {
			if names[r.Name] {
				t.Fatalf("duplicate rule %q accepted", r.Name)
			}
			names[r.Name] = true
			if len(r.Fields) == 0 {
				t.Fatalf("rule %q accepted without key fields", r.Name)
			}
			switch r.Kind {
			case KindThreshold, KindRatio:
				if r.Compare == nil {
					t.Fatalf("rule %q accepted without op", r.Name)
				}
			case KindDrop:
				if r.Window <= 0 || r.ForWindows < 1 || r.Baseline == nil {
					t.Fatalf("drop rule %q accepted without window/for/baseline", r.Name)
				}
			}
		}
		for _, p := range file.Resend {
			if p.MaxAttempts < 1 || p.Backoff.Multiplier < 1 {
				t.Fatalf("policy %q accepted with bad limits", p.Name)
			}
		}
	})
}
