package stream_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"github.com/stretchr/testify/require"

	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
	"github.com/crmpulse/crmpulse/stream"
)

// customerRulesFile holds every kind that reads a profile, and group-level
// rules with customer.* in match and group_by.
const customerRulesFile = "testdata/customer-rules.yaml"

// withCustomers gives tp a customers topic of its own (newTopics does
// already: every streaming test runs with one, most with it idle).
func withCustomers(tp topics) topics {
	tp.cfg.Customers = tp.prefix + ".customers"
	return tp
}

// eventsOnly is tp without its customers topic, to create the event topics
// alone.
func eventsOnly(tp topics) topics {
	tp.cfg.Customers = ""
	return tp
}

// addProfiles writes customers.jsonl for ds, in updated_at order: a first
// version of every customer a day before the data (account managers, tiers,
// regions, zones, and birthdays that fall inside the data in the
// customer's zone), a second version of some in the middle of the data
// (tier and account manager change, so records before and after read
// different versions), a deleted version of others, and a few bad
// records. The outcome does not depend on how the watermark advances: no
// version changes a date a calendar rule reads.
func addProfiles(t testing.TB, ds *dataset) {
	t.Helper()
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }
	var lines []keyed
	add := func(cust string, at time.Time, v map[string]any) {
		v["customer_id"] = cust
		v["updated_at"] = ts(at)
		b, err := json.Marshal(v)
		require.NoError(t, err)
		lines = append(lines, keyed{cust, string(b), at})
	}
	zones := []string{"", "Europe/Paris", "Asia/Tokyo", "America/New_York"}
	tiers := []string{"platinum", "gold", "silver", ""}
	regions := []string{"emea", "apac", "amer"}
	first := ds.start.Add(-24 * time.Hour)
	for c := 0; c < ds.customerCount; c++ {
		cust := fmt.Sprintf("c%05d", c)
		tenant := []string{"acme", "globex"}[c%2]
		v := map[string]any{"tenant": tenant, "region": regions[c%3]}
		if c%6 != 5 {
			v["account_manager"] = fmt.Sprintf("am%d@example.com", c%5)
		}
		if tier := tiers[(c/2)%4]; tier != "" {
			v["tier"] = tier
		}
		zone := zones[c%4]
		if zone != "" {
			v["timezone"] = zone
		}
		attrs := map[string]string{"credit_limit": fmt.Sprint(1000 * (c%7 + 1))}
		if c%5 == 0 {
			// 09:00 local on a day well inside the data: after every
			// partition's first record and long before the end.
			loc := time.UTC
			if zone != "" {
				var err error
				loc, err = time.LoadLocation(zone)
				require.NoError(t, err)
			}
			d := ds.start.Add(24 * time.Hour).In(loc)
			at := time.Date(d.Year(), d.Month(), d.Day(), 9, 0, 0, 0, loc)
			if at.Before(ds.start.Add(6 * time.Hour)) {
				at = at.AddDate(0, 0, 1)
			}
			if at.Before(ds.end.Add(-6 * time.Hour)) {
				attrs["birthday"] = at.Format("01-02")
			}
		}
		v["attributes"] = attrs
		add(cust, first, v)
		switch {
		case c%7 == 3:
			v2 := map[string]any{"tenant": tenant, "region": regions[c%3], "tier": "platinum",
				"account_manager": "vip@example.com", "attributes": attrs}
			if zone != "" {
				v2["timezone"] = zone
			}
			add(cust, ds.start.Add(20*time.Hour+time.Duration(c)*time.Minute), v2)
		case c%11 == 4:
			add(cust, ds.start.Add(30*time.Hour+time.Duration(c)*time.Second), map[string]any{"tenant": tenant, "deleted": true})
		}
	}
	bad := []string{
		`not json`,
		`{"customer_id":"c00001","updated_at":"2026-01-01T00:00:00Z","timezone":"Not/AZone"}`,
		`{"customer_id":"c00002","tier":"gold"}`,
	}
	for i, b := range bad {
		lines = append(lines, keyed{fmt.Sprintf("c%05d", i+1), b, first})
	}
	sort.SliceStable(lines, func(i, j int) bool { return lines[i].at.Before(lines[j].at) })
	ds.cLines = lines
	ds.customers = filepath.Join(ds.dir, "customers.jsonl")
	var b strings.Builder
	for _, k := range lines {
		b.WriteString(k.line)
		b.WriteByte('\n')
	}
	require.NoError(t, os.WriteFile(ds.customers, []byte(b.String()), 0o644))
}

func TestKfakeStreamingEqualsReplayWithProfiles(t *testing.T) {
	testEqualsReplayWithProfiles(t, newKfake(t), small)
}

