package alertmanager

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
)

// fakeAM is an in-memory Alertmanager behind an http.RoundTripper, so that
// the notifier's timers can run under testing/synctest.
type fakeAM struct {
	mu     sync.Mutex
	posts  []fakePost
	down   bool // answer with a network error
	status int  // answer with this status (0: 200)
}

type fakePost struct {
	host   string
	at     time.Time
	alerts []postableAlert
	ok     bool
}

func (f *fakeAM) RoundTrip(req *http.Request) (*http.Response, error) {
	return f.answer(req, func() bool { return f.down })
}

// answer records the post and answers it; isDown is called with f.mu held,
// so that whether this request fails is decided by the same state that
// records it, never by a flag another request is writing meanwhile.
func (f *fakeAM) answer(req *http.Request, isDown func() bool) (*http.Response, error) {
	var alerts []postableAlert
	if err := json.NewDecoder(req.Body).Decode(&alerts); err != nil {
		return nil, err
	}
	req.Body.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	p := fakePost{host: req.URL.Host, at: time.Now(), alerts: alerts}
	if isDown() {
		f.posts = append(f.posts, p)
		return nil, errors.New("connect: connection refused")
	}
	code := f.status
	if code == 0 {
		code = http.StatusOK
	}
	p.ok = code/100 == 2
	f.posts = append(f.posts, p)
	return &http.Response{StatusCode: code, Header: http.Header{}, Body: io.NopCloser(strings.NewReader("")), Request: req}, nil
}

func (f *fakeAM) set(down bool, status int) {
	f.mu.Lock()
	f.down, f.status = down, status
	f.mu.Unlock()
}

// take returns and forgets the posts received so far.
func (f *fakeAM) take() []fakePost {
	f.mu.Lock()
	defer f.mu.Unlock()
	p := f.posts
	f.posts = nil
	return p
}

// byName indexes the alerts of posts by alertname+customer label.
func byName(posts []fakePost) map[string]postableAlert {
	m := map[string]postableAlert{}
	for _, p := range posts {
		for _, a := range p.alerts {
			m[a.Labels["alertname"]+"/"+a.Labels["customer_id"]] = a
		}
	}
	return m
}

func firing(rule, customer string, startsAt time.Time) processor.Alert {
	labels := map[string]string{"alertname": rule, "tenant": "t1", "customer_id": customer}
	return processor.Alert{
		Fingerprint: processor.Fingerprint(labels),
		Rule:        rule,
		Kind:        "inactivity",
		State:       processor.StateFiring,
		Severity:    "warning",
		Labels:      labels,
		Annotations: map[string]string{"summary": "customer " + customer + " went quiet"},
		StartsAt:    startsAt,
	}
}

func resolved(a processor.Alert, endsAt time.Time) processor.Alert {
	a.State = processor.StateResolved
	a.EndsAt = &endsAt
	return a
}

// run starts a notifier on fake and returns it with its registry; the
// notifier is stopped when the test ends.
func run(t *testing.T, cfg Config, fake *fakeAM) (*Notifier, *prometheus.Registry) {
	t.Helper()
	if cfg.URLs == nil {
		cfg.URLs = []string{"http://am1:9093"}
	}
	cfg.Client = &http.Client{Transport: fake}
	reg := prometheus.NewRegistry()
	n, err := New(cfg, nil, reg)
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		require.NoError(t, <-done)
	})
	return n, reg
}

func TestNotifyPostsPromptlyAndResends(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeAM{}
		n, reg := run(t, Config{ResendDelay: time.Minute}, fake)
		synctest.Wait()
		require.Empty(t, fake.take(), "nothing to post yet")

		start := time.Now()
		eventTime := start.Add(-time.Hour)
		n.Notify(firing("churn", "c1", eventTime), firing("churn", "c2", eventTime))
		synctest.Wait()
		posts := fake.take()
		require.Len(t, posts, 1, "both changes go in one batch")
		require.Equal(t, start, posts[0].at, "posted at once")
		got := byName(posts)
		require.Len(t, got, 2)
		a := got["churn/c1"]
		require.Equal(t, map[string]string{"alertname": "churn", "tenant": "t1", "customer_id": "c1", "severity": "warning"}, a.Labels)
		require.Equal(t, "customer c1 went quiet", a.Annotations["summary"])
		require.Equal(t, eventTime.UTC(), a.StartsAt, "startsAt is the event time")
		require.Equal(t, start.Add(4*time.Minute).UTC(), a.EndsAt, "firing: endsAt = now + 4×ResendDelay")
		require.Equal(t, 2.0, testutil.ToFloat64(n.metrics.active))

		// Every ResendDelay the whole firing set is posted again with a
		// later endsAt.
		time.Sleep(time.Minute)
		synctest.Wait()
		posts = fake.take()
		require.Len(t, posts, 1)
		require.Len(t, posts[0].alerts, 2)
		require.Equal(t, start.Add(5*time.Minute).UTC(), posts[0].alerts[0].EndsAt)

		// A resolution is posted with endsAt = ends_at, then forgotten.
		ends := start.Add(-time.Minute)
		n.Notify(resolved(firing("churn", "c1", eventTime), ends))
		synctest.Wait()
		posts = fake.take()
		require.Len(t, posts, 1)
		require.Len(t, posts[0].alerts, 1)
		require.Equal(t, ends.UTC(), posts[0].alerts[0].EndsAt)
		require.Equal(t, 1.0, testutil.ToFloat64(n.metrics.active))
		require.Len(t, n.Active(), 1)

		time.Sleep(time.Minute)
		synctest.Wait()
		got = byName(fake.take())
		require.Len(t, got, 1, "the delivered resolution is not re-posted")
		require.Contains(t, got, "churn/c2")

		require.Equal(t, 4.0, testutil.ToFloat64(n.metrics.posts.WithLabelValues("http://am1:9093", outcomeSuccess)))
		require.Equal(t, 6.0, testutil.ToFloat64(n.metrics.alertsPosted.WithLabelValues("http://am1:9093")))
		require.Equal(t, 1.0, testutil.ToFloat64(n.metrics.up.WithLabelValues("http://am1:9093")))
		count, err := testutil.GatherAndCount(reg, "crmpulse_alertmanager_post_duration_seconds")
		require.NoError(t, err)
		require.Equal(t, 1, count)
	})
}

