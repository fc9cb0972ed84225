package stream

import (
	"fmt"
	"net/http"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/crmpulse/crmpulse/api"
)

func (a *App) handler() http.Handler {
	mux := http.NewServeMux()
	if a.gatherer != nil {
		mux.Handle("/metrics", promhttp.HandlerFor(a.gatherer, promhttp.HandlerOpts{}))
	}
	mux.Handle(api.Prefix, a.api) // the query API (docs/api.md), under the same wrapper as /metrics
	// /healthz fails while a partition has made no progress for
	// health.stall_timeout with work to do (the watchdog's last look);
	// a restart is then the remedy. /readyz says whether to send traffic.
	mux.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		if why := a.health.unhealthy(); why != "" {
			http.Error(w, why, http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		if !a.joined.Load() {
			http.Error(w, "not ready: not in the consumer group yet", http.StatusServiceUnavailable)
			return
		}
		if r, n := a.restored.Load(), a.assigned.Load(); r < n {
			http.Error(w, fmt.Sprintf("not ready: %d of %d partitions restored", r, n), http.StatusServiceUnavailable)
			return
		}
		fmt.Fprintf(w, "ready: %d partitions\n", a.assigned.Load())
	})
	return mux
}