func TestKafkaStreamingEqualsReplayWithProfiles(t *testing.T) {
	testEqualsReplayWithProfiles(t, realBrokers(t), genConfig{customers: 600, days: 3, seed: 4})
}

// testEqualsReplayWithProfiles: with a customers topic, the streaming
// outputs equal `replay --customers` on the same data, for every kind that
// reads a profile and for group-level rules with customer.* in match and
// group_by (the group stage reads the profile each forwarded record
// carries); bad profiles are dead-lettered to the customers DLQ.
func testEqualsReplayWithProfiles(t *testing.T, brokers []string, gc genConfig) {
	ds := generate(t, gc)
	addProfiles(t, ds)
	want := replayOutputsWith(t, ds, customerRulesFile)
	// The data exercises what it is meant to: each of these rules fired in
	// replay, with profile fields in its labels where it has them.
	fired := map[string]int{}
	for _, v := range want.alerts {
		var a struct {
			Rule   string            `json:"rule"`
			Labels map[string]string `json:"labels"`
		}
		require.NoError(t, json.Unmarshal([]byte(v), &a))
		switch a.Rule {
		case "purchases_by_tier":
			if a.Labels["tier"] != "unknown" {
				fired[a.Rule]++
			}
		case "platinum_complaints":
			fired[a.Rule]++
		default:
			if a.Labels["account_manager"] != "" {
				fired[a.Rule]++
			}
		}
	}
	t.Logf("alerts with profile fields in replay, by rule: %v", fired)
	for _, r := range []string{"churn_owner", "platinum_purchase", "ticket_deadline", "birthday", "purchases_by_tier"} {
		require.Positive(t, fired[r], "rule %s never fired with profile labels in replay: %v", r, fired)
	}
	require.Positive(t, want.rejected["bad_value"])
	// The digest per account manager groups by the profile: alerts of
	// customer-level rules reach their owner's digest.
	owners := map[string]int{}
	for _, v := range want.digests {
		var d struct {
			Group  map[string]string            `json:"group"`
			Alerts map[string][]json.RawMessage `json:"alerts"`
		}
		require.NoError(t, json.Unmarshal([]byte(v), &d))
		owners[d.Group["account_manager"]] += len(d.Alerts["fired"])
	}
	require.Greater(t, len(owners), 3, "digests for several account managers: %v", owners)
	require.Positive(t, owners["vip@example.com"], "the account manager of a second profile version gets alerts: %v", owners)

	tp := withCustomers(newTopics(t))
	createInputs(t, brokers, tp, 4)
	produce(t, brokers, tp, ds)
	c := collect(t, brokers, tp)
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.Rules = customerRulesFile
	startApp(t, cfg, "a")
	c.waitEqual(t, want, 3*time.Minute)
	c.requireNoDups(t)
	c.mu.Lock()
	defer c.mu.Unlock()
	profileDLQ := 0
	for _, h := range c.dlqHdr {
		if h["crmpulse-source-topic"] == tp.cfg.Customers {
			profileDLQ++
			require.NotEmpty(t, h["crmpulse-error"])
			require.NotEmpty(t, h["crmpulse-reason"])
			require.Equal(t, tp.cfg.Customers+"/"+h["crmpulse-source-partition"]+"/"+h["crmpulse-source-offset"], h[stream.HeaderID])
		}
	}
	require.Equal(t, 3, profileDLQ, "each bad profile dead-lettered once, to %s", tp.cfg.Customers+stream.DLQSuffix)
}

// eventRules fires on every purchase, with the account manager of the
// profile the purchase read.
const eventRules = `version: 1
defaults: {timezone: UTC, allowed_lateness: 1m}
rules:
  - name: purchase
    kind: event
    source: interactions
    match: {type: [purchase]}
    group_by: [tenant, customer_id]
    lasts: 1m
    customer_labels: [account_manager]
`

func writeRules(t *testing.T, text string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "rules.yaml")
	require.NoError(t, os.WriteFile(p, []byte(text), 0o644))
	return p
}

// send writes records keyed by key to topic; a nil value is a tombstone.
func send(t *testing.T, brokers []string, topic, key string, values ...[]byte) {
	t.Helper()
	w := &kafkago.Writer{Addr: kafkago.TCP(brokers...), Balancer: &kafkago.Murmur2Balancer{}, RequiredAcks: kafkago.RequireAll,
		BatchTimeout: time.Millisecond}
	defer w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	msgs := make([]kafkago.Message, len(values))
	for i, v := range values {
		msgs[i] = kafkago.Message{Topic: topic, Key: []byte(key), Value: v}
	}
	require.NoError(t, w.WriteMessages(ctx, msgs...))
}

