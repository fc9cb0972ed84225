package stream

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
)

func TestEncoderWritesTransitionsToTheSegmentsTopic(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 5, time.UTC)
	now := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	from := "new"
	out := &processor.Output{Transitions: []processor.Transition{
		{SegmentSet: "lifecycle", Key: map[string]string{"tenant": "acme", "customer_id": "c1"},
			Tenant: "acme", CustomerID: "c1", To: "new", At: at},
		{SegmentSet: "lifecycle", Key: map[string]string{"tenant": "acme", "customer_id": "c1"},
			Tenant: "acme", CustomerID: "c1", From: &from, To: "loyal", At: at.Add(time.Hour)},
	}}
	e := newEncoder(TopicsConfig{Alerts: "a", Resends: "r", Segments: "s"}, "g1", "2")
	e.at(at.Add(2*time.Hour), 10, 20)
	ep := newEpoch()
	msgs, err := e.output(nil, out, now, ep)
	require.NoError(t, err)
	require.Len(t, msgs, 2)
	for i, m := range msgs {
		tr := &out.Transitions[i]
		require.Equal(t, "s", m.Topic)
		require.Equal(t, "c1", string(m.Key), "keyed by customer_id")
		require.Equal(t, tr.ID(), headerValue(m.Headers, HeaderID))
		require.Equal(t, "2", headerValue(m.Headers, HeaderOrigin))
		require.Equal(t, "g1", headerValue(m.Headers, HeaderGroup))
		require.Equal(t, "10,20", headerValue(m.Headers, HeaderOriginOffsets))
		require.Same(t, ep, m.WriterData)
		var got map[string]any
		require.NoError(t, json.Unmarshal(m.Value, &got))
		require.Equal(t, "2026-03-02T08:00:00Z", got["emitted_at"], "stamped by the writer")
		require.Equal(t, tr.To, got["to"])
	}
	var first map[string]any
	require.NoError(t, json.Unmarshal(msgs[0].Value, &first))
	require.Nil(t, first["from"], "a key's first class has from null")
}

func TestDedupTopicsIncludeSegments(t *testing.T) {
	a := testDedupApp()
	require.Contains(t, a.dedupTopics(), "out.s")
}
