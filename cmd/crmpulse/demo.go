package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	kafkago "github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/internal/embeddedkafka"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/record"
	"github.com/crmpulse/crmpulse/stream"
)

// cmdDemo is the zero-setup streaming demo: an in-process Kafka broker, a
// generated data set produced into it, the real pipeline of `crmpulse run`
// consuming it, and its alerts and resend triggers printed as they arrive.
func cmdDemo(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	rulesPath := fs.String("rules", "examples/rules.yaml", "rules file")
	customers := fs.Int("customers", 2000, "customers in the generated data")
	days := fs.Int("days", 14, "days of generated history, ending today")
	seed := fs.Int64("seed", 42, "generator seed")
	show := fs.Int("show", 6, "alerts printed in full per rule, resends per policy; the rest are counted")
	listen := fs.String("http.listen", "127.0.0.1:9464", "metrics and health endpoint while the demo runs")
	outDir := fs.String("out", "", "if set, write the generated inputs and the alerts and resends read back from Kafka here, to compare with `crmpulse replay`")
	if code, done := parseFlags(fs, demoUsage, args); done {
		return code
	}
	// The demo's screen is for alerts; the broker client's retries of long
	// polls are noise here.
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))

	// History ending today, so that when the input is exhausted and the
	// idle watermark follows the wall clock, it lands where the data ends.
	gcfg := datagen.DefaultConfig()
	gcfg.Seed, gcfg.Customers, gcfg.Days = *seed, *customers, *days
	gcfg.Start = time.Now().UTC().Truncate(24*time.Hour).AddDate(0, 0, -*days)
	var ibuf, rbuf, cbuf bytes.Buffer
	stats, err := datagen.GenerateAll(gcfg, datagen.Outputs{Interactions: &ibuf, Receipts: &rbuf, Customers: &cbuf})
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse demo: generating data: %v\n", err)
		return exitFailure
	}
	fmt.Printf("demo: generated %s\n", stats.String())
	var saved map[string]*os.File
	if *outDir != "" {
		if err := os.MkdirAll(*outDir, 0o755); err != nil {
			fmt.Fprintf(os.Stderr, "crmpulse demo: %v\n", err)
			return exitFailure
		}
		saved = map[string]*os.File{}
		for _, name := range []string{"interactions.jsonl", "receipts.jsonl", "customers.jsonl", "alerts.jsonl", "resends.jsonl", "digests.jsonl"} {
			f, err := os.Create(filepath.Join(*outDir, name))
			if err != nil {
				fmt.Fprintf(os.Stderr, "crmpulse demo: %v\n", err)
				return exitFailure
			}
			defer f.Close()
			saved[name] = f
		}
		saved["interactions.jsonl"].Write(ibuf.Bytes())
		saved["receipts.jsonl"].Write(rbuf.Bytes())
		saved["customers.jsonl"].Write(cbuf.Bytes())
	}
	var saveMu sync.Mutex
	save := func(name string, v []byte) {
		if saved == nil {
			return
		}
		saveMu.Lock()
		defer saveMu.Unlock()
		saved[name].Write(append(v, '\n'))
	}

	// The broker is started here rather than by the app's --embedded-kafka,
	// so the whole history is in the topics before the pipeline starts:
	// fourteen days squeezed into seconds of producing would otherwise
	// skew the two topics by hours of event time, far beyond the allowed
	// lateness. Live upstream systems write in real time and have no such
	// skew.
	cfg := stream.DefaultConfig()
	cfg.Rules = *rulesPath
	cfg.HTTP.Listen = *listen
	brokers, stop, err := embeddedkafka.Start("127.0.0.1:0", cfg.Kafka.EmbeddedPartitions,
		cfg.Topics.Interactions, cfg.Topics.Receipts, customersTopic)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse demo: starting the embedded broker: %v\n", err)
		return exitFailure
	}
	defer stop()
	cfg.Kafka.Brokers = brokers
	fmt.Printf("demo: embedded Kafka (franz-go kfake) on %v\n", brokers)
	n, err := produceMerged(ctx, brokers, cfg.Topics.Interactions, ibuf.Bytes(), cfg.Topics.Receipts, rbuf.Bytes())
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse demo: %v\n", err)
		return exitFailure
	}
	produced := n
	fmt.Printf("demo: produced %d records into %s and %s, keyed by customer_id\n", n, cfg.Topics.Interactions, cfg.Topics.Receipts)
	np, err := produceLines(ctx, brokers, customersTopic, cbuf.Bytes())
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse demo: %v\n", err)
		return exitFailure
	}
	fmt.Printf("demo: produced %d profile versions into %s, keyed by customer_id\n", np, customersTopic)
	produced += np // the consumed-records counter counts profiles too
	rf, err := rules.Load(*rulesPath)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse demo: %v\n", err)
		return exitUsage
	}
	recips, err := newRecipients(cbuf.Bytes(), rf)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse demo: reading the generated profiles: %v\n", err)
		return exitFailure
	}

	reg := prometheus.NewRegistry()
	app, err := stream.New(cfg, logger, reg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse demo: %v\n", err)
		return exitUsage
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return app.Run(gctx) })
	fmt.Printf("demo: pipeline running; metrics on http://%s/metrics\n", app.Addr())

	var alerts, resends, digestsN, lastOut atomic.Int64
	lastOut.Store(time.Now().UnixNano())
	printer := &demoPrinter{show: *show, to: recips}
	for _, t := range []struct {
		topic, file string
		n           *atomic.Int64
		kind        string
	}{{cfg.Topics.Alerts, "alerts.jsonl", &alerts, "alert"}, {cfg.Topics.Resends, "resends.jsonl", &resends, "resend"},
		{cfg.Topics.Digests, "digests.jsonl", &digestsN, "digest"}} {
		g.Go(func() error {
			return tail(gctx, brokers, t.topic, func(v []byte) {
				t.n.Add(1)
				save(t.file, v)
				lastOut.Store(time.Now().UnixNano())
				printer.print(t.kind, v)
			})
		})
	}
	g.Go(func() error {
		tick := time.NewTicker(2 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-gctx.Done():
				return nil
			case <-tick.C:
			}
			consumed := counterSum(reg, "crmpulse_stream_consumed_records_total")
			p := produced
			fmt.Fprintf(os.Stderr, "demo: consumed %d of %d records; %d alerts, %d resend records, %d digests so far\n",
				int64(consumed), p, alerts.Load(), resends.Load(), digestsN.Load())
			quiet := time.Since(time.Unix(0, lastOut.Load())) > 5*time.Second
			if p > 0 && int64(consumed) >= p && quiet {
				cancel() // everything consumed and nothing new for a while: done
				return nil
			}
		}
	})
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		fmt.Fprintf(os.Stderr, "crmpulse demo: %v\n", err)
		return exitFailure
	}
	fmt.Printf("demo: done — %d alert records, %d resend records and %d digests (pipeline outputs: %.0f)\n",
		alerts.Load(), resends.Load(), digestsN.Load(), counterSum(reg, "crmpulse_stream_outputs_total"))
	return exitOK
}