func TestOutageRetriesWithBackoffAndRepostsState(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeAM{}
		n, _ := run(t, Config{ResendDelay: time.Hour, MaxBackoff: 4 * time.Second}, fake)
		ev := time.Now().Add(-time.Hour)
		a, b, c := firing("churn", "a", ev), firing("churn", "b", ev), firing("churn", "c", ev)
		n.Notify(a, b)
		synctest.Wait()
		require.Len(t, fake.take(), 1)

		fake.set(true, 0)
		start := time.Now()
		n.Notify(c, resolved(a, ev.Add(time.Minute)))
		time.Sleep(20 * time.Second)
		synctest.Wait()
		posts := fake.take()
		var waits []time.Duration
		prev := start
		for _, p := range posts {
			waits = append(waits, p.at.Sub(prev))
			prev = p.at
		}
		s := time.Second
		require.Equal(t, []time.Duration{0, s / 2, s, 2 * s, 4 * s, 4 * s, 4 * s}, waits[:7], "exponential backoff capped at MaxBackoff")
		for _, p := range posts[1:] {
			require.Len(t, p.alerts, 3, "every retry carries the whole state")
		}

		// A 503 is retried as well.
		fake.set(false, http.StatusServiceUnavailable)
		time.Sleep(4 * time.Second)
		synctest.Wait()
		require.NotEmpty(t, fake.take())

		fake.set(false, 0)
		time.Sleep(4 * time.Second)
		synctest.Wait()
		posts = fake.take()
		require.Len(t, posts, 1)
		got := byName(posts)
		require.Len(t, got, 3, "the first successful post carries the current state")
		require.True(t, got["churn/a"].EndsAt.Equal(ev.Add(time.Minute)), "a resolved")
		require.True(t, got["churn/b"].EndsAt.After(time.Now()), "b firing")
		require.True(t, got["churn/c"].EndsAt.After(time.Now()), "c firing")
		require.Len(t, n.Active(), 2)

		u := "http://am1:9093"
		require.Positive(t, testutil.ToFloat64(n.metrics.posts.WithLabelValues(u, outcomeNetworkError)))
		require.Positive(t, testutil.ToFloat64(n.metrics.posts.WithLabelValues(u, outcomeServerError)))
	})
}

func TestClientErrorIsNotRetried(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeAM{status: http.StatusBadRequest}
		n, _ := run(t, Config{ResendDelay: time.Minute}, fake)
		ev := time.Now()
		a := firing("churn", "a", ev)
		n.Notify(a)
		time.Sleep(30 * time.Second)
		synctest.Wait()
		require.Len(t, fake.take(), 1, "a refused batch is not retried")
		n.Notify(resolved(a, ev))
		synctest.Wait()
		require.Len(t, fake.take(), 1)
		require.Empty(t, n.Active(), "a refused resolution is dropped, not kept forever")
		require.Equal(t, 2.0, testutil.ToFloat64(n.metrics.posts.WithLabelValues("http://am1:9093", outcomeClientError)))
	})
}

// fakeHA answers per host: hosts in downHosts (guarded by mu) fail. The
// targets are posted to concurrently, so each request reads its own host's
// state under the lock instead of setting the shared down flag.
type fakeHA struct {
	fakeAM
	downHosts map[string]bool
}

func (f *fakeHA) RoundTrip(req *http.Request) (*http.Response, error) {
	return f.answer(req, func() bool { return f.downHosts[req.URL.Host] })
}

