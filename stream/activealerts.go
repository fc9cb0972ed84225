package stream

import (
	"bytes"
	"cmp"
	"context"
	"encoding/gob"
	"fmt"
	"maps"
	"slices"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// Alert state across restarts and rebalances (docs/run.md, "Alerts across
// restarts and rebalances"). The Alertmanager notifier keeps the alerts it
// re-posts in memory, and Alertmanager resolves an alert by itself once it
// has not been re-posted for 4× the resend delay. So that a restart, a crash
// or a partition moving to another instance does not resolve every firing
// alert, each owner of engine state (a partition worker, the group stage)
// keeps the set of alerts it holds as firing in its checkpoint and hands the
// restored set to the sinks when it takes over.

// activeAlerts is the set of alerts one owner holds as firing, kept from
// every alert it emits: a firing record adds or replaces its fingerprint's
// entry, a resolution removes it. It lives in the owner's goroutine.
type activeAlerts struct {
	owner  string
	firing map[string]processor.Alert // fingerprint → last firing record
}

func newActiveAlerts(owner string) *activeAlerts {
	return &activeAlerts{owner: owner, firing: map[string]processor.Alert{}}
}

// observe records the alerts of out, which the owner is about to hand to the
// sinks, and returns the context to hand them with: ctx naming the owner.
func (s *activeAlerts) observe(ctx context.Context, out *processor.Output) context.Context {
	if len(out.Alerts) == 0 {
		return ctx // no alert state to attribute; spares an allocation per record
	}
	for i := range out.Alerts {
		a := &out.Alerts[i]
		fp := a.Fingerprint
		if fp == "" {
			fp = processor.Fingerprint(a.Labels)
		}
		switch a.State {
		case processor.StateFiring:
			c := *a // the engine reuses out once the sinks have it
			c.Fingerprint = fp
			c.Labels, c.Annotations = maps.Clone(a.Labels), maps.Clone(a.Annotations)
			s.firing[fp] = c
		case processor.StateResolved:
			delete(s.firing, fp)
		}
	}
	return WithOutputOwner(ctx, s.owner)
}

// list returns the firing alerts ordered by fingerprint.
func (s *activeAlerts) list() []processor.Alert {
	out := slices.Collect(maps.Values(s.firing))
	slices.SortFunc(out, func(a, b processor.Alert) int { return cmp.Compare(a.Fingerprint, b.Fingerprint) })
	return out
}

// marshal encodes the set for a checkpoint; an empty set is nil.
func (s *activeAlerts) marshal() ([]byte, error) {
	if len(s.firing) == 0 {
		return nil, nil
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(s.list()); err != nil {
		return nil, fmt.Errorf("encoding the firing alerts of %s: %w", s.owner, err)
	}
	return buf.Bytes(), nil
}

// restore replaces the set with the one a checkpoint holds (nil: empty, as
// in snapshots written before this set existed). Alerts of rules that rf no
// longer has are dropped: no component is left to resolve them, and
// re-announcing them would keep them firing for good.
func (s *activeAlerts) restore(b []byte, rf *rules.File) error {
	clear(s.firing)
	if len(b) == 0 {
		return nil
	}
	var list []processor.Alert
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&list); err != nil {
		return fmt.Errorf("decoding the firing alerts of %s: %w", s.owner, err)
	}
	have := map[string]bool{}
	if rf != nil {
		for _, r := range rf.Rules {
			have[r.Name] = true
		}
	}
	for _, a := range list {
		if have[a.Rule] {
			s.firing[a.Fingerprint] = a
		}
	}
	return nil
}

// assigned hands the restored set to every sink that keeps alert state.
func (s *activeAlerts) assigned(sinks []OutputSink) {
	var firing []processor.Alert
	for _, sink := range sinks {
		if as, ok := sink.(AlertStateSink); ok {
			if firing == nil {
				firing = s.list()
			}
			as.Assigned(s.owner, firing)
		}
	}
}

// revoked tells every sink that keeps alert state that the owner stopped.
func (s *activeAlerts) revoked(sinks []OutputSink) {
	for _, sink := range sinks {
		if as, ok := sink.(AlertStateSink); ok {
			as.Revoked(s.owner)
		}
	}
}
