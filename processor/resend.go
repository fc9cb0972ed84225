package processor

import (
	"bytes"
	"crypto/sha256"
	"encoding/gob"
	"encoding/hex"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// resender applies the resend policies of SPEC §3.2. One component serves
// every policy because suppression and the frequency cap are per customer
// across policies.
type resender struct {
	file     *rules.File
	policies []*rules.Policy
	suppress map[string]bool // statuses some policy suppresses on
	msgs     map[string]*msgState
	custs    map[string]*custState
	timers   timerHeap // undelivered timers: Key message id, N attempt, Ref sent time
	sweep    int64     // next event time at which idle messages are forgotten
	// suppressI are the interaction types some policy suppresses on
	// (suppress_on_interactions); profiles give the customer's time zone.
	suppressI map[string]bool
	profiles  *profileStore
}

// messageRetention is how long, in event time, a message's state is kept
// after its last receipt. Past it, per-attempt dedup still holds for
// consumers because trigger ids are derived from message id and attempt.
const messageRetention = 72 * time.Hour

// sweepEvery is how often, in event time, idle state is looked for: rarely
// enough that the scan is cheap per record, often enough that memory stays
// within messageRetention + sweepEvery of traffic.
const sweepEvery = 12 * time.Hour

type msgState struct {
	Policy   int // index of the policy that owns the message, -1 until one triggers
	Customer string
	Tenant   string
	TZ       string
	Last     int64
	Attempts []attemptState
	// byN indexes Attempts by attempt number once a message has more than
	// attemptScanMax of them, so that a long history costs constant time
	// per receipt instead of a scan. It is not part of the snapshot: after
	// a restore it is rebuilt on first use.
	byN map[int]int
}

// attemptScanMax is how many attempts a message keeps before attempt looks
// them up in an index: below it a scan is cheaper than a map, and nearly
// every message stays below it (max_attempts is a handful).
const attemptScanMax = 8

type attemptState struct {
	N         int
	Sent      int64 // time of the sent receipt, 0 if none
	Outcome   int64 // earliest non-sent receipt, 0 if none
	Delivered int64 // earliest delivered/opened/clicked, 0 if none
	Triggered bool  // a trigger for attempt N+1 was emitted
	TriggerID string
	NotBefore int64
	FailedAt  int64
	Cancelled bool
	Policy    int
	Channel   string
	Reason    string
}

type custState struct {
	Unsub    int64 // earliest unsubscribe interaction, 0 if none
	Supp     []suppEntry
	Triggers []int64 // failure times of emitted triggers, for the frequency cap
}

// suppEntry is the earliest receipt with a suppress_on status on a channel
// or, with an empty Channel (receipts always have one), the earliest
// interaction of type Status from suppress_on_interactions other than
// unsubscribe, which custState.Unsub keeps as older snapshots do.
type suppEntry struct {
	Channel, Status string
	At              int64
}

func newResender(f *rules.File) *resender {
	r := &resender{
		file: f, policies: f.Resend, suppress: map[string]bool{},
		msgs: map[string]*msgState{}, custs: map[string]*custState{},
		suppressI: map[string]bool{},
	}
	for _, p := range f.Resend {
		for _, s := range p.SuppressOnInteractions {
			r.suppressI[s] = true
		}
		for _, s := range p.SuppressOn {
			r.suppress[s] = true
		}
	}
	return r
}

func (r *resender) Name() string { return "resend" }

func (r *resender) cust(tenant, customer string, create bool) *custState {
	k := tenant + keySep + customer
	c := r.custs[k]
	if c == nil && create {
		c = &custState{}
		r.custs[k] = c
	}
	return c
}

func (r *resender) useProfiles(s *profileStore) { r.profiles = s }

func (r *resender) Interaction(ev *ingest.Interaction, out *Output) {
	if !r.suppressI[ev.Type] {
		return
	}
	c := r.cust(ev.Tenant, ev.CustomerID, true)
	t := ev.OccurredAt.UnixNano()
	if ev.Type == "unsubscribe" {
		if c.Unsub == 0 || t < c.Unsub {
			c.Unsub = t
		}
		return
	}
	i := slices.IndexFunc(c.Supp, func(s suppEntry) bool { return s.Channel == "" && s.Status == ev.Type })
	if i < 0 {
		c.Supp = append(c.Supp, suppEntry{Status: strings.Clone(ev.Type), At: t})
	} else if t < c.Supp[i].At {
		c.Supp[i].At = t
	}
}

// TriggerID is the deterministic id of the trigger for attempt n of a
// message: replays and restarts can never make two different triggers for
// one attempt (SPEC §3.2).
func TriggerID(messageID string, attempt int) string {
	h := sha256.Sum256([]byte(messageID + "\x00" + strconv.Itoa(attempt)))
	return hex.EncodeToString(h[:16])
}

func isDelivered(status string) bool {
	return status == "delivered" || status == "opened" || status == "clicked"
}

func (r *resender) Receipt(rc *ingest.Receipt, out *Output) {
	t := rc.OccurredAt.UnixNano()
	if r.suppress[rc.Status] {
		c := r.cust(rc.Tenant, rc.CustomerID, true)
		i := slices.IndexFunc(c.Supp, func(s suppEntry) bool { return s.Channel == rc.Channel && s.Status == rc.Status })
		if i < 0 {
			c.Supp = append(c.Supp, suppEntry{Channel: strings.Clone(rc.Channel), Status: strings.Clone(rc.Status), At: t})
		} else if t < c.Supp[i].At {
			c.Supp[i].At = t
		}
	}
	m := r.msgs[rc.MessageID]
	pi := -1
	if m != nil && m.Policy >= 0 {
		pi = m.Policy
	} else {
		pi = slices.IndexFunc(r.policies, func(p *rules.Policy) bool { return p.Channel == rc.Channel })
	}
	if pi < 0 {
		return
	}
	if m == nil {
		// Clone: decoded strings share one allocation per record.
		m = &msgState{Policy: -1, Customer: strings.Clone(rc.CustomerID), Tenant: strings.Clone(rc.Tenant)}
		r.msgs[strings.Clone(rc.MessageID)] = m
	}
	if rc.RecipientTZ != "" && rc.RecipientTZ != m.TZ {
		m.TZ = strings.Clone(rc.RecipientTZ)
	}
	m.Last = max(m.Last, t)
	a := m.attempt(rc.Attempt)
	p := r.policies[pi]
	switch {
	case rc.Status == "sent":
		if a.Sent == 0 || t < a.Sent {
			a.Sent = t
			if slices.Contains(p.On, "undelivered") {
				r.timers.push(timer{At: t + int64(p.UndeliveredAfter), Key: rc.MessageID, N: rc.Attempt, Ref: t, P: pi})
			}
		}
	case isDelivered(rc.Status):
		if a.Delivered == 0 || t < a.Delivered {
			a.Delivered = t
		}
		if a.Outcome == 0 || t < a.Outcome {
			a.Outcome = t
		}
		if a.Triggered && !a.Cancelled && t < a.NotBefore {
			a.Cancelled = true
			out.Resends = append(out.Resends, r.record(m, rc.MessageID, a, ActionCancel))
		}
	default:
		if a.Outcome == 0 || t < a.Outcome {
			a.Outcome = t
		}
		if slices.Contains(p.On, rc.Status) {
			r.trigger(m, rc.MessageID, pi, a, t, rc.Status, out)
		}
	}
}

// attempt returns the state of attempt n, adding it at the end of Attempts
// when it is new. The pointer is valid until the next call.
func (m *msgState) attempt(n int) *attemptState {
	if len(m.Attempts) <= attemptScanMax {
		for i := range m.Attempts {
			if m.Attempts[i].N == n {
				return &m.Attempts[i]
			}
		}
	} else {
		if len(m.byN) != len(m.Attempts) {
			m.byN = make(map[int]int, len(m.Attempts))
			for i := range m.Attempts {
				m.byN[m.Attempts[i].N] = i
			}
		}
		if i, ok := m.byN[n]; ok {
			return &m.Attempts[i]
		}
	}
	m.Attempts = append(m.Attempts, attemptState{N: n})
	if m.byN != nil {
		m.byN[n] = len(m.Attempts) - 1
	}
	return &m.Attempts[len(m.Attempts)-1]
}

func (r *resender) record(m *msgState, msgID string, a *attemptState, action string) Resend {
	return Resend{
		TriggerID: a.TriggerID, Action: action, Policy: r.policies[a.Policy].Name,
		MessageID: msgID, CustomerID: m.Customer, Tenant: m.Tenant,
		Channel: a.Channel, Attempt: a.N + 1, Reason: a.Reason,
		NotBefore: ts(a.NotBefore), FailedAt: ts(a.FailedAt),
	}
}

// trigger emits the resend of attempt a.N+1 unless a rule of SPEC §3.2
// forbids it: attempts exhausted, already triggered, suppressed, capped.
func (r *resender) trigger(m *msgState, msgID string, pi int, a *attemptState, failAt int64, reason string, out *Output) {
	p := r.policies[pi]
	if a.N >= p.MaxAttempts || a.Triggered {
		return
	}
	next := a.N + 1
	ch := p.Channel
	if fb := p.Fallback; fb != nil && next > fb.AfterAttempts {
		ch = fb.Channel
	}
	c := r.cust(m.Tenant, m.Customer, false)
	if c != nil {
		if c.Unsub != 0 && c.Unsub <= failAt && slices.Contains(p.SuppressOnInteractions, "unsubscribe") {
			return
		}
		for _, s := range c.Supp {
			if s.At > failAt {
				continue
			}
			if s.Channel == "" && slices.Contains(p.SuppressOnInteractions, s.Status) {
				return // an interaction suppresses every channel
			}
			if s.Channel == ch && slices.Contains(p.SuppressOn, s.Status) {
				return
			}
		}
		if fc := p.FrequencyCap; fc != nil {
			n := 0
			for _, ft := range c.Triggers {
				if ft > failAt-int64(fc.Per) && ft <= failAt {
					n++
				}
			}
			if n >= fc.Max {
				return
			}
		}
	}
	nb := time.Unix(0, failAt+int64(p.Backoff.Delay(a.N)))
	if p.QuietHours != nil {
		nb = AfterQuietHours(nb, p.QuietHours, r.location(m, failAt))
	}
	a.Triggered, a.TriggerID, a.NotBefore, a.FailedAt = true, TriggerID(msgID, next), nb.UnixNano(), failAt
	a.Policy, a.Channel, a.Reason = pi, ch, reason
	m.Policy = pi
	c = r.cust(m.Tenant, m.Customer, true)
	c.Triggers = append(c.Triggers, failAt)
	rec := r.record(m, msgID, a, ActionResend)
	out.Resends = append(out.Resends, rec)
}

// location is the recipient's zone for quiet hours (SPEC §3.2): the failing
// receipt's recipient_tz, else an earlier receipt's of the message (m.TZ
// holds the latest one seen, set before the failure is handled), else the
// customer's profile timezone at the failure time, else defaults.timezone.
func (r *resender) location(m *msgState, failAt int64) *time.Location {
	tz := m.TZ
	if tz == "" && r.profiles != nil {
		if p := r.profiles.at(m.Tenant, m.Customer, failAt); p != nil && p.Timezone != "" {
			tz = p.Timezone
		}
	}
	if tz == "" {
		return r.file.Defaults.Location
	}
	l, err := ingest.LoadZone(tz)
	if err != nil {
		return r.file.Defaults.Location // the decoder refuses bad zones; this is belt and braces
	}
	return l
}

// AfterQuietHours moves t to the end of the quiet hours when it falls inside
// them ([start, end) in loc's local time, wrapping midnight when end ≤ start).
func AfterQuietHours(t time.Time, q *rules.QuietHours, loc *time.Location) time.Time {
	lt := t.In(loc)
	y, mo, d := lt.Date()
	// The wall-clock time of day: on a DST change day the time elapsed since
	// midnight is an hour off it.
	tod := time.Duration(lt.Hour())*time.Hour + time.Duration(lt.Minute())*time.Minute +
		time.Duration(lt.Second())*time.Second + time.Duration(lt.Nanosecond())
	start := time.Duration(q.StartMin) * time.Minute
	end := time.Duration(q.EndMin) * time.Minute
	endOn := func(day int) time.Time {
		return time.Date(y, mo, d+day, q.EndMin/60, q.EndMin%60, 0, 0, loc)
	}
	if start < end {
		if tod >= start && tod < end {
			return endOn(0).UTC()
		}
		return t
	}
	switch {
	case tod >= start:
		return endOn(1).UTC()
	case tod < end:
		return endOn(0).UTC()
	}
	return t
}

func (r *resender) Advance(wm time.Time, out *Output) {
	w := wm.UnixNano()
	for len(r.timers) > 0 && r.timers[0].At <= w {
		tm := r.timers.pop()
		m := r.msgs[tm.Key]
		if m == nil {
			continue
		}
		a := m.attempt(tm.N)
		if a.Sent != tm.Ref || (a.Outcome != 0 && a.Outcome < tm.At) {
			continue // an earlier sent replaced this timer, or the attempt had an outcome in time
		}
		pi := tm.P
		if a.Delivered != 0 {
			// The delivery report came late but is already here: a trigger
			// now would only be cancelled at once.
			nb := tm.At + int64(r.policies[pi].Backoff.Delay(a.N))
			if a.Delivered < nb {
				continue
			}
		}
		r.trigger(m, tm.Key, pi, a, tm.At, "undelivered", out)
	}
	if w >= r.sweep {
		r.gc(w)
		r.sweep = w + int64(sweepEvery)
	}
}

// gc forgets messages idle for messageRetention and frequency-cap entries
// older than any cap's period.
func (r *resender) gc(w int64) {
	for id, m := range r.msgs {
		if m.Last+int64(messageRetention) < w {
			delete(r.msgs, id)
		}
	}
	var per int64
	for _, p := range r.policies {
		if p.FrequencyCap != nil {
			per = max(per, int64(p.FrequencyCap.Per))
		}
	}
	for k, c := range r.custs {
		if len(c.Triggers) > 0 {
			c.Triggers = slices.DeleteFunc(c.Triggers, func(t int64) bool { return t <= w-per-int64(messageRetention) })
		}
		if c.Unsub == 0 && len(c.Supp) == 0 && len(c.Triggers) == 0 {
			delete(r.custs, k)
		}
	}
}

type resendState struct {
	Msgs   map[string]*msgState
	Custs  map[string]*custState
	Timers []timer
	Sweep  int64
}

func (r *resender) MarshalState() ([]byte, error) { return r.encodeState(), nil }

func (r *resender) UnmarshalState(b []byte) error {
	var st resendState
	if bytes.HasPrefix(b, resendMagic) {
		var err error
		if st, err = decodeResendState(b); err != nil {
			return err
		}
	} else if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return err // a snapshot of a build before the codec
	}
	r.msgs, r.custs, r.timers, r.sweep = st.Msgs, st.Custs, st.Timers, st.Sweep
	if r.msgs == nil {
		r.msgs = map[string]*msgState{}
	}
	if r.custs == nil {
		r.custs = map[string]*custState{}
	}
	r.timers.init()
	return nil
}

// StateKeys is the number of messages and customers remembered.
func (r *resender) StateKeys() int { return len(r.msgs) + len(r.custs) }
