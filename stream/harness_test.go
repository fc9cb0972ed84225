package stream_test

import (
	"bufio"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
	"github.com/crmpulse/crmpulse/stream"
)

const rulesFile = "testdata/rules.yaml"

// dataset is a generated input: two JSON Lines files, each in occurred_at
// order, with some duplicates, malformed and late records mixed in.
type dataset struct {
	dir          string
	interactions string
	receipts     string
	// lines of each file with the customer id they are keyed by
	iLines, rLines []keyed
	start, end     time.Time // the data's range (end is the highest occurred_at)
	customerCount  int
	// customers is the profiles file (cLines), empty until addProfiles.
	customers string
	cLines    []keyed
}

type keyed struct {
	key  string
	line string
	at   time.Time
}

// genConfig sizes a data set.
type genConfig struct {
	customers int
	days      int
	seed      uint64
}

// generate writes a deterministic data set for the rules in
// testdata/rules.yaml whose outcome does not depend on how the watermark
// advances: activity gaps are either well under idle_for (1h) or well over
// idle_for + lateness, tickets are resolved well within 2h or much later,
// complaint bursts are far apart, deliveries come within minutes or never.
// Such a data set gives the same alerts in replay, in one streaming
// instance or several, and across restarts. It ends two days before now,
// so once the partitions go idle the wall-clock watermark passes every
// timer, as replay's --until now does.
func generate(t testing.TB, cfg genConfig) *dataset {
	t.Helper()
	rng := rand.New(rand.NewPCG(cfg.seed, 7))
	end := time.Now().UTC().Truncate(time.Hour).Add(-48 * time.Hour)
	start := end.Add(-time.Duration(cfg.days) * 24 * time.Hour)
	ds := &dataset{dir: t.TempDir(), start: start, customerCount: cfg.customers}
	var inter, rcpt []keyed
	eid, rid, mid := 0, 0, 0
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	for c := 0; c < cfg.customers; c++ {
		cust := fmt.Sprintf("c%05d", c)
		tenant := []string{"acme", "globex"}[c%2]
		seg := []string{"smb", "enterprise", "consumer"}[c%3]
		at := start.Add(time.Duration(rng.Int64N(int64(2 * time.Hour))))
		// Nothing after end: a sparse tail (say, a ticket resolved hours
		// after the others stopped) would be judged by the partition's last
		// record in streaming and by the global last record in replay.
		ev := func(typ string, when time.Time, extra string) {
			if !when.Before(end) {
				return
			}
			eid++
			line := fmt.Sprintf(`{"event_id":"e%07d","type":%q,"customer_id":%q,"occurred_at":%q,"tenant":%q,"segment":%q,"region":"apac"%s}`,
				eid, typ, cust, ts(when), tenant, seg, extra)
			inter = append(inter, keyed{cust, line, when})
		}
		rc := func(msg, status string, attempt int, when time.Time) {
			if !when.Before(end) {
				return
			}
			rid++
			line := fmt.Sprintf(`{"receipt_id":"r%07d","message_id":%q,"customer_id":%q,"channel":"sms","status":%q,"occurred_at":%q,"attempt":%d,"tenant":%q}`,
				rid, msg, cust, status, ts(when), attempt, tenant)
			rcpt = append(rcpt, keyed{cust, line, when})
		}
		ticket := 0
		for at.Before(end) {
			// Every step has one event the churn rule counts, so the gaps
			// it sees are the steps' gaps below.
			// Amounts avoid the first minutes of an hour: the drop detector
			// forgets a group after a baseline of empty windows when the
			// watermark passes the last one, so a purchase just after that
			// instant starts the group afresh or not depending on when the
			// watermark moved (replay's global one or a partition's).
			money := at.Minute() >= 8 && at.Minute() < 58
			if money && rng.IntN(4) == 0 {
				ev("purchase", at, fmt.Sprintf(`,"amount":%d.%02d,"currency":"EUR"`, 5+rng.IntN(120), rng.IntN(100)))
			} else {
				ev([]string{"login", "visit"}[rng.IntN(2)], at, "")
			}
			switch r := rng.IntN(100); {
			case r < 40:
			case r < 45 && money:
				ev("refund", at.Add(time.Minute), fmt.Sprintf(`,"amount":%d`, 1+rng.IntN(30)))
			case r < 48:
				// A burst of complaints: the threshold rule fires, and
				// resolves as they expire; the next step is far away.
				for k := 0; k < 3+rng.IntN(2); k++ {
					ev("complaint", at.Add(time.Duration(k+1)*2*time.Minute), `,"attributes":{"complaint_type":"billing"}`)
				}
				at = at.Add(3*time.Hour + time.Duration(rng.Int64N(int64(time.Hour))))
				continue
			case r < 55:
				ticket++
				tid := fmt.Sprintf(`,"attributes":{"ticket_id":"t%d"}`, ticket)
				ev("ticket_opened", at.Add(time.Second), tid)
				switch rng.IntN(5) {
				case 0, 1, 2:
					ev("complaint_resolved", at.Add(time.Duration(5+rng.IntN(40))*time.Minute), tid)
				case 3:
					ev("complaint_resolved", at.Add(3*time.Hour+time.Duration(rng.IntN(120))*time.Minute), tid)
				}
			case r < 97:
				mid++
				msg := fmt.Sprintf("m%06d", mid)
				rc(msg, "sent", 1, at)
				switch k := rng.IntN(20); {
				case k < 11:
					rc(msg, "delivered", 1, at.Add(time.Duration(10+rng.IntN(100))*time.Second))
				case k < 15:
					rc(msg, []string{"soft_bounce", "failed"}[rng.IntN(2)], 1, at.Add(time.Duration(5+rng.IntN(50))*time.Second))
					if rng.IntN(2) == 0 {
						// The retry, sent after the backoff, delivered.
						rc(msg, "sent", 2, at.Add(20*time.Minute))
						rc(msg, "delivered", 2, at.Add(21*time.Minute))
					}
				case k < 16:
					rc(msg, "hard_bounce", 1, at.Add(30*time.Second))
				}
				// otherwise: never delivered (resend policy's undelivered)
			default:
				ev("unsubscribe", at.Add(time.Second), "")
			}
			if rng.IntN(10) < 7 {
				at = at.Add(time.Duration(1+rng.IntN(35)) * time.Minute)
			} else {
				at = at.Add(3*time.Hour + time.Duration(rng.IntN(300))*time.Minute)
			}
		}
	}
	byTime := func(s []keyed) {
		sort.SliceStable(s, func(i, j int) bool { return s[i].at.Before(s[j].at) })
	}
	byTime(inter)
	byTime(rcpt)
	for _, s := range [][]keyed{inter, rcpt} {
		if len(s) > 0 && s[len(s)-1].at.After(ds.end) {
			ds.end = s[len(s)-1].at
		}
	}
	// Duplicates (the same record again, a little later in the file),
	// malformed records and late ones, in the second half where every
	// partition has a watermark.
	mess := func(s []keyed, bad []string, late func(k keyed) string) []keyed {
		out := make([]keyed, 0, len(s)+len(s)/50)
		for i, k := range s {
			out = append(out, k)
			if i < len(s)/2 {
				continue
			}
			switch i % 97 {
			case 3:
				out = append(out, k) // duplicate
			case 11:
				out = append(out, keyed{key: k.key, line: bad[(i/97)%len(bad)], at: k.at})
			case 29:
				out = append(out, keyed{key: k.key, line: late(k), at: k.at})
			}
		}
		return out
	}
	lateI := 0
	ds.iLines = mess(inter, []string{
		`not json at all`,
		`{"event_id":"x1","type":"login","occurred_at":"2026-01-01T00:00:00Z"}`,
		`{"event_id":"x2","type":"login","customer_id":"c1","occurred_at":"yesterday"}`,
		`{"event_id":"x3","type":7,"customer_id":"c1","occurred_at":"2026-01-01T00:00:00Z"}`,
	}, func(k keyed) string {
		lateI++
		return fmt.Sprintf(`{"event_id":"late%d","type":"login","customer_id":%q,"occurred_at":%q}`, lateI, k.key, ts(k.at.Add(-6*time.Hour)))
	})
	lateR := 0
	ds.rLines = mess(rcpt, []string{
		`{"receipt_id":"y1"`,
		`{"receipt_id":"y2","message_id":"m","customer_id":"c1","channel":"sms","status":"sent","occurred_at":"2026-13-01T00:00:00Z"}`,
	}, func(k keyed) string {
		lateR++
		return fmt.Sprintf(`{"receipt_id":"late%d","message_id":"ml%d","customer_id":%q,"channel":"sms","status":"sent","occurred_at":%q}`, lateR, lateR, k.key, ts(k.at.Add(-6*time.Hour)))
	})
	ds.interactions = filepath.Join(ds.dir, "interactions.jsonl")
	ds.receipts = filepath.Join(ds.dir, "receipts.jsonl")
	for _, f := range []struct {
		path  string
		lines []keyed
	}{{ds.interactions, ds.iLines}, {ds.receipts, ds.rLines}} {
		var b strings.Builder
		for _, k := range f.lines {
			b.WriteString(k.line)
			b.WriteByte('\n')
		}
		require.NoError(t, os.WriteFile(f.path, []byte(b.String()), 0o644))
	}
	return ds
}

