package stream_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/stream"
)

func TestKfakeTwoInstances(t *testing.T) {
	testTwoInstances(t, newKfake(t), genConfig{customers: 600, days: 3, seed: 5})
}

func TestKafkaTwoInstances(t *testing.T) {
	testTwoInstances(t, realBrokers(t), genConfig{customers: 2000, days: 3, seed: 6})
}

// gauge is the sum of every series of the gauge or counter name.
func gauge(t testing.TB, reg *prometheus.Registry, name string) float64 {
	return labelled(t, reg, name, "", "")
}

// labelled is the sum of the series of the gauge or counter name whose
// label has value (every series when label is "").
func labelled(t testing.TB, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	require.NoError(t, err)
	sum := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if label != "" && !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
				return l.GetName() == label && l.GetValue() == value
			}) {
				continue
			}
			switch {
			case m.Gauge != nil:
				sum += m.Gauge.GetValue()
			case m.Counter != nil:
				sum += m.Counter.GetValue()
			}
		}
	}
	return sum
}

// testTwoInstances: two instances of one group split the partitions and
// together produce replay's outputs, group-level rules included; stopping
// one moves its partitions (and the group stage, if it had partition 0),
// with their state, to the other.
func testTwoInstances(t *testing.T, brokers []string, gc genConfig) {
	ds := generate(t, gc)
	want := replayOutputsWith(t, ds, groupRulesFile)
	tp := newTopics(t)
	createInputs(t, brokers, tp, 4)
	produce(t, brokers, tp, ds)
	c := collect(t, brokers, tp)
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.Rules = groupRulesFile
	a := startApp(t, cfg, "a")
	b := startApp(t, cfg, "b")
	require.Eventually(t, func() bool {
		na, nb := gauge(t, a.reg, "crmpulse_stream_assigned_partitions"), gauge(t, b.reg, "crmpulse_stream_assigned_partitions")
		return na > 0 && nb > 0 && na+nb == 4 && a.app.Ready() && b.app.Ready()
	}, time.Minute, 50*time.Millisecond, "the two instances never split the partitions")
	t.Logf("split: a has %v partitions, b has %v",
		gauge(t, a.reg, "crmpulse_stream_assigned_partitions"), gauge(t, b.reg, "crmpulse_stream_assigned_partitions"))
	restoredBefore := gauge(t, b.reg, "crmpulse_stream_restores_total")
	a.stop(t)
	require.Eventually(t, func() bool {
		return gauge(t, b.reg, "crmpulse_stream_assigned_partitions") == 4 && b.app.Ready()
	}, time.Minute, 50*time.Millisecond, "b never took a's partitions")
	c.waitEqual(t, want, 3*time.Minute)
	c.requireNoDups(t) // handovers write final checkpoints: nothing is re-produced
	mfs, err := b.reg.Gather()
	require.NoError(t, err)
	for _, mf := range mfs {
		if mf.GetName() == "crmpulse_stream_restores_total" {
			for _, m := range mf.GetMetric() {
				t.Logf("b restores %s=%s: %v", m.GetLabel()[0].GetName(), m.GetLabel()[0].GetValue(), m.GetCounter().GetValue())
			}
		}
	}
	require.Greater(t, gauge(t, b.reg, "crmpulse_stream_restores_total"), restoredBefore)
}

// TestKfakeReload: a bad rules file is refused and counted, the running
// rules stay; a good one is taken on the fly.
func TestKfakeReload(t *testing.T) {
	brokers := newKfake(t)
	ds := generate(t, genConfig{customers: 100, days: 1, seed: 7})
	tp := newTopics(t)
	createInputs(t, brokers, tp, 2)
	produce(t, brokers, tp, ds)
	dir := t.TempDir()
	good, err := os.ReadFile(rulesFile)
	require.NoError(t, err)
	path := filepath.Join(dir, "rules.yaml")
	require.NoError(t, os.WriteFile(path, good, 0o644))
	cfg := appConfig(brokers, tp, tp.prefix)
	cfg.Rules = path
	r := startApp(t, cfg, "a")
	require.Eventually(t, r.app.Ready, time.Minute, 20*time.Millisecond)

	reloads := func(outcome string) float64 {
		mfs, err := r.reg.Gather()
		require.NoError(t, err)
		for _, mf := range mfs {
			if mf.GetName() == "crmpulse_rules_reloads_total" {
				for _, m := range mf.GetMetric() {
					if m.GetLabel()[0].GetValue() == outcome {
						return m.GetCounter().GetValue()
					}
				}
			}
		}
		return -1
	}
	require.ErrorIs(t, r.app.Reload(), stream.ErrReloadUnchanged)
	require.Equal(t, 1.0, reloads("unchanged"))

	require.NoError(t, os.WriteFile(path, []byte("version: 1\nrules:\n  - {name: x, kind: nope}\n"), 0o644))
	require.Error(t, r.app.Reload())
	require.Equal(t, 1.0, reloads("failure"))
	require.Equal(t, 0.0, gauge(t, r.reg, "crmpulse_rules_last_reload_successful"))

	changed := append(good, []byte("\n  - {name: sms_retry_email, channel: email, on: [failed], max_attempts: 2, backoff: {initial: 1m}}\n")...)
	require.NoError(t, os.WriteFile(path, changed, 0o644))
	// The file watcher notices the change on its own.
	require.Eventually(t, func() bool { return reloads("success") == 1 }, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, 1.0, gauge(t, r.reg, "crmpulse_rules_last_reload_successful"))
}