func purchase(id, cust string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"event_id":%q,"type":"purchase","customer_id":%q,"occurred_at":%q,"amount":10}`,
		id, cust, at.UTC().Format(time.RFC3339))
}

func profileOf(cust, am string, at time.Time) []byte {
	return fmt.Appendf(nil, `{"customer_id":%q,"updated_at":%q,"account_manager":%q}`, cust, at.UTC().Format(time.RFC3339), am)
}

// firingFor waits for a firing alert of customer cust starting at at and
// returns its labels.
func (c *collector) firingFor(t *testing.T, cust string, at time.Time) map[string]string {
	t.Helper()
	return c.alertFor(t, "firing", cust, at)
}

// alertFor waits for an alert record in state of customer cust starting
// at at and returns its labels.
func (c *collector) alertFor(t *testing.T, state, cust string, at time.Time) map[string]string {
	t.Helper()
	var labels map[string]string
	require.Eventually(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, v := range c.out.alerts {
			if v == "" {
				continue
			}
			var a struct {
				State    string            `json:"state"`
				StartsAt time.Time         `json:"starts_at"`
				Labels   map[string]string `json:"labels"`
			}
			require.NoError(t, json.Unmarshal([]byte(v), &a))
			if a.State == state && a.Labels["customer_id"] == cust && a.StartsAt.Equal(at) {
				labels = a.Labels
				return true
			}
		}
		return false
	}, time.Minute, 50*time.Millisecond, "no %s alert for %s at %s", state, cust, at)
	return labels
}

// TestKfakeTombstoneDropsProfile: a null value on the customers topic
// drops the customer's profile when it is processed: a purchase read after
// it carries no account manager, though the version it replaced was
// current at the purchase's time.
func TestKfakeTombstoneDropsProfile(t *testing.T) {
	brokers := newKfake(t)
	tp := withCustomers(newTopics(t))
	createInputs(t, brokers, tp, 2)
	c := collect(t, brokers, tp)
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.Rules = writeRules(t, eventRules)
	r := startApp(t, cfg, "a")
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	send(t, brokers, tp.cfg.Customers, "c1", profileOf("c1", "am1@example.com", t0.Add(-24*time.Hour)))
	send(t, brokers, tp.cfg.Interactions, "c1", purchase("e1", "c1", t0))
	require.Equal(t, "am1@example.com", c.firingFor(t, "c1", t0)["account_manager"])
	// Once the idle partition's watermark ended it, the next purchase
	// fires anew.
	c.alertFor(t, "resolved", "c1", t0)

	send(t, brokers, tp.cfg.Customers, "c1", nil)
	require.Eventually(t, func() bool { return gauge(t, r.reg, "crmpulse_stream_profile_tombstones_total") == 1 },
		time.Minute, 20*time.Millisecond)
	// Now: the idle partitions' watermark follows the wall clock, so an
	// older purchase would be late.
	t1 := time.Now().UTC().Truncate(time.Second)
	send(t, brokers, tp.cfg.Interactions, "c1", purchase("e2", "c1", t1))
	labels := c.firingFor(t, "c1", t1)
	require.NotContains(t, labels, "account_manager", "the tombstone dropped the profile")
}

// TestKfakeProfilesSurviveRestart: profiles live in the partition's
// snapshot with the customers offset: after a restart the instance does not
// read the profile again, yet a purchase still reads it.
func TestKfakeProfilesSurviveRestart(t *testing.T) {
	brokers := newKfake(t)
	tp := withCustomers(newTopics(t))
	createInputs(t, brokers, tp, 2)
	c := collect(t, brokers, tp)
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.Rules = writeRules(t, eventRules)
	t0 := time.Now().UTC().Truncate(time.Second).Add(-time.Hour)
	send(t, brokers, tp.cfg.Customers, "c1", profileOf("c1", "am1@example.com", t0.Add(-24*time.Hour)))
	send(t, brokers, tp.cfg.Interactions, "c1", purchase("e1", "c1", t0))
	a := startApp(t, cfg, "a")
	require.Equal(t, "am1@example.com", c.firingFor(t, "c1", t0)["account_manager"])
	c.alertFor(t, "resolved", "c1", t0)
	a.stop(t) // writes the final checkpoint

	b := startApp(t, cfg, "b")
	t1 := time.Now().UTC().Truncate(time.Second) // not behind the restored watermark
	send(t, brokers, tp.cfg.Interactions, "c1", purchase("e2", "c1", t1))
	require.Equal(t, "am1@example.com", c.firingFor(t, "c1", t1)["account_manager"])
	require.Zero(t, consumed(t, b, tp.cfg.Customers), "the restarted instance read no profile: the one it used came from the snapshot")
	require.Positive(t, gauge(t, b.reg, "crmpulse_stream_restores_total"))
}

// consumed is the records_consumed counter of topic.
func consumed(t *testing.T, r *running, topic string) float64 {
	return labelled(t, r.reg, "crmpulse_stream_consumed_records_total", "topic", topic)
}

// TestKfakeProfilesDoNotHoldTheWatermark: profiles never move or hold the
// watermark (SPEC §1.3). A customers topic that received nothing for days,
// and one that keeps receiving profiles while the events have stopped,
// both let the partitions go idle, so the watermark follows the wall clock
// and an inactivity timer fires.
func TestKfakeProfilesDoNotHoldTheWatermark(t *testing.T) {
	for _, trickle := range []bool{false, true} {
		t.Run(map[bool]string{false: "idle customers topic", true: "profiles keep coming"}[trickle], func(t *testing.T) {
			brokers := newKfake(t)
			tp := withCustomers(newTopics(t))
			createInputs(t, brokers, tp, 2)
			c := collect(t, brokers, tp)
			cfg := appConfig(brokers, tp, tp.prefix)
			cfg.Rules = writeRules(t, `version: 1