// outputs are the records of a run, by id, without the stamps that differ
// between runs (emitted_at, created_at).
type outputs struct {
	alerts  map[string]string
	resends map[string]string
	// segments are the segment transitions, by their id.
	segments map[string]string
	// digests are the digests, by digest_id.
	digests map[string]string
	// rejected counts dead letters (or rejected.jsonl lines) by reason.
	rejected map[string]int
}

func newOutputs() *outputs {
	return &outputs{alerts: map[string]string{}, resends: map[string]string{}, segments: map[string]string{}, digests: map[string]string{}, rejected: map[string]int{}}
}

func canonical(t testing.TB, raw []byte, drop string) (map[string]any, string) {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m), string(raw))
	delete(m, drop)
	b, err := json.Marshal(m)
	require.NoError(t, err)
	return m, string(b)
}

func alertID(m map[string]any) string {
	return fmt.Sprintf("%s:%s:%s", m["fingerprint"], m["state"], m["starts_at"])
}

func resendID(m map[string]any) string { return fmt.Sprintf("%s:%s", m["trigger_id"], m["action"]) }

// countAlerts is how many of want's alert records rule produced.
func countAlerts(t testing.TB, o *outputs, rule string) int {
	t.Helper()
	n := 0
	for _, v := range o.alerts {
		var m struct {
			Rule string `json:"rule"`
		}
		require.NoError(t, json.Unmarshal([]byte(v), &m))
		if m.Rule == rule {
			n++
		}
	}
	return n
}

