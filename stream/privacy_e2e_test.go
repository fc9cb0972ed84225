package stream_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/crmpulse/crmpulse/stream"
)

// TestPrivacyScrubsDeadLettersAndRepartition: with privacy.dead_letters
// hash and privacy.repartition drop, no contact value reaches the .dlq
// topic or the repartition topic in clear: a refused JSON record keeps its
// shape with the contact attributes (exact names and pattern matches)
// hashed as the raw tables hash them, a value that is not JSON becomes its
// HMAC and length, and a forwarded record loses its contact attributes but
// keeps the rest.
func TestPrivacyScrubsDeadLettersAndRepartition(t *testing.T) {
	brokers := newKfake(t)
	tp := newTopics(t)
	createInputs(t, brokers, tp, 1)
	const key = "privacy-e2e-hash-key-of-32-bytes!!"
	mac := func(v string) string {
		m := hmac.New(sha256.New, []byte(key))
		m.Write([]byte(v))
		return hex.EncodeToString(m.Sum(nil))
	}
	refused := `{"event_id":"bad1","type":"purchase","customer_id":"c1","occurred_at":"not a time","tenant":"acme",` +
		`"attributes":{"email":"alice@example.com","phone_number":"+33 6 11","plan":"gold"}}`
	notJSON := `oops bob@example.com`
	accepted := `{"event_id":"ok1","type":"purchase","customer_id":"c2","occurred_at":"2026-11-02T09:00:00Z","tenant":"acme",` +
		`"segment":"smb","region":"eu","amount":3,"currency":"EUR","attributes":{"Email_Address":"carol@example.com","plan":"gold"}}`
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), RequiredAcks: kafkago.RequireAll, BatchTimeout: time.Millisecond}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	require.NoError(t, w.WriteMessages(ctx,
		kafkago.Message{Topic: tp.cfg.Interactions, Key: []byte("c1"), Value: []byte(refused)},
		kafkago.Message{Topic: tp.cfg.Interactions, Key: []byte("c1"), Value: []byte(notJSON)},
		kafkago.Message{Topic: tp.cfg.Interactions, Key: []byte("c2"), Value: []byte(accepted)},
	))
	require.NoError(t, w.Close())

	cfg := appConfig(brokers, tp, tp.prefix)
	// A rule grouping across customers, so accepted records are forwarded
	// to the group stage through the repartition topic.
	cfg.Rules = filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(cfg.Rules, []byte(`version: 1
rules:
  - name: revenue_drop
    kind: drop
    source: interactions
    match: {type: [purchase]}
    group_by: [tenant, segment]
    window: 1d
    value: sum(amount)
    baseline: {windows: 7}
    drop_pct: 50
    min_baseline: 1000
    severity: critical
`), 0o644))
	cfg.ClickHouse.HashKey = key
	cfg.Privacy = stream.PrivacyConfig{DeadLetters: "hash", Repartition: "drop"}
	startApp(t, cfg, "a")

	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(tp.cfg.Interactions+stream.DLQSuffix, tp.cfg.Repartition),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond))
	require.NoError(t, err)
	defer cl.Close()
	var mu sync.Mutex
	dlq := map[string][]byte{} // by source offset
	var forwarded [][]byte     // repartition values of records (not markers)
	require.Eventually(t, func() bool {
		pctx, pcancel := context.WithTimeout(ctx, 200*time.Millisecond)
		defer pcancel()
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			mu.Lock()
			defer mu.Unlock()
			if r.Topic == tp.cfg.Repartition {
				if len(r.Value) > 0 {
					forwarded = append(forwarded, r.Value)
				}
				return
			}
			for _, h := range r.Headers {
				if h.Key == stream.HeaderSourceOffset {
					dlq[string(h.Value)] = r.Value
				}
			}
		})
		mu.Lock()
		defer mu.Unlock()
		return len(dlq) == 2 && len(forwarded) >= 1
	}, 45*time.Second, 10*time.Millisecond)

	for _, v := range append([][]byte{dlq["0"], dlq["1"]}, forwarded...) {
		for _, secret := range []string{"alice@", "+33 6 11", "bob@", "carol@"} {
			require.False(t, bytes.Contains(v, []byte(secret)), "%q in %s", secret, v)
		}
	}
	var rec struct {
		EventID    string            `json:"event_id"`
		Attributes map[string]string `json:"attributes"`
	}
	require.NoError(t, json.Unmarshal(dlq["0"], &rec))
	require.Equal(t, "bad1", rec.EventID)
	require.Equal(t, map[string]string{"email": mac("alice@example.com"), "phone_number": mac("+33 6 11"), "plan": "gold"}, rec.Attributes)

	var opaque map[string]any
	require.NoError(t, json.Unmarshal(dlq["1"], &opaque))
	require.Equal(t, map[string]any{"crmpulse_redacted": true, "bytes": float64(len(notJSON)), "hmac_sha256": mac(notJSON)}, opaque)

	rec.Attributes = nil
	require.NoError(t, json.Unmarshal(forwarded[0], &rec))
	require.Equal(t, "ok1", rec.EventID)
	require.Equal(t, map[string]string{"plan": "gold"}, rec.Attributes)
}