// produceMerged writes two JSON Lines streams to their topics keyed by
// customer_id, merged by occurred_at like replay merges files.
func produceMerged(ctx context.Context, brokers []string, topicA string, a []byte, topicB string, b []byte) (int64, error) {
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Balancer: &kafkago.Murmur2Balancer{},
		BatchSize: 5000, BatchBytes: 8 << 20, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafkago.RequireAll}
	defer w.Close()
	type head struct {
		sc    *bufio.Scanner
		topic string
		line  []byte
		key   string
		at    time.Time
		ok    bool
	}
	next := func(h *head) {
		h.ok = h.sc.Scan()
		if !h.ok {
			return
		}
		h.line = append(h.line[:0], h.sc.Bytes()...)
		var k struct {
			CustomerID string    `json:"customer_id"`
			OccurredAt time.Time `json:"occurred_at"`
		}
		_ = json.Unmarshal(h.line, &k) // malformed lines go out as they are, like a broken producer's
		h.key, h.at = k.CustomerID, k.OccurredAt
	}
	heads := []*head{{sc: bufio.NewScanner(bytes.NewReader(a)), topic: topicA}, {sc: bufio.NewScanner(bytes.NewReader(b)), topic: topicB}}
	for _, h := range heads {
		h.sc.Buffer(make([]byte, 1<<20), 1<<20)
		next(h)
	}
	var batch []kafkago.Message
	var n int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return fmt.Errorf("producing: %w", err)
		}
		n += int64(len(batch))
		batch = batch[:0]
		return nil
	}
	for heads[0].ok || heads[1].ok {
		h := heads[0]
		if !h.ok || (heads[1].ok && heads[1].at.Before(h.at)) {
			h = heads[1]
		}
		batch = append(batch, kafkago.Message{Topic: h.topic, Key: []byte(h.key), Value: append([]byte(nil), h.line...)})
		next(h)
		if len(batch) == 5000 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	return n, flush()
}

