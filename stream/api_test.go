package stream_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor/rules"
)

// firingOf is the set of fingerprints whose last alert record (by
// starts_at) is still firing: what the instance should list as firing
// once it has emitted everything.
func firingOf(t *testing.T, o *outputs) []string {
	t.Helper()
	type last struct {
		startsAt string
		firing   bool
	}
	byFP := map[string]last{}
	for _, raw := range o.alerts {
		var a struct{ Fingerprint, State, StartsAt string }
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(raw), &m))
		a.Fingerprint, a.State, a.StartsAt = m["fingerprint"].(string), m["state"].(string), m["starts_at"].(string)
		l, ok := byFP[a.Fingerprint]
		at, err := time.Parse(time.RFC3339Nano, a.StartsAt)
		require.NoError(t, err)
		var prev time.Time
		if ok {
			prev, err = time.Parse(time.RFC3339Nano, l.startsAt)
			require.NoError(t, err)
		}
		switch {
		case !ok || at.After(prev):
			byFP[a.Fingerprint] = last{a.StartsAt, a.State == "firing"}
		case at.Equal(prev) && a.State != "firing":
			byFP[a.Fingerprint] = last{a.StartsAt, false}
		}
	}
	var out []string
	for fp, l := range byFP {
		if l.firing {
			out = append(out, fp)
		}
	}
	slices.Sort(out)
	return out
}

// TestKfakeQueryAPI: `crmpulse run` serves the query API on its listener.
// Once the outputs equal replay's, /api/v1/alerts lists exactly the alerts
// replay leaves firing, /api/v1/rules the running rules with those alerts,
// and a backtest without ClickHouse is refused as unavailable.
func TestKfakeQueryAPI(t *testing.T) {
	brokers := newKfake(t)
	ds := generate(t, genConfig{customers: 60, days: 3, seed: 5})
	want := replayOutputs(t, ds)
	tp := newTopics(t)
	createInputs(t, brokers, tp, 2)
	c := collect(t, brokers, tp)
	produce(t, brokers, tp, ds)
	r := startApp(t, appConfig(brokers, tp, tp.prefix), "a")
	c.waitEqual(t, want, 2*time.Minute)

	base := "http://" + r.app.Addr()
	get := func(path string, v any) {
		t.Helper()
		resp, err := http.Get(base + path)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, string(b))
		require.NoError(t, json.Unmarshal(b, v), string(b))
	}
	var alerts struct {
		Status string
		Data   struct {
			Alerts []struct {
				Fingerprint string
				State       string
				Labels      map[string]string
			}
		}
	}
	get("/api/v1/alerts", &alerts)
	require.Equal(t, "success", alerts.Status)
	var got []string
	for _, a := range alerts.Data.Alerts {
		require.Equal(t, "firing", a.State)
		require.NotEmpty(t, a.Labels["alertname"])
		got = append(got, a.Fingerprint)
	}
	slices.Sort(got)
	wantFiring := firingOf(t, want)
	require.NotEmpty(t, wantFiring, "the data set leaves some alert firing")
	require.Equal(t, wantFiring, got)

	var rulesAns struct {
		Data struct {
			Groups []struct {
				File  string
				Rules []struct {
					Name   string
					State  string
					Alerts []struct{ Fingerprint string }
				}
			}
		}
	}
	get("/api/v1/rules", &rulesAns)
	rf, err := rules.Load(rulesFile)
	require.NoError(t, err)
	require.Len(t, rulesAns.Data.Groups, 1)
	require.Equal(t, rulesFile, rulesAns.Data.Groups[0].File)
	require.Len(t, rulesAns.Data.Groups[0].Rules, len(rf.Rules))
	n := 0
	for _, rule := range rulesAns.Data.Groups[0].Rules {
		n += len(rule.Alerts)
		if len(rule.Alerts) > 0 {
			require.Equal(t, "firing", rule.State, rule.Name)
		}
	}
	require.Equal(t, len(wantFiring), n, "every firing alert is listed under its rule")

	resp, err := http.Post(base+"/api/v1/backtest", "application/json", nil)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode)
}
