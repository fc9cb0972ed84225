package rulestest

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that no test file makes the parser panic or hang, that
// every refusal is located, and that an accepted file has the invariants
// the runner relies on. It does not run the tests: a fuzzed rules file can
// ask the engine for years of one-nanosecond windows.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/tests/*.yaml")
	files = append(files, "../../examples/rules_test.yaml")
	for _, p := range files {
		if b, err := os.ReadFile(p); err == nil {
			f.Add(b)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		s, err := Parse("fuzz.yaml", data)
		if err != nil {
			if s != nil {
				t.Fatal("a suite and an error")
			}
			return
		}
		if s.RuleFile == "" && s.Rules == nil {
			t.Fatal("accepted without rules")
		}
		if len(s.Tests) == 0 {
			t.Fatal("accepted without tests")
		}
		names := map[string]bool{}
		for _, tc := range s.Tests {
			if tc.Name == "" && names[""] || names[tc.Name] {
				t.Fatalf("duplicate test name %q accepted", tc.Name)
			}
			names[tc.Name] = true
			if len(tc.records) > maxRecordsPerTest {
				t.Fatalf("%d records accepted", len(tc.records))
			}
			for i, r := range tc.records {
				if n := btoi(r.i != nil) + btoi(r.r != nil) + btoi(r.cu != nil); n != 1 {
					t.Fatal("record is not exactly one of interaction, receipt, profile")
				}
				if i > 0 && r.at.Before(tc.records[i-1].at) {
					t.Fatal("records out of time order")
				}
			}
			for _, c := range tc.checks {
				for _, x := range c.firing {
					if x.rule == "" || !x.hasLabels {
						t.Fatalf("firing expectation without rule or labels: %+v", x)
					}
				}
				if !tc.Watermark.IsZero() && c.at.After(tc.Watermark) {
					t.Fatal("check after the final watermark accepted")
				}
			}
			if len(tc.checks) == 0 && tc.expRecs == nil && tc.expResnd == nil {
				t.Fatal("test expecting nothing accepted")
			}
		}
	})
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}