// customersTopic is where the demo produces the generated profiles (SPEC
// §1.3). The streaming pipeline does not read profiles yet (its
// crm.customers input is being built), so alerts carry no customer_labels
// in the demo; the screen then takes the recipient from the generated
// profile of the alert's customer (see recipients). Once the pipeline
// consumes this topic, the account_manager label wins and the fallback
// goes unused.
const customersTopic = "crm.customers"

// produceLines writes JSON Lines to topic keyed by customer_id, in order.
func produceLines(ctx context.Context, brokers []string, topic string, data []byte) (int64, error) {
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Balancer: &kafkago.Murmur2Balancer{},
		BatchSize: 5000, BatchBytes: 8 << 20, BatchTimeout: 5 * time.Millisecond, RequiredAcks: kafkago.RequireAll}
	defer w.Close()
	var batch []kafkago.Message
	var n int64
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if err := w.WriteMessages(ctx, batch...); err != nil {
			return fmt.Errorf("producing %s: %w", topic, err)
		}
		n += int64(len(batch))
		batch = batch[:0]
		return nil
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var k struct {
			CustomerID string `json:"customer_id"`
		}
		line := append([]byte(nil), sc.Bytes()...)
		_ = json.Unmarshal(line, &k)
		batch = append(batch, kafkago.Message{Topic: topic, Key: []byte(k.CustomerID), Value: line})
		if len(batch) == 5000 {
			if err := flush(); err != nil {
				return n, err
			}
		}
	}
	if err := flush(); err != nil {
		return n, err
	}
	return n, sc.Err()
}

// recipients says who an alert goes to: its account_manager label (the
// rule's customer_labels, routed by Alertmanager to that address); else,
// for a rule whose customer_labels hold account_manager, the account
// manager of the customer's generated profile version current at the
// alert's starts_at (the label the pipeline will add once it reads
// profiles; marked "(profile)"); else the team label.
type recipients struct {
	versions map[string][]amVersion // by tenant/customer_id, in updated_at order
	toAM     map[string]bool        // rules with customer_labels: [account_manager, …]
}

type amVersion struct {
	at time.Time
	am string // empty when deleted or unset
}

func newRecipients(profiles []byte, rf *rules.File) (*recipients, error) {
	r := &recipients{versions: map[string][]amVersion{}, toAM: map[string]bool{}}
	for _, rule := range rf.Rules {
		r.toAM[rule.Name] = slices.Contains(rule.CustomerLabels, "account_manager")
	}
	sc := bufio.NewScanner(bytes.NewReader(profiles))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var p struct {
			CustomerID     string    `json:"customer_id"`
			Tenant         string    `json:"tenant"`
			UpdatedAt      time.Time `json:"updated_at"`
			AccountManager string    `json:"account_manager"`
			Deleted        bool      `json:"deleted"`
		}
		if err := json.Unmarshal(sc.Bytes(), &p); err != nil {
			return nil, fmt.Errorf("profile %q: %w", sc.Bytes(), err)
		}
		v := amVersion{at: p.UpdatedAt}
		if !p.Deleted {
			v.am = p.AccountManager
		}
		k := p.Tenant + "/" + p.CustomerID
		r.versions[k] = append(r.versions[k], v)
	}
	return r, sc.Err()
}

