package processor

import (
	"maps"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// This file is the engine's side of customer profiles (SPEC §1.3): feeding
// versions and tombstones, attaching the version current at a record's
// time to it, and customer_labels on the alerts the components emit.

// profileObserver is implemented by components that see profile versions
// as they are read (calendar rules).
type profileObserver interface {
	Customer(c *ingest.Customer, out *Output)
}

// profileReader is implemented by components that read profiles when
// timers fire (the resend policies' time zone); the engine hands them its
// store once built.
type profileReader interface {
	useProfiles(s *profileStore)
}

// readHorizon is how long before the watermark a profile can still be
// read: an alert's starts_at lags the moment it fires by its rule's for.
func readHorizon(f *rules.File) time.Duration {
	var h time.Duration
	for _, r := range f.Rules {
		h = max(h, r.ForDur, time.Duration(r.ForWindows-1)*r.Window.D())
	}
	return h
}

// Customer feeds one profile version (SPEC §1.3). Profiles never move the
// watermark and are never late: a version older than the watermark is
// kept for what is still to be decided, and changes nothing already
// decided.
func (e *Engine) Customer(c *ingest.Customer) error {
	if c.Tenant == "" {
		c.Tenant = ingest.DefaultTenant // as the decoder does; Go callers may leave it out
	}
	e.stats.Customers++
	e.profiles.put(c)
	n0 := len(e.out.Alerts)
	defer e.digestObserve(n0)
	for _, comp := range e.comps {
		if po, ok := comp.(profileObserver); ok {
			n := len(e.out.Alerts)
			po.Customer(c, &e.out)
			e.labelAlerts(n)
		}
	}
	return nil
}

// tombstoneObserver is implemented by components that keep, or write,
// profiles outside the engine (the ClickHouse customers rows): they learn
// of a Kafka tombstone with what it dropped in each tenant.
type tombstoneObserver interface {
	DropCustomer(customerID string, dropped []DroppedProfile, out *Output)
}

// DropCustomer applies a Kafka tombstone (a null value) for customerID:
// every version of its profile, in every tenant, is forgotten at once.
// Components that observe tombstones may add records to the output, which
// the driver emits as after a record.
func (e *Engine) DropCustomer(customerID string) {
	dropped := e.profiles.drop(customerID)
	if len(dropped) == 0 {
		return
	}
	for _, comp := range e.comps {
		if to, ok := comp.(tombstoneObserver); ok {
			to.DropCustomer(customerID, dropped, &e.out)
		}
	}
}

// Profile returns the profile of (tenant, customerID) current at t, nil
// when there is none; the returned version must not be modified.
func (e *Engine) Profile(tenant, customerID string, t time.Time) *ingest.Profile {
	return e.profiles.at(tenant, customerID, t.UnixNano())
}

// labelAlerts adds customer_labels (SPEC §3) to the alerts appended to
// e.out since index from: a firing record gets the profile fields of the
// version current at its starts_at, a resolved one exactly the labels its
// firing record got.
func (e *Engine) labelAlerts(from int) {
	for i := from; i < len(e.out.Alerts); i++ {
		a := &e.out.Alerts[i]
		due := a.Due
		a.Due = time.Time{} // only for here: records leave the engine without it
		r := e.custRules[a.Rule]
		if r == nil {
			continue
		}
		base := a.Fingerprint
		extra, known := e.custLabels[base]
		if !known && a.State == StateFiring {
			tenant := a.Labels["tenant"]
			if tenant == "" {
				tenant = ingest.DefaultTenant
			}
			if p := e.profiles.at(tenant, a.Labels["customer_id"], a.StartsAt.UnixNano()); p != nil {
				for _, f := range r.CustomerFields {
					if v := f.Get(p); v != "" && v != ingest.UnknownDim {
						if extra == nil {
							extra = map[string]string{}
						}
						extra[f.Label] = v
					}
				}
			}
			e.custLabels[base] = extra
		}
		if a.State == StateResolved {
			delete(e.custLabels, base)
		}
		if len(extra) == 0 {
			continue
		}
		labels := maps.Clone(a.Labels)
		maps.Copy(labels, extra)
		a.Labels = labels
		a.Fingerprint = Fingerprint(labels)
		if due.IsZero() {
			a.Annotations = r.RenderAnnotations(labels, a.Value)
		} else {
			a.Annotations = r.RenderDeadlineAnnotations(labels, a.Value, due)
		}
	}
}

// attachProfile leaves a record's profile to be looked up from the store
// on first use (ingest.Interaction.CurrentProfile): before the engine
// returns from the record, or when the worker forwards it right after,
// so the version is the one current at the record's time among those
// read so far, as an eager lookup would give. Most records are never
// asked: only rules and policies that match them and read customer.* ask.
func (e *Engine) attachProfile(p **ingest.Profile, from *ingest.ProfileSource) {
	if e.attach {
		*p, *from = nil, e.profiles
	}
}
