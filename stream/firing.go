package stream

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/crmpulse/crmpulse/api"
	"github.com/crmpulse/crmpulse/processor"
)

// firingTracker is the set of alerts firing in this instance, as the query
// API's /api/v1/alerts and /api/v1/rules list them. It is an OutputSink and
// an AlertStateSink: each owner of engine state (a partition worker, the
// group stage; activealerts.go) hands it the firing alerts it restored when
// it takes over (Assigned), its emitted alerts as it goes (Write: a firing
// record adds its fingerprint, a resolution removes it), and says when it
// stops (Revoked: its alerts are no longer this instance's to list). So the
// list survives restarts and follows partitions across instances, as the
// owners' own sets do.
type firingTracker struct {
	mu     sync.Mutex
	owners map[string]map[string]processor.Alert // owner → fingerprint → last firing record
}

var (
	_ OutputSink      = (*firingTracker)(nil)
	_ AlertStateSink  = (*firingTracker)(nil)
	_ api.AlertSource = (*firingTracker)(nil)
)

func newFiringTracker() *firingTracker {
	return &firingTracker{owners: map[string]map[string]processor.Alert{}}
}

// set is owner's set, created when missing; f.mu is held.
func (f *firingTracker) set(owner string) map[string]processor.Alert {
	s := f.owners[owner]
	if s == nil {
		s = map[string]processor.Alert{}
		f.owners[owner] = s
	}
	return s
}

// keep is a copy of a that outlives the output it came in (out is reused).
func keep(a processor.Alert) processor.Alert {
	a.Labels, a.Annotations = maps.Clone(a.Labels), maps.Clone(a.Annotations)
	return a
}

// Write implements OutputSink.
func (f *firingTracker) Write(ctx context.Context, out *processor.Output) error {
	if len(out.Alerts) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	s := f.set(OutputOwner(ctx))
	for i := range out.Alerts {
		a := &out.Alerts[i]
		fp := a.Fingerprint
		if fp == "" {
			fp = processor.Fingerprint(a.Labels)
		}
		if a.State != processor.StateFiring {
			delete(s, fp)
			continue
		}
		c := keep(*a)
		c.Fingerprint = fp
		s[fp] = c
	}
	return nil
}

// Flush implements OutputSink: the set is memory only.
func (f *firingTracker) Flush(context.Context) error { return nil }

// Assigned implements AlertStateSink: owner's set is what it restored.
func (f *firingTracker) Assigned(owner string, firing []processor.Alert) {
	f.mu.Lock()
	defer f.mu.Unlock()
	s := make(map[string]processor.Alert, len(firing))
	for _, a := range firing {
		s[a.Fingerprint] = keep(a)
	}
	f.owners[owner] = s
}

// Revoked implements AlertStateSink: owner's alerts are listed by whoever
// owns them next.
func (f *firingTracker) Revoked(owner string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.owners, owner)
}

// Firing implements api.AlertSource: every owner's firing alerts, once per
// fingerprint (the latest start, should two owners hold one).
func (f *firingTracker) Firing() []processor.Alert {
	f.mu.Lock()
	defer f.mu.Unlock()
	all := map[string]processor.Alert{}
	for _, s := range f.owners {
		for fp, a := range s {
			if old, ok := all[fp]; !ok || a.StartsAt.After(old.StartsAt) {
				all[fp] = a
			}
		}
	}
	out := slices.Collect(maps.Values(all))
	slices.SortFunc(out, func(a, b processor.Alert) int { return cmp.Compare(a.Fingerprint, b.Fingerprint) })
	return out
}
