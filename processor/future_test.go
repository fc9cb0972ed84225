package processor_test

import (
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// feedLikeReplay feeds steps to e, advancing the watermark after each
// record as replay does, and returns each record's error code: "" when
// accepted, else the rejection reason (or "duplicate").
func feedLikeReplay(t *testing.T, e *processor.Engine, steps []step) []string {
	t.Helper()
	var got []string
	for _, s := range steps {
		var err error
		if s.i != nil {
			err = e.Interaction(s.i)
		} else {
			err = e.Receipt(s.r)
		}
		code := ""
		var re *ingest.RejectError
		switch {
		case err == nil:
		case errors.Is(err, processor.ErrDuplicate):
			code = "duplicate"
		case errors.As(err, &re):
			code = string(re.Reason)
			require.Equal(t, "occurred_at", re.Field)
		default:
			t.Fatalf("unexpected error %v", err)
		}
		got = append(got, code)
		e.AdvanceFromEvents()
	}
	return got
}

func skewEngine(t *testing.T, yaml string, skew time.Duration) *processor.Engine {
	t.Helper()
	f, err := rules.Parse([]byte(yaml))
	require.NoError(t, err)
	e, err := processor.New(processor.Config{Rules: f, FutureSkew: skew})
	require.NoError(t, err)
	return e
}

// One record dated 2100 amid 2026 records: the guard dead-letters it as
// future, the watermark stays with the valid records, and every later
// valid record is accepted. Without the guard the same record moves the
// watermark to 2100: a bogus churn alert fires and everything after is late.
func TestFutureSkewGuard(t *testing.T) {
	y2100 := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Sub(base).String()
	steps := []step{
		ev("login", "c1", "10:00"), ev("login", "c2", "10:05"),
		ev("login", "c3", y2100),
		ev("login", "c1", "10:10"), rc("m1", "c2", "sent", "10:15"), ev("login", "c2", "10:20"), ev("login", "c1", "11:00"),
	}

	e := skewEngine(t, churnRules, processor.DefaultFutureSkew)
	require.Equal(t, []string{"", "", "future", "", "", "", ""}, feedLikeReplay(t, e, steps))
	require.Equal(t, int64(1), e.Stats().Future)
	require.Zero(t, e.Stats().Late)
	require.Equal(t, int64(5), e.Stats().Interactions)
	require.Equal(t, mustAt("11:00").Add(-e.AllowedLateness()), e.Watermark(), "the refused record did not move the watermark")
	require.Empty(t, e.Output().Alerts, "nobody has been idle for 2h yet")

	off := skewEngine(t, churnRules, 0)
	require.Equal(t, []string{"", "", "", "late", "late", "late", "late"}, feedLikeReplay(t, off, steps),
		"without the guard one clock error makes every later record late")
	require.Len(t, off.Output().Alerts, 2, "and fires churn for c1 and c2 at once")
}

// The guard's edges: exactly future_skew ahead of the watermark is
// accepted, one nanosecond more is refused; before the first record there
// is no watermark and anything goes; receipts are guarded like
// interactions; a refused id can come back with a sane time.
func TestFutureSkewEdges(t *testing.T) {
	const skew = 2 * time.Hour
	// After a record at 10:00 the watermark is 10:00 - allowed_lateness;
	// plus(d) is d past that watermark.
	lateness := skewEngine(t, churnRules, skew).AllowedLateness()
	plus := func(d time.Duration) string { return mustAt("10:00").Add(d - lateness).Sub(base).String() }
	tests := []struct {
		name  string
		steps []step
		want  []string
	}{
		{"exactly future_skew ahead is accepted",
			[]step{ev("login", "c1", "10:00"), ev("login", "c1", plus(skew))}, []string{"", ""}},
		{"one nanosecond more is refused",
			[]step{ev("login", "c1", "10:00"), ev("login", "c1", plus(skew+time.Nanosecond))}, []string{"", "future"}},
		{"the first record sets the watermark, whatever its time",
			[]step{ev("login", "c1", "100h"), ev("login", "c1", "101h")}, []string{"", ""}},
		{"a receipt far ahead is refused",
			[]step{rc("m1", "c1", "sent", "10:00"), rc("m1", "c1", "delivered", plus(3*time.Hour))}, []string{"", "future"}},
		{"the guard follows the watermark as it moves",
			[]step{ev("login", "c1", "10:00"), ev("login", "c1", plus(skew)), ev("login", "c1", plus(2*skew-lateness)), ev("login", "c1", plus(3*skew-2*lateness+1))},
			[]string{"", "", "", "future"}},
		{"a refused record's id is not remembered",
			[]step{ev("login", "c1", "10:00"), withID("same", ev("login", "c1", "20:00")), withID("same", ev("login", "c1", "10:30"))},
			[]string{"", "future", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := skewEngine(t, churnRules, skew)
			require.Equal(t, tt.want, feedLikeReplay(t, e, tt.steps))
		})
	}
}

func TestFutureSkewConfig(t *testing.T) {
	f, err := rules.Parse([]byte(churnRules))
	require.NoError(t, err)
	_, err = processor.New(processor.Config{Rules: f, FutureSkew: -time.Second})
	require.ErrorContains(t, err, "future skew -1s is negative")
	e, err := processor.New(processor.Config{Rules: f})
	require.NoError(t, err)
	require.Zero(t, e.FutureSkew(), "the zero Config has the guard off")
	require.Contains(t, ingest.Reasons, ingest.ReasonFuture)
}

func withID(id string, s step) step {
	if s.i != nil {
		s.i.EventID = id
	} else {
		s.r.ReceiptID = id
	}
	return s
}