func (r *recipients) of(a *processor.Alert) string {
	if am := a.Labels["account_manager"]; am != "" {
		return am
	}
	if r != nil && r.toAM[a.Rule] {
		if id := a.Labels["customer_id"]; id != "" {
			am := ""
			for _, v := range r.versions[a.Labels["tenant"]+"/"+id] {
				if v.at.After(a.StartsAt) {
					break
				}
				am = v.am
			}
			if am != "" {
				return am + " (profile)"
			}
		}
	}
	if team := a.Labels["team"]; team != "" {
		return "team " + team
	}
	return "default route"
}

// tail reads every partition of topic from the start and calls fn per record.
func tail(ctx context.Context, brokers []string, topic string, fn func([]byte)) error {
	var parts []kafkago.Partition
	for {
		conn, err := kafkago.DialContext(ctx, "tcp", brokers[0])
		if err == nil {
			parts, err = conn.ReadPartitions(topic)
			conn.Close()
		}
		if err == nil && len(parts) > 0 {
			break
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		g.Go(func() error {
			r := kafkago.NewReader(kafkago.ReaderConfig{Brokers: brokers, Topic: topic, Partition: p.ID,
				MinBytes: 1, MaxBytes: 8 << 20, MaxWait: 200 * time.Millisecond})
			defer r.Close()
			for {
				m, err := r.ReadMessage(gctx)
				if err != nil {
					if gctx.Err() != nil || errors.Is(err, io.EOF) {
						return nil
					}
					return fmt.Errorf("reading %s: %w", topic, err)
				}
				fn(m.Value)
			}
		})
	}
	return g.Wait()
}

func counterSum(g prometheus.Gatherer, name string) float64 {
	mfs, err := g.Gather()
	if err != nil {
		return 0
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum
}

// demoPrinter prints the first records of each rule and policy in full,
// one line each, so every kind of alert shows up on screen.
type demoPrinter struct {
	show int
	to   *recipients
	mu   sync.Mutex
	seen map[string]int
}

func (p *demoPrinter) first(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.seen == nil {
		p.seen = map[string]int{}
	}
	p.seen[key]++
	return p.seen[key] <= p.show
}

func (p *demoPrinter) print(kind string, v []byte) {
	switch kind {
	case "alert":
		var a processor.Alert
		if json.Unmarshal(v, &a) == nil {
			if p.first("alert:" + a.Rule) {
				fmt.Printf("ALERT  %-8s %-9s %-24s → %-28s %v  value=%.4g  %s\n", a.Severity, a.State, a.Rule,
					p.to.of(&a), a.Labels, a.Value, a.Annotations["summary"])
			}
			return
		}
	case "resend":
		var r processor.Resend
		if json.Unmarshal(v, &r) == nil {
			if p.first("resend:" + r.Policy + ":" + r.Action) {
				fmt.Printf("RESEND %-6s %s msg=%s customer=%s attempt=%d via %s not_before=%s (%s)\n",
					r.Action, r.Policy, r.MessageID, r.CustomerID, r.Attempt, r.Channel, r.NotBefore.Format(time.RFC3339), r.Reason)
			}
			return
		}
	case "digest":
		if d, err := record.ParseDigest(v); err == nil {
			if p.first("digest:" + d.Digest) {
				fmt.Println(digestLine(d))
			}
			return
		}
	}
	fmt.Printf("%s\n", v)
}

// digestLine is one digest on one line: who it is for, the period, how
// many alerts it lists, its metrics and class counts.
func digestLine(d *record.Digest) string {
	to := d.Group["account_manager"]
	if to == "" {
		to = fmt.Sprint(d.Group)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "DIGEST %-22s → %-28s %s..%s fired=%d resolved=%d open=%d", d.Digest, to,
		d.PeriodStart.UTC().Format("01-02 15:04"), d.PeriodEnd.UTC().Format("01-02 15:04"), len(d.Fired), len(d.Resolved), len(d.Open))
	for _, k := range slices.Sorted(maps.Keys(d.Metrics)) {
		fmt.Fprintf(&b, " %s=%s", k, strconv.FormatFloat(d.Metrics[k], 'g', 10, 64))
	}
	if len(d.Segments) > 0 {
		b.WriteString(" classes:")
		for _, k := range slices.Sorted(maps.Keys(d.Segments)) {
			fmt.Fprintf(&b, " %s=%d", k, d.Segments[k])
		}
	}
	return b.String()
}