func TestHAEveryTargetIndependently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeHA{downHosts: map[string]bool{"am2:9093": true}}
		cfg := Config{
			URLs:        []string{"http://am1:9093", "http://am2:9093"},
			ResendDelay: time.Hour, MaxBackoff: time.Second,
			Client: &http.Client{Transport: fake},
		}
		n, err := New(cfg, nil, nil)
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error)
		go func() { done <- n.Run(ctx) }()

		ev := time.Now()
		a := firing("churn", "a", ev)
		n.Notify(a)
		synctest.Wait()
		n.Notify(resolved(a, ev))
		time.Sleep(5 * time.Second)
		synctest.Wait()
		hosts := map[string]int{}
		for _, p := range fake.take() {
			if p.ok {
				hosts[p.host]++
			}
		}
		require.Equal(t, map[string]int{"am1:9093": 2}, hosts)
		require.Empty(t, n.Active())
		n.mu.Lock()
		require.Len(t, n.alerts, 1, "the resolution is kept until am2 has it")
		n.mu.Unlock()

		fake.mu.Lock()
		fake.downHosts = nil
		fake.mu.Unlock()
		time.Sleep(time.Second)
		synctest.Wait()
		posts := fake.take()
		require.Len(t, posts, 1)
		require.Equal(t, "am2:9093", posts[0].host)
		require.Equal(t, ev.UTC(), posts[0].alerts[0].EndsAt)
		n.mu.Lock()
		require.Empty(t, n.alerts)
		n.mu.Unlock()

		cancel()
		require.NoError(t, <-done)
	})
}

func TestBatchesAreCapped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeAM{}
		n, _ := run(t, Config{MaxBatchSize: 2}, fake)
		ev := time.Now()
		for _, c := range []string{"a", "b", "c", "d", "e"} {
			n.Notify(firing("churn", c, ev))
		}
		synctest.Wait()
		posts := fake.take()
		total := 0
		for _, p := range posts {
			require.LessOrEqual(t, len(p.alerts), 2)
			total += len(p.alerts)
		}
		require.Equal(t, 5, total)
	})
}

func TestFinalFlushOnShutdown(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeAM{}
		n, err := New(Config{URLs: []string{"http://am1:9093"}, Client: &http.Client{Transport: fake}}, nil, nil)
		require.NoError(t, err)
		ev := time.Now()
		n.Notify(resolved(firing("churn", "a", ev), ev))
		ctx, cancel := context.WithCancel(context.Background())
		cancel() // Run sees a finished context from the start
		require.NoError(t, n.Run(ctx))
		require.Len(t, fake.take(), 1, "pending resolutions are posted once on the way out")
		require.Error(t, n.Run(context.Background()), "Run twice")
	})
}

func TestPostableClampsTimes(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fake := &fakeAM{}
		n, _ := run(t, Config{}, fake)
		now := time.Now()
		future := now.Add(time.Hour)
		// Event time ahead of the wall clock.
		n.Notify(firing("churn", "a", future))
		n.Notify(resolved(firing("churn", "b", future), future.Add(time.Minute)))
		synctest.Wait()
		got := byName(fake.take())
		require.Equal(t, now.UTC(), got["churn/a"].StartsAt, "startsAt is clamped to now")
		require.Equal(t, now.UTC(), got["churn/b"].EndsAt, "a resolution takes effect now")
		require.False(t, got["churn/b"].StartsAt.After(got["churn/b"].EndsAt))
	})
}

func TestLabelName(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"tenant", "tenant"},
		{"ticket_id", "ticket_id"},
		{"a.b-c", "a_b_c"},
		{"9lives", "_lives"},
		{"x9", "x9"},
		{"", "_"},
	} {
		require.Equal(t, tc.want, labelName(tc.in), tc.in)
	}
}

func TestConfigValidation(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{name: "ok", cfg: Config{URLs: []string{"http://127.0.0.1:9093", "https://am.example/prefix/"}}},
		{name: "no urls", cfg: Config{}, err: "urls: at least one"},
		{name: "bad scheme", cfg: Config{URLs: []string{"ftp://x"}}, err: "urls[0]"},
		{name: "no host", cfg: Config{URLs: []string{"http://"}}, err: "no host"},
		{name: "duplicate", cfg: Config{URLs: []string{"http://a:1", "http://a:1"}}, err: "urls[1]"},
		{name: "negative", cfg: Config{URLs: []string{"http://a:1"}, ResendDelay: -1}, err: "resend_delay"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := New(tc.cfg, nil, nil)
			if tc.err == "" {
				require.NoError(t, err)
				require.Equal(t, "https://am.example/prefix/api/v2/alerts", n.targets[1].endpoint)
				return
			}
			require.ErrorContains(t, err, tc.err)
		})
	}
}

func TestMetricsShareRegistry(t *testing.T) {
	reg := prometheus.NewRegistry()
	_, err := New(Config{URLs: []string{"http://a:1"}}, nil, reg)
	require.NoError(t, err)
	_, err = New(Config{URLs: []string{"http://b:1"}}, nil, reg)
	require.NoError(t, err, "a second notifier reuses the registered collectors")
}
