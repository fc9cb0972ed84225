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
			for _, f := range r.Fields {
				if f.Customer && r.Kind != KindDrop && r.Kind != KindThreshold && r.Kind != KindRatio && r.Kind != KindEvent {
					t.Fatalf("rule %q accepted with customer.* in a key", r.Name)
				}
			}
			switch r.Kind {
			case KindEvent:
				if r.Lasts <= 0 {
					t.Fatalf("event rule %q accepted without lasts", r.Name)
				}
			case KindDeadline:
				if r.DueOf == nil || len(r.Stages) == 0 {
					t.Fatalf("deadline rule %q accepted without due or stages", r.Name)
				}
				for i := 1; i < len(r.Stages); i++ {
					if r.Stages[i].At <= r.Stages[i-1].At {
						t.Fatalf("deadline rule %q accepted with stages out of order", r.Name)
					}
				}
			case KindCalendar:
				if r.DateOf == nil || r.Lasts <= 0 || r.Source != SourceCustomers {
					t.Fatalf("calendar rule %q accepted without date, lasts or source customers", r.Name)
				}
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
