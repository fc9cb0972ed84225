package stream_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"
)

// rejectedBy is crmpulse_stream_rejected_records_total{reason}.
func rejectedBy(t *testing.T, reg *prometheus.Registry, reason string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() != "crmpulse_stream_rejected_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == reason {
				return m.GetCounter().GetValue()
			}
		}
	}
	return -1
}

// TestKfakeFutureSkew: in streaming, with the default future_skew, a
// record dated 2100 amid a partition's 2026 records is dead-lettered with
// reason future, and the records after it are all accepted, none late.
func TestKfakeFutureSkew(t *testing.T) {
	brokers := newKfake(t)
	tp := newTopics(t)
	createInputs(t, brokers, tp, 1)
	start := time.Now().UTC().Add(-48 * time.Hour).Truncate(time.Hour)
	line := func(id int, at time.Time) keyed {
		return keyed{key: "c1", line: fmt.Sprintf(`{"event_id":"e%d","type":"login","customer_id":"c1","occurred_at":%q}`,
			id, at.Format(time.RFC3339Nano))}
	}
	ds := &dataset{}
	ds.iLines = append(ds.iLines, line(1, start), line(2, start.Add(time.Minute)),
		line(3, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)))
	for i := range 5 {
		ds.iLines = append(ds.iLines, line(4+i, start.Add(time.Duration(2+i)*time.Minute)))
	}
	produce(t, brokers, tp, ds)
	c := collect(t, brokers, tp)
	cfg := appConfig(brokers, tp, tp.prefix)
	require.Equal(t, 7*24*time.Hour, cfg.FutureSkew.D(), "the default is on")
	r := startApp(t, cfg, "a")

	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.out.rejected["future"] == 1
	}, time.Minute, 20*time.Millisecond, "the 2100 record is dead-lettered as future")
	c.mu.Lock()
	hdr := c.dlqHdr[0]
	c.mu.Unlock()
	require.Equal(t, "future", hdr["crmpulse-reason"])
	require.Equal(t, "2", hdr["crmpulse-source-offset"])
	require.Contains(t, hdr["crmpulse-error"], "2100-01-01T00:00:00Z is more than 168h0m0s (future_skew) ahead of the watermark")

	// Every record has been read once the consumed counter says so; by
	// then each one was accepted or rejected.
	require.Eventually(t, func() bool { return gauge(t, r.reg, "crmpulse_stream_consumed_records_total") == 8 },
		time.Minute, 20*time.Millisecond)
	require.Equal(t, 1.0, rejectedBy(t, r.reg, "future"))
	require.Equal(t, 0.0, rejectedBy(t, r.reg, "late"), "the records after the 2100 one are not late")
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Len(t, c.dlqHdr, 1, "nothing else is dead-lettered")
}
