package processor

import (
	"bytes"
	"encoding/gob"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// ratio detects a rate, such as delivery failures over sends, crossing a
// threshold in a tumbling window (SPEC §3.1). Windows are evaluated when
// final; a window without enough denominator cannot breach, and an empty
// window after a breach resolves it.
type ratio struct {
	rule   *rules.Rule
	window int64
	groups map[string]*ratioGroup
	due    int64
	buf    []byte
	evals  int64 // windows evaluated one by one, for tests of the skip
}

type ratioGroup struct {
	Open   []ratioWin
	Firing bool
	Since  int64 // end of the first breaching window of the streak: starts_at
	Next   int64 // end of the last window evaluated
	Streak int   // consecutive breaching windows (for)
	Clear  int64 // while firing: end of the first window that stopped breaching (keep_firing_for)
}

type ratioWin struct {
	Start    int64
	Num, Den float64
}

func newRatio(r *rules.Rule, _ *rules.File) Component {
	return &ratio{rule: r, window: int64(r.Window), groups: map[string]*ratioGroup{}}
}

func (d *ratio) Name() string { return "rule:" + d.rule.Name }

func (d *ratio) Interaction(ev *ingest.Interaction, out *Output) {
	if d.rule.Source == rules.SourceInteractions {
		d.observe(rules.Event{I: ev}, ev.OccurredAt)
	}
}

func (d *ratio) Receipt(r *ingest.Receipt, out *Output) {
	if d.rule.Source == rules.SourceReceipts {
		d.observe(rules.Event{R: r}, r.OccurredAt)
	}
}

func (d *ratio) observe(e rules.Event, at time.Time) {
	if !d.rule.Matcher.Match(e) {
		return
	}
	num, den := d.rule.NumMatch.Match(e), d.rule.DenMatch.Match(e)
	if !num && !den {
		return
	}
	d.buf = groupKey(d.rule.Fields, e, d.buf)
	g, ok := d.groups[string(d.buf)]
	if !ok {
		g = &ratioGroup{}
		d.groups[string(d.buf)] = g
	}
	s := windowStart(at.UnixNano(), d.window)
	i := len(g.Open)
	for i > 0 && g.Open[i-1].Start > s {
		i--
	}
	if i == 0 || g.Open[i-1].Start != s {
		g.Open = append(g.Open, ratioWin{})
		copy(g.Open[i+1:], g.Open[i:])
		g.Open[i] = ratioWin{Start: s}
		i++
	}
	if num {
		g.Open[i-1].Num++
	}
	if den {
		g.Open[i-1].Den++
	}
	if d.due == 0 || s+d.window < d.due {
		d.due = s + d.window
	}
}

func (d *ratio) Advance(wm time.Time, out *Output) {
	w := wm.UnixNano()
	if d.due == 0 || w < d.due {
		return
	}
	d.due = 0
	for _, key := range sortedKeys(d.groups) {
		g := d.groups[key]
		for {
			var win ratioWin
			switch {
			case g.Firing && g.Next+d.window <= w:
				// A firing group is evaluated on every window, empty ones
				// included; runs of empty windows within keep_firing_for
				// change nothing and are skipped at once.
				if d.skip(g, w) {
					continue
				}
				win = ratioWin{Start: g.Next}
				if len(g.Open) > 0 && g.Open[0].Start == g.Next {
					win, g.Open = g.Open[0], g.Open[1:]
				}
			case !g.Firing && len(g.Open) > 0 && g.Open[0].Start+d.window <= w:
				win, g.Open = g.Open[0], g.Open[1:]
			default:
				goto next
			}
			d.evaluate(key, g, win, out)
		}
	next:
		if !g.Firing && g.Streak == 0 && len(g.Open) == 0 {
			delete(d.groups, key)
			continue
		}
		if !g.Firing && len(g.Open) == 0 {
			continue // a streak waiting for its next window; nothing is due until data arrives
		}
		due := g.Next + d.window
		if !g.Firing {
			due = g.Open[0].Start + d.window
		}
		if d.due == 0 || due < d.due {
			d.due = due
		}
	}
}

// skip moves a firing, clearing group past the empty windows that end
// before keep_firing_for is over (an empty window has no denominator, so
// it only continues the clearing), and reports whether it did. Advance
// then costs the windows with data, not the watermark's jump divided by
// the window.
func (d *ratio) skip(g *ratioGroup, w int64) bool {
	if g.Clear == 0 || (len(g.Open) > 0 && g.Open[0].Start == g.Next) {
		return false
	}
	n := (w - g.Next) / d.window
	if len(g.Open) > 0 {
		n = min(n, (g.Open[0].Start-g.Next)/d.window)
	}
	r := g.Clear + int64(d.rule.KeepFiringFor) - g.Next
	if n = min(n, (r-1)/d.window); n <= 0 {
		return false
	}
	g.Next += n * d.window
	return true
}

func (d *ratio) evaluate(key string, g *ratioGroup, win ratioWin, out *Output) {
	d.evals++
	end := win.Start + d.window
	if !g.Firing && g.Streak > 0 && win.Start != g.Next {
		g.Streak = 0 // the windows skipped were empty, so not breaching
	}
	v := 0.0
	if win.Den > 0 {
		v = win.Num / win.Den
	}
	t := d.rule.ThresholdValue()
	enough := win.Den > 0 && win.Den >= d.rule.MinDenominator
	breach := enough && d.rule.Compare(v, t)
	g.Next = end
	if !g.Firing {
		if !breach {
			g.Streak = 0
			return
		}
		if g.Streak++; g.Streak == 1 {
			g.Since = end
		}
		if g.Streak >= d.rule.ForWindows {
			g.Firing, g.Clear = true, 0
			a := newAlert(d.rule, key, StateFiring, v, t, ts(g.Since))
			a.WindowStart, a.WindowEnd = tp(ts(win.Start)), tp(ts(end))
			out.Alerts = append(out.Alerts, a)
		}
		return
	}
	if enough && d.rule.Resolve(v, t) {
		g.Clear = 0
		return
	}
	if g.Clear == 0 {
		g.Clear = end
	}
	if end-g.Clear < int64(d.rule.KeepFiringFor) {
		return
	}
	g.Firing, g.Streak, g.Clear = false, 0, 0
	a := newAlert(d.rule, key, StateResolved, v, t, ts(g.Since))
	a.EndsAt = tp(ts(end))
	a.WindowStart, a.WindowEnd = tp(ts(win.Start)), tp(ts(end))
	out.Alerts = append(out.Alerts, a)
}

type ratioState struct {
	Groups map[string]*ratioGroup
	Due    int64
}

func (d *ratio) MarshalState() ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(ratioState{Groups: d.groups, Due: d.due})
	return buf.Bytes(), err
}

func (d *ratio) UnmarshalState(b []byte) error {
	var st ratioState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return err
	}
	d.groups, d.due = st.Groups, st.Due
	if d.groups == nil {
		d.groups = map[string]*ratioGroup{}
	}
	return nil
}

// StateKeys is the number of groups with open windows.
func (d *ratio) StateKeys() int { return len(d.groups) }
