package rules

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// FuzzParse checks that no input makes the parser panic, and that an
// accepted file has the invariants the engine relies on: finite numbers,
// durations within MaxDuration, windows of at least MinWindow, baselines
// within MaxBaselineBuckets, and annotation templates that pass the static
// rule and render within MaxAnnotationBytes.
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
	for _, s := range []string{
		rule(thr + "window: 1h, threshold: .inf"),
		rule(thr + "window: 999ms, threshold: 1"),
		rule(thr + "window: 1s, threshold: 1.7976931348623157e308"),
		rule(drp + "window: 1us, baseline: {windows: 3}"),
		rule(drp + "window: 1s, baseline: {season: 2000s, seasons: 5}"),
		rule(rat + "window: 1ns, threshold: 0.5"),
		rule(inact + "idle_for: 100000w"),
		rule(inact + "idle_for: 3650d"),
		annot(`{{range 10}}{{printf "%9999999d" 1}}{{end}}`),
		annot(`{{range $k, $v := .Labels}}{{printf "%100s" $v}}{{end}}`),
		annot(`{{$a := print .Labels.customer_id .Labels.customer_id}}{{print $a $a $a $a}}`),
		annot(`{{define "x"}}{{template "x"}}{{end}}`),
		pol + "max_attempts: 100, backoff: {initial: 1m, multiplier: 1e300}}\n",
	} {
		f.Add([]byte(s))
	}
	bigLabels := map[string]string{"customer_id": strings.Repeat("c", 5000), "tenant": strings.Repeat("t", 5000)}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse(data)
		if err != nil {
			return
		}
		if file.Version != 1 || file.Defaults.Location == nil || file.Defaults.AllowedLateness <= 0 {
			t.Fatalf("accepted file without defaults: %+v", file.Defaults)
		}
		if d := file.Defaults.AllowedLateness.D(); d > MaxDuration {
			t.Fatalf("allowed_lateness %s accepted", d)
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
			if bad := nonFinite(reflect.ValueOf(r), ""); len(bad) > 0 {
				t.Fatalf("rule %q accepted with non-finite %v", r.Name, bad)
			}
			checkDurationFields(t, r.Name, reflect.ValueOf(r))
			if r.ForDur < 0 || r.ForDur > MaxDuration {
				t.Fatalf("rule %q accepted with for %s", r.Name, r.ForDur)
			}
			switch r.Kind {
			case KindThreshold, KindRatio, KindDrop:
				if r.Window.D() < MinWindow {
					t.Fatalf("rule %q accepted with window %s", r.Name, r.Window.D())
				}
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
				n := r.Baseline.Windows
				if n == 0 {
					n = int(r.Baseline.Season.D()/r.Window.D()) * r.Baseline.Seasons
				}
				if n < 1 || n > MaxBaselineBuckets {
					t.Fatalf("drop rule %q accepted with a baseline of %d windows", r.Name, n)
				}
			}
			for k, src := range r.Annotations {
				if err := checkTemplate(src, r.annotations[k]); err != nil {
					t.Fatalf("rule %q: annotation %s accepted against the static rule: %v", r.Name, k, err)
				}
			}
			for k, v := range r.RenderAnnotations(bigLabels, 1.5) {
				if len(v) > MaxAnnotationBytes {
					t.Fatalf("rule %q: annotation %s rendered %d bytes", r.Name, k, len(v))
				}
			}
		}
		for _, p := range file.Resend {
			if p.MaxAttempts < 1 || p.MaxAttempts > MaxAttempts || p.Backoff.Multiplier < 1 {
				t.Fatalf("policy %q accepted with bad limits", p.Name)
			}
			if bad := nonFinite(reflect.ValueOf(p), ""); len(bad) > 0 {
				t.Fatalf("policy %q accepted with non-finite %v", p.Name, bad)
			}
			checkDurationFields(t, p.Name, reflect.ValueOf(p))
			for _, k := range []int{1, p.MaxAttempts, 1 << 30} {
				if d := p.Backoff.Delay(k); d < 0 || d > MaxDuration {
					t.Fatalf("policy %q: delay after attempt %d is %s", p.Name, k, d)
				}
			}
		}
	})
}

// checkDurationFields fails on any Duration field (nested ones too) outside
// [0, MaxDuration].
func checkDurationFields(t *testing.T, name string, v reflect.Value) {
	t.Helper()
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		v = v.Elem()
	}
	if v.Type() == reflect.TypeFor[Duration]() {
		if d := time.Duration(v.Int()); d < 0 || d > MaxDuration {
			t.Fatalf("%s: accepted with a duration of %s", name, d)
		}
		return
	}
	if v.Kind() != reflect.Struct {
		return
	}
	for i := range v.NumField() {
		if v.Type().Field(i).IsExported() {
			checkDurationFields(t, name, v.Field(i))
		}
	}
}

// FuzzParseDuration: the parser never wraps and never accepts a duration
// outside [0, MaxDuration]; what it accepts reads back the same from
// Duration.String; a plain Go duration within range means what
// time.ParseDuration says.
func FuzzParseDuration(f *testing.F) {
	for _, s := range []string{
		"90s", "1w2d3h", "1d12h", "3650d", "3651d", "521w3d", "87600h", "87600h1ns", "3650d1ns",
		"100000w", "99999999999999999999d", "15250284452471w", "9223372036854775807ns",
		"9223372036854775808ns", "-1s", "1d1d", "0", "1.5h", "+5m", "1h2d", "d", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := ParseDuration(s)
		if err != nil {
			return
		}
		if d < 0 || d > MaxDuration {
			t.Fatalf("%q accepted as %s, outside [0, %s]", s, d, MaxDuration)
		}
		back, err := ParseDuration(Duration(d).String())
		if err != nil || back != d {
			t.Fatalf("%q = %s does not read back from %q: %v, %v", s, d, Duration(d).String(), back, err)
		}
		if !strings.ContainsAny(s, "dw") {
			if g, err := time.ParseDuration(s); err != nil || g != d {
				t.Fatalf("%q = %s, but time.ParseDuration says %s, %v", s, d, g, err)
			}
		}
	})
}
