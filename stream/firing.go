package stream

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/crmpulse/crmpulse/api"
	"github.com/crmpulse/crmpulse/processor"
)

// firingTracker is the set of alerts firing in this instance, as the query
// API's /api/v1/alerts and /api/v1/rules list them. It is an OutputSink fed
// with every batch the partitions and the group stage emit: a firing
// record adds its fingerprint, a resolved record removes it.
//
// It is the simplest set that works, and it knows only what this process
// emitted: after a restart it is empty until the alerts fire again, and an
// alert of a partition that moved to another instance stays listed here
// until that instance resolves it. The per-partition active-alert set of
// the workers (stream/activealerts.go, in progress) has neither gap; the
// API should read that instead once it exists (TODO(lead): switch
// App.Firing to it).
type firingTracker struct {
	mu     sync.Mutex
	alerts map[string]processor.Alert
}

var (
	_ OutputSink      = (*firingTracker)(nil)
	_ api.AlertSource = (*firingTracker)(nil)
)

func newFiringTracker() *firingTracker {
	return &firingTracker{alerts: map[string]processor.Alert{}}
}

// Write implements OutputSink. It copies what it keeps: out is reused.
func (f *firingTracker) Write(_ context.Context, out *processor.Output) error {
	if len(out.Alerts) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range out.Alerts {
		a := out.Alerts[i]
		if a.State != processor.StateFiring {
			delete(f.alerts, a.Fingerprint)
			continue
		}
		a.Labels, a.Annotations = maps.Clone(a.Labels), maps.Clone(a.Annotations)
		f.alerts[a.Fingerprint] = a
	}
	return nil
}

// Flush implements OutputSink: the set is memory only.
func (f *firingTracker) Flush(context.Context) error { return nil }

// Firing implements api.AlertSource.
func (f *firingTracker) Firing() []processor.Alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Collect(maps.Values(f.alerts))
}