// transitionID is processor.Transition.ID of a decoded transition.
func transitionID(t testing.TB, raw []byte) string {
	t.Helper()
	var tr processor.Transition
	require.NoError(t, json.Unmarshal(raw, &tr), string(raw))
	return tr.ID()
}

// replayOutputs runs replay on ds as the oracle.
func replayOutputs(t testing.TB, ds *dataset) *outputs {
	t.Helper()
	return replayOutputsWith(t, ds, rulesFile)
}

// replayOutputsWith runs replay on ds with the rules file path.
func replayOutputsWith(t testing.TB, ds *dataset, path string) *outputs {
	t.Helper()
	rf, err := rules.Load(path)
	require.NoError(t, err)
	out := filepath.Join(ds.dir, "replay-"+filepath.Base(path))
	_, err = replay.Run(context.Background(), replay.Config{Rules: rf, Interactions: ds.interactions,
		Receipts: ds.receipts, Customers: ds.customers, OutDir: out, Until: time.Now()})
	require.NoError(t, err)
	o := newOutputs()
	for _, f := range []struct {
		name string
		add  func(raw []byte)
	}{
		{"alerts.jsonl", func(raw []byte) { m, c := canonical(t, raw, "emitted_at"); o.alerts[alertID(m)] = c }},
		{"resends.jsonl", func(raw []byte) { m, c := canonical(t, raw, "created_at"); o.resends[resendID(m)] = c }},
		{"segments.jsonl", func(raw []byte) { _, c := canonical(t, raw, "emitted_at"); o.segments[transitionID(t, raw)] = c }},
		{"digests.jsonl", func(raw []byte) { m, c := canonical(t, raw, "emitted_at"); o.digests[m["digest_id"].(string)] = c }},
		{"rejected.jsonl", func(raw []byte) { m, _ := canonical(t, raw, ""); o.rejected[m["reason"].(string)]++ }},
	} {
		fh, err := os.Open(filepath.Join(out, f.name))
		require.NoError(t, err)
		sc := bufio.NewScanner(fh)
		// A digest lists every alert of its group: one line can be
		// megabytes.
		sc.Buffer(nil, 64<<20)
		for sc.Scan() {
			f.add(sc.Bytes())
		}
		require.NoError(t, sc.Err(), "reading %s", f.name)
		fh.Close()
	}
	require.NotEmpty(t, o.alerts)
	require.NotEmpty(t, o.resends)
	return o
}