defaults: {timezone: UTC, allowed_lateness: 1m}
rules:
  - name: churn
    kind: inactivity
    source: interactions
    key: [tenant, customer_id]
    idle_for: 10m
    customer_labels: [account_manager]
`)
			t0 := time.Now().UTC().Truncate(time.Second).Add(-11*time.Minute + 10*time.Second)
			// One login: its timer is due at t0+10m, which only the
			// wall-clock watermark of idle partitions (now − 1m) reaches,
			// seconds from now.
			send(t, brokers, tp.cfg.Interactions, "c1", fmt.Appendf(nil,
				`{"event_id":"e1","type":"login","customer_id":"c1","occurred_at":%q}`, t0.Format(time.RFC3339)))
			cfg.IdleTimeout = stream.Duration(time.Second)
			r := startApp(t, cfg, "a")
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() {
				defer close(done)
				if !trickle {
					return
				}
				// Profiles of customers on every partition, dated far in
				// the past and in the future: neither moves anything.
				for i := 0; ctx.Err() == nil; i++ {
					at := t0.Add(time.Duration(1-2*(i%2)) * 365 * 24 * time.Hour)
					send(t, brokers, tp.cfg.Customers, fmt.Sprintf("p%d", i%8), profileOf(fmt.Sprintf("p%d", i%8), "x@example.com", at))
					select {
					case <-ctx.Done():
					case <-time.After(100 * time.Millisecond):
					}
				}
			}()
			defer func() { cancel(); <-done }()
			require.Eventually(t, func() bool {
				wm := gauge(t, r.reg, "crmpulse_stream_watermark_seconds")
				return wm > float64(t0.Add(10*time.Minute).Unix())
			}, 2*time.Minute, 100*time.Millisecond, "the pipeline watermark never passed the timer")
			labels := c.firingFor(t, "c1", t0.Add(10*time.Minute))
			require.Equal(t, "churn", labels["alertname"])
			if trickle {
				require.Positive(t, consumed(t, r, tp.cfg.Customers))
			}
		})
	}
}

// TestKfakeCustomersMustBeCoPartitioned: a customers topic with another
// partition count than the event topics is refused at start, naming each
// topic and its count.
func TestKfakeCustomersMustBeCoPartitioned(t *testing.T) {
	brokers := newKfake(t)
	tp := newTopics(t)
	createInputs(t, brokers, eventsOnly(tp), 4)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, ikafka.EnsureTopics(ctx, ikafka.Plain(brokers), ikafka.TopicSpec{Name: tp.cfg.Customers, Partitions: 2, ReplicationFactor: -1}))
	app, err := stream.New(appConfig(brokers, tp, tp.prefix), newLogger(testWriter{t, "a"}), nil)
	require.NoError(t, err)
	err = app.Run(ctx)
	require.Error(t, err)
	for _, want := range []string{
		"not co-partitioned",
		tp.cfg.Interactions + " (topics.interactions) has 4",
		tp.cfg.Receipts + " (topics.receipts) has 4",
		tp.cfg.Customers + " (topics.customers) has 2",
	} {
		require.Contains(t, err.Error(), want)
	}

	missing := withCustomers(newTopics(t))
	createInputs(t, brokers, eventsOnly(missing), 4)
	app, err = stream.New(appConfig(brokers, missing, missing.prefix), newLogger(testWriter{t, "b"}), nil)
	require.NoError(t, err)
	err = app.Run(ctx)
	require.ErrorContains(t, err, "input topic "+missing.cfg.Customers+" (topics.customers) does not exist")
}
