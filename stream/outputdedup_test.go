package stream

import (
	"context"
	"encoding/json"
	"log/slog"
	"math"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
)

func testDedupApp() *App {
	a := &App{dm: newDedupMetrics(nil)}
	a.cfg.Topics = TopicsConfig{Interactions: "in.i", Receipts: "in.r", Alerts: "out.a", Resends: "out.r"}
	a.cfg.Kafka.GroupID = "g"
	return a
}

func pos(wm int64, offsets ...int64) position { return position{offsets: offsets, wm: wm} }

func TestPositionCovers(t *testing.T) {
	for _, tc := range []struct {
		name     string
		cur, at  position
		expected bool
	}{
		{"the same state covers itself", pos(10, 5, 7), pos(10, 5, 7), true},
		{"further on both inputs and in time covers", pos(11, 6, 8), pos(10, 5, 7), true},
		{"one input behind does not cover", pos(11, 6, 6), pos(10, 5, 7), false},
		{"a lower watermark does not cover", pos(9, 6, 8), pos(10, 5, 7), false},
		{"no watermark yet is below every watermark", pos(math.MinInt64, 6, 8), pos(10, 5, 7), false},
		{"a record produced before the first watermark is covered", pos(10, 5, 7), pos(math.MinInt64, 5, 7), true},
		{"other arity never covers", pos(10, 5), pos(10, 5, 7), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.expected, tc.cur.covers(tc.at))
		})
	}
}

func TestOriginHeadersRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		wm      time.Time
		offsets []int64
	}{
		{"a partition with a watermark", time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC), []int64{17, 4}},
		{"the group stage before its first watermark", time.Time{}, []int64{99}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEncoder(TopicsConfig{}, "g1", "3")
			e.at(tc.wm, tc.offsets...)
			h := e.originHeaders()
			require.Equal(t, "3", headerValue(h, HeaderOrigin))
			require.Equal(t, "g1", headerValue(h, HeaderGroup))
			p, err := parsePosition(headerValue(h, HeaderOriginOffsets), headerValue(h, HeaderOriginWatermark))
			require.NoError(t, err)
			require.Equal(t, tc.offsets, p.offsets)
			require.Equal(t, wmNanos(tc.wm), p.wm)
		})
	}
}

func TestParsePositionRefusesGarbage(t *testing.T) {
	for _, tc := range []struct{ name, offsets, wm string }{
		{"offsets that are not numbers", "a,1", ""},
		{"no offsets", "", ""},
		{"a watermark that is not a time", "1,2", "yesterday"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := parsePosition(tc.offsets, tc.wm)
			require.Error(t, err)
		})
	}
}

func msg(topic, id string, ep *epoch) kafkago.Message {
	return kafkago.Message{Topic: topic, WriterData: ep, Headers: []kafkago.Header{{Key: HeaderID, Value: []byte(id)}}}
}

func TestFilterSuppressesEachHeldIDOnce(t *testing.T) {
	a := testDedupApp()
	d := a.newOutputDedup("0", slog.New(slog.DiscardHandler))
	d.ids = map[outputKey]heldOutput{
		{"out.a", "a1"}:            {at: pos(100, 50, 50)},
		{"out.r", "r1"}:            {at: pos(100, 50, 50)},
		{"in.i.dlq", "in.i/0/7"}:   {at: pos(100, 50, 50)},
		{"out.a", "still-waiting"}: {at: pos(100, 50, 50)},
	}
	a.dm.held.Set(4)
	ep := newEpoch()
	msgs := []kafkago.Message{
		msg("out.a", "a1", ep), msg("out.a", "a2", ep), msg("out.r", "r1", ep),
		msg("in.i.dlq", "in.i/0/7", ep), msg("repartition", "a1", ep),
		msg("out.a", "a1", ep), // the same id again later: written (it was matched already)
	}
	ep.add(len(msgs))
	kept := d.filter(msgs, func() position { return pos(10, 1, 1) })
	var ids []string
	for _, m := range kept {
		ids = append(ids, m.Topic+" "+headerValue(m.Headers, HeaderID))
	}
	require.Equal(t, []string{"out.a a2", "repartition a1", "out.a a1"}, ids)
	require.Equal(t, 1.0, testutil.ToFloat64(a.dm.suppressed.WithLabelValues("out.a")))
	require.Equal(t, 1.0, testutil.ToFloat64(a.dm.suppressed.WithLabelValues("out.r")))
	require.Equal(t, 1.0, testutil.ToFloat64(a.dm.suppressed.WithLabelValues("in.i.dlq")))
	require.Equal(t, 1.0, testutil.ToFloat64(a.dm.held))
	require.Len(t, d.ids, 1)
	// The suppressed records gave back their epoch references: once the
	// kept ones are acknowledged and the epoch sealed, it is done.
	for range kept {
		ep.release(nil)
	}
	ep.seal()
	require.NoError(t, ep.wait(context.Background()))
}