// topics are one test's topic names, unique so tests never share state.
type topics struct {
	prefix string
	cfg    stream.TopicsConfig
}

func newTopics(t testing.TB) topics {
	name := strings.NewReplacer("/", "-", " ", "-").Replace(t.Name())
	p := fmt.Sprintf("%s-%06x", strings.ToLower(name), rand.Uint32()&0xffffff)
	return topics{prefix: p, cfg: stream.TopicsConfig{
		Interactions: p + ".interactions", Receipts: p + ".receipts", Customers: p + ".customers", Alerts: p + ".alerts",
		Resends: p + ".resends", Segments: p + ".segments", Digests: p + ".digests", DigestDeliveries: p + ".digest-deliveries",
		Snapshots: p + ".snapshots", Repartition: p + ".repartition",
	}}
}

// createInputs creates the two input topics with n partitions.
func createInputs(t testing.TB, brokers []string, tp topics, n int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, ikafka.EnsureTopics(ctx, ikafka.Plain(brokers),
		ikafka.TopicSpec{Name: tp.cfg.Interactions, Partitions: n, ReplicationFactor: -1},
		ikafka.TopicSpec{Name: tp.cfg.Receipts, Partitions: n, ReplicationFactor: -1}))
	if tp.cfg.Customers != "" {
		require.NoError(t, ikafka.EnsureTopics(ctx, ikafka.Plain(brokers), ikafka.TopicSpec{Name: tp.cfg.Customers, Partitions: n,
			ReplicationFactor: -1, Configs: map[string]string{"cleanup.policy": "compact"}}))
	}
}

// produce writes ds to the input topics, keyed by customer id, in file
// order, with the partitioner upstream Java clients use.
func produce(t testing.TB, brokers []string, tp topics, ds *dataset) {
	t.Helper()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Balancer: &kafkago.Murmur2Balancer{},
		RequiredAcks: kafkago.RequireAll, BatchSize: 5000, BatchBytes: 4 << 20, BatchTimeout: 5 * time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inputs := []struct {
		topic string
		lines []keyed
	}{{tp.cfg.Interactions, ds.iLines}, {tp.cfg.Receipts, ds.rLines}}
	if tp.cfg.Customers != "" {
		inputs = append(inputs, struct {
			topic string
			lines []keyed
		}{tp.cfg.Customers, ds.cLines})
	}
	for _, f := range inputs {
		for start := 0; start < len(f.lines); start += 20000 {
			batch := f.lines[start:min(start+20000, len(f.lines))]
			msgs := make([]kafkago.Message, len(batch))
			for i, k := range batch {
				msgs[i] = kafkago.Message{Topic: f.topic, Key: []byte(k.key), Value: []byte(k.line)}
			}
			require.NoError(t, w.WriteMessages(ctx, msgs...))
		}
	}
}

// collector reads the output and dead-letter topics from the start,
// continuously, and keeps what it saw.
type collector struct {
	t      testing.TB
	cl     *kgo.Client
	mu     sync.Mutex
	out    *outputs
	dups   int // the same id seen again (re-emitted after a restart)
	dupIDs []string
	diffs  []string
	dlqHdr []map[string]string
	done   chan struct{}
}

func collect(t testing.TB, brokers []string, tp topics) *collector {
	t.Helper()
	consume := []string{tp.cfg.Alerts, tp.cfg.Resends, tp.cfg.Segments, tp.cfg.Digests, tp.cfg.Interactions + stream.DLQSuffix, tp.cfg.Receipts + stream.DLQSuffix}
	if tp.cfg.Customers != "" {
		consume = append(consume, tp.cfg.Customers+stream.DLQSuffix)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...),
		kgo.ConsumeTopics(consume...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond),
		kgo.MetadataMinAge(100*time.Millisecond), kgo.MetadataMaxAge(time.Second))
	require.NoError(t, err)
	c := &collector{t: t, cl: cl, out: newOutputs(), done: make(chan struct{})}
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		defer close(c.done)
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachRecord(func(r *kgo.Record) { c.add(tp, r) })
		}
	}()
	t.Cleanup(func() { cancel(); <-c.done; cl.Close() })
	return c
}

func (c *collector) add(tp topics, r *kgo.Record) {
	c.mu.Lock()
	defer c.mu.Unlock()
	hdr := map[string]string{}
	for _, h := range r.Headers {
		hdr[h.Key] = string(h.Value)
	}
	put := func(dst map[string]string, id, val string) {
		if old, ok := dst[id]; ok {
			c.dups++
			c.dupIDs = append(c.dupIDs, r.Topic+" "+id)
			if old != val {
				c.diffs = append(c.diffs, fmt.Sprintf("id %s re-emitted differently:\n  %s\n  %s", id, old, val))
			}
			return
		}
		dst[id] = val
	}
	switch r.Topic {
	case tp.cfg.Alerts:
		m, v := canonical(c.t, r.Value, "emitted_at")
		if hdr[stream.HeaderID] != alertID(m) {
			c.diffs = append(c.diffs, "alert header id "+hdr[stream.HeaderID]+" != "+alertID(m))
		}
		put(c.out.alerts, alertID(m), v)
	case tp.cfg.Resends:
		m, v := canonical(c.t, r.Value, "created_at")
		if hdr[stream.HeaderID] != resendID(m) || string(r.Key) != m["customer_id"] {
			c.diffs = append(c.diffs, "resend header id or key wrong: "+hdr[stream.HeaderID])
		}
		put(c.out.resends, resendID(m), v)
	case tp.cfg.Segments:
		m, v := canonical(c.t, r.Value, "emitted_at")
		id := transitionID(c.t, r.Value)
		if hdr[stream.HeaderID] != id || string(r.Key) != m["customer_id"] {
			c.diffs = append(c.diffs, "transition header id or key wrong: "+hdr[stream.HeaderID]+" != "+id)
		}
		put(c.out.segments, id, v)
	case tp.cfg.Digests:
		m, v := canonical(c.t, r.Value, "emitted_at")
		id, _ := m["digest_id"].(string)
		if hdr[stream.HeaderID] != id || id == "" {
			c.diffs = append(c.diffs, "digest header id wrong: "+hdr[stream.HeaderID]+" != "+id)
		}
		put(c.out.digests, id, v)
	default:
		// Dead letters: count each source record once (a restart may
		// dead-letter it again).
		id := hdr[stream.HeaderSourceTopic] + "/" + hdr[stream.HeaderSourcePartition] + "/" + hdr[stream.HeaderSourceOffset]
		if hdr[stream.HeaderID] != id {
			c.diffs = append(c.diffs, "dead letter header id "+hdr[stream.HeaderID]+" != "+id)
		}
		if _, ok := c.out.alerts["dlq:"+id]; ok {
			c.dups++
			c.dupIDs = append(c.dupIDs, r.Topic+" "+id)
			return
		}
		c.out.alerts["dlq:"+id] = ""
		c.out.rejected[hdr[stream.HeaderReason]]++
		c.dlqHdr = append(c.dlqHdr, hdr)
	}
}

// requireNoDups fails when an id was written twice to one topic.
func (c *collector) requireNoDups(t testing.TB) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	require.Zero(t, c.dups, "ids written more than once, first of them: %v", c.dupIDs[:min(len(c.dupIDs), 10)])
}

// result is a copy of what was collected, without the dead-letter markers.
func (c *collector) result() (*outputs, []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o := newOutputs()
	for k, v := range c.out.alerts {
		if !strings.HasPrefix(k, "dlq:") {
			o.alerts[k] = v
		}
	}
	for k, v := range c.out.resends {
		o.resends[k] = v
	}
	for k, v := range c.out.segments {
		o.segments[k] = v
	}
	for k, v := range c.out.digests {
		o.digests[k] = v
	}
	for k, v := range c.out.rejected {
		o.rejected[k] = v
	}
	return o, slices.Clone(c.diffs)
}