func TestFilterForgetsIDsTheReprocessingWentPast(t *testing.T) {
	a := testDedupApp()
	d := a.newOutputDedup("0", slog.New(slog.DiscardHandler))
	d.ids = map[outputKey]heldOutput{
		{"out.a", "early"}: {at: pos(100, 10, 10)},
		{"out.a", "late"}:  {at: pos(500, 90, 90)},
	}
	a.dm.held.Set(2)
	cur := pos(200, 20, 20)
	for range expireEvery {
		d.filter(nil, func() position { return cur })
	}
	require.Contains(t, d.ids, outputKey{"out.a", "late"})
	require.NotContains(t, d.ids, outputKey{"out.a", "early"})
	require.Equal(t, 1.0, testutil.ToFloat64(a.dm.held))
	cur = pos(500, 90, 90)
	for range expireEvery {
		d.filter(nil, func() position { return cur })
	}
	require.Nil(t, d.ids, "nothing held once the re-processing passed every id")
	require.Equal(t, 0.0, testutil.ToFloat64(a.dm.held))
}

func TestCheckpointMarksAreLoweredToHeldIDs(t *testing.T) {
	a := testDedupApp()
	a.outEnds = &outputEnds{maxAge: time.Hour, at: time.Now(), ends: map[string]map[int]int64{
		"out.a": {0: 100, 1: 200}, "out.r": {0: 30},
	}}
	d := a.newOutputDedup("0", slog.New(slog.DiscardHandler))
	d.ids = map[outputKey]heldOutput{
		{"out.a", "x"}: {partition: 1, offset: 150},
		{"out.a", "y"}: {partition: 1, offset: 170},
		{"out.r", "z"}: {partition: 0, offset: 31}, // above the end: the end stays
	}
	marks := d.checkpointMarks(context.Background())
	require.Equal(t, map[string]map[int]int64{"out.a": {0: 100, 1: 150}, "out.r": {0: 30}}, marks)
	require.Equal(t, int64(100), a.outEnds.ends["out.a"][0], "the shared cache is not modified")
	require.Equal(t, int64(200), a.outEnds.ends["out.a"][1], "the shared cache is not modified")
}

func TestCheckpointMarksKeepThePreviousOnesWhenListingFails(t *testing.T) {
	a := testDedupApp()
	a.outEnds = newOutputEnds([]string{"127.0.0.1:1"}, a.dedupTopics(), time.Hour)
	d := a.newOutputDedup("0", slog.New(slog.DiscardHandler))
	require.Nil(t, d.checkpointMarks(context.Background()), "no earlier marks: nothing to record")
	require.Equal(t, 1.0, testutil.ToFloat64(a.dm.fallbacks.WithLabelValues(fallbackListFailed)))
	d.marks = map[string]map[int]int64{"out.a": {0: 7}}
	require.Equal(t, map[string]map[int]int64{"out.a": {0: 7}}, d.checkpointMarks(context.Background()))
}

func TestRestoreFallsBackToAtLeastOnce(t *testing.T) {
	t.Run("a snapshot of an older version records no output offsets", func(t *testing.T) {
		var mf manifest
		require.NoError(t, json.Unmarshal([]byte(`{"version":1,"id":"ab","partition":2,"chunks":0,"bytes":0,`+
			`"sha256":"","rules_hash":"h","offsets":{"in.i":5},"watermark":"2026-01-01T00:00:00Z","written_at":"2026-01-01T00:00:00Z"}`), &mf))
		require.Nil(t, mf.OutputOffsets)
		a := testDedupApp()
		d := a.newOutputDedup("2", slog.New(slog.DiscardHandler))
		d.restore(context.Background(), mf.OutputOffsets, pos(0, 5, 0))
		require.Nil(t, d.ids)
		require.Equal(t, 1.0, testutil.ToFloat64(a.dm.fallbacks.WithLabelValues(fallbackNoOffsets)))
	})
	t.Run("the tails cannot be read", func(t *testing.T) {
		a := testDedupApp()
		a.brokers = []string{"127.0.0.1:1"}
		d := a.newOutputDedup("2", slog.New(slog.DiscardHandler))
		d.restore(context.Background(), map[string]map[int]int64{"out.a": {0: 0}}, pos(0, 5, 0))
		require.Nil(t, d.ids)
		require.Equal(t, 1.0, testutil.ToFloat64(a.dm.fallbacks.WithLabelValues(fallbackReadFailed)))
	})
}

func TestManifestCarriesOutputOffsets(t *testing.T) {
	mf := manifest{Version: manifestVersion, OutputOffsets: map[string]map[int]int64{"out.a": {0: 3, 11: 42}}}
	b, err := json.Marshal(mf)
	require.NoError(t, err)
	var back manifest
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, mf.OutputOffsets, back.OutputOffsets)
}

func TestDeadLetterCarriesItsIDAndOrigin(t *testing.T) {
	e := newEncoder(TopicsConfig{}, "g", "1")
	e.at(time.Unix(100, 0), 8, 3)
	rec := &ikafka.Record{Msg: kafkago.Message{Topic: "in.i", Partition: 1, Offset: 7, Value: []byte("x")}}
	m := e.deadLetter(rec, ingest.ReasonNotJSON, "bad", nil, nil)
	require.Equal(t, "in.i.dlq", m.Topic)
	require.Equal(t, "in.i/1/7", headerValue(m.Headers, HeaderID))
	require.Equal(t, "1", headerValue(m.Headers, HeaderOrigin))
	require.Equal(t, "8,3", headerValue(m.Headers, HeaderOriginOffsets))
	require.Equal(t, "not_json", headerValue(m.Headers, HeaderReason))
}