// diff describes how got differs from want, or "" when equal.
func diff(want, got *outputs) string {
	var b strings.Builder
	cmp := func(what string, w, g map[string]string) {
		var missing, extra, changed []string
		for k, v := range w {
			gv, ok := g[k]
			switch {
			case !ok:
				missing = append(missing, v)
			case gv != v:
				changed = append(changed, "want "+v+"\n     got  "+gv)
			}
		}
		for k, v := range g {
			if _, ok := w[k]; !ok {
				extra = append(extra, v)
			}
		}
		for _, l := range []struct {
			name string
			s    []string
		}{{"missing", missing}, {"extra", extra}, {"changed", changed}} {
			if len(l.s) == 0 {
				continue
			}
			sort.Strings(l.s)
			fmt.Fprintf(&b, "%s %s: %d (want %d, got %d)\n", what, l.name, len(l.s), len(w), len(g))
			for _, s := range l.s[:min(len(l.s), 5)] {
				fmt.Fprintf(&b, "  %s\n", s)
			}
		}
	}
	cmp("alerts", want.alerts, got.alerts)
	cmp("resends", want.resends, got.resends)
	cmp("segment transitions", want.segments, got.segments)
	cmp("digests", want.digests, got.digests)
	if fmt.Sprint(want.rejected) != fmt.Sprint(got.rejected) {
		fmt.Fprintf(&b, "rejected by reason: want %v, got %v\n", want.rejected, got.rejected)
	}
	return b.String()
}

// waitEqual waits until the collected outputs equal want, then a little
// longer to see that nothing extra follows.
func (c *collector) waitEqual(t testing.TB, want *outputs, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var last string
	for time.Now().Before(deadline) {
		got, diffs := c.result()
		require.Empty(t, diffs)
		if last = diff(want, got); last == "" {
			t.Logf("outputs equal replay's after %s: %d alerts, %d resends, %d segment transitions, %d digests, dead letters %v",
				timeout-time.Until(deadline), len(got.alerts), len(got.resends), len(got.segments), len(got.digests), got.rejected)
			time.Sleep(2 * time.Second)
			got, _ = c.result()
			require.Empty(t, diff(want, got), "extra records after the outputs matched")
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("streaming outputs differ from replay after %s:\n%s", timeout, last)
}

// appConfig is a configuration for tests: fast idle and commits, short
// session so a killed instance's partitions move quickly.
func appConfig(brokers []string, tp topics, group string) stream.Config {
	cfg := stream.DefaultConfig()
	cfg.Kafka.Brokers = brokers
	cfg.Kafka.GroupID = group
	cfg.Kafka.SessionTimeout = stream.Duration(6 * time.Second)
	cfg.Topics = tp.cfg
	cfg.Rules = rulesFile
	cfg.IdleTimeout = stream.Duration(2 * time.Second)
	cfg.CommitInterval = stream.Duration(200 * time.Millisecond)
	cfg.HTTP.Listen = "127.0.0.1:0"
	return cfg
}

// running is an App started in this process.
type running struct {
	app    *stream.App
	reg    *prometheus.Registry
	cancel context.CancelFunc
	done   chan error
}

func startApp(t testing.TB, cfg stream.Config, name string) *running {
	t.Helper()
	reg := prometheus.NewRegistry()
	logger := slog.New(slog.NewTextHandler(testWriter{t, name}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	app, err := stream.New(cfg, logger, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{app: app, reg: reg, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- app.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t testing.TB) {
	if r.cancel == nil {
		return
	}
	r.cancel()
	r.cancel = nil
	select {
	case err := <-r.done:
		require.NoError(t, err)
	case <-time.After(60 * time.Second):
		t.Fatal("app did not stop within 60s")
	}
}

// testWriter sends log lines to t.Log while the test runs.
type testWriter struct {
	t    testing.TB
	name string
}

func (w testWriter) Write(p []byte) (int, error) {
	if os.Getenv("CRMPULSE_TEST_LOG") != "" {
		fmt.Fprintf(os.Stderr, "%s: %s", w.name, p)
	}
	return len(p), nil
}

var _ io.Writer = testWriter{}

// newKfake starts an in-process broker for the fast tests.
func newKfake(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func newFlagSet() *flag.FlagSet {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.String("config", "", "")
	fs.String("log-level", "info", "")
	return fs
}

func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelInfo}))
}
