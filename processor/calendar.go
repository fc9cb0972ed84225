package processor

import (
	"bytes"
	"encoding/gob"
	"maps"
	"math"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// calendar is the fixed-date reminder (SPEC §3.1, kind calendar): a
// profile's date (a birthday, a contract end) at a local time, moved by an
// offset, every year or once. An instant counts when it belongs to the
// version current at that instant and is not earlier than the first
// interaction or receipt the engine processed; the watermark passing it
// fires, and the watermark passing it + lasts resolves.
//
// Each customer has at most one pending instant, its next candidate, kept
// with a timer. Profiles change what the next instant is, so the candidate
// is recomputed from the profile store whenever a version arrives and again
// when its timer is due (a tombstone or a late version may have changed it
// meanwhile); a timer whose instant is no longer the candidate is stale.
type calendar struct {
	rule     *rules.Rule
	profiles *profileStore
	next     map[string]int64 // tenant␟customer_id → the candidate instant
	timers   timerHeap        // Key, At = Ref = the candidate instant
	ends     timerHeap        // Key, At = instant + lasts, Ref = instant
	firing   map[string]int64 // tenant␟customer_id → instant of its firing alert
	first    int64            // occurred_at of the first record processed
	started  bool             // a record has been processed
	wm       int64
	ignored  int64 // versions whose date does not parse
}

func newCalendar(r *rules.Rule, _ *rules.File) Component {
	return &calendar{rule: r, next: map[string]int64{}, firing: map[string]int64{}, wm: minInstant,
		profiles: newProfileStore(0)}
}

func (d *calendar) Name() string { return "rule:" + d.rule.Name }

func (d *calendar) useProfiles(s *profileStore) { d.profiles = s }

func (d *calendar) Interaction(ev *ingest.Interaction, _ *Output) { d.saw(ev.OccurredAt) }

func (d *calendar) Receipt(r *ingest.Receipt, _ *Output) { d.saw(r.OccurredAt) }

func (d *calendar) saw(at time.Time) {
	if !d.started {
		d.started, d.first = true, at.UnixNano()
	}
}

// Customer reschedules the customer of a version just read. Instants the
// watermark has passed are decided: the search starts after it.
func (d *calendar) Customer(c *ingest.Customer, _ *Output) {
	if !c.Deleted {
		if v := d.rule.DateOf(&ingest.Profile{Attrs: attrPairs(c.Attributes), AccountManager: c.AccountManager,
			Tier: c.Tier, Segment: c.Segment, Region: c.Region, Timezone: c.Timezone}); v != "" {
			if cd, ok := rules.ParseCalendarDate(v); !ok || (d.rule.Repeat == rules.RepeatOnce && cd.Year == 0) {
				d.ignored++
			}
		}
	}
	key := c.Tenant + keySep + c.CustomerID
	d.reschedule(key, c.Tenant, c.CustomerID, d.wm+1)
}

// attrPairs is a map of attributes as Profile.Attrs (unsorted: only for
// reading one name).
func attrPairs(m map[string]string) []string {
	out := make([]string, 0, 2*len(m))
	for k, v := range m {
		out = append(out, k, v)
	}
	return out
}

func (d *calendar) reschedule(key, tenant, customer string, from int64) {
	at, ok := d.nextInstant(tenant, customer, from)
	if !ok {
		delete(d.next, key)
		return
	}
	if cur, has := d.next[key]; has && cur == at {
		return
	}
	d.next[key] = at
	d.timers.push(timer{At: at, Key: key, Ref: at})
}

// nextInstant is the first instant ≥ from that belongs to the version
// current at it.
func (d *calendar) nextInstant(tenant, customer string, from int64) (int64, bool) {
	var at int64
	found := false
	d.profiles.each(tenant, customer, func(p *ingest.Profile, until int64) bool {
		if p.Deleted || until <= from {
			return true
		}
		t, ok := d.firstInstant(p, max(from, p.UpdatedAt))
		if ok && t < until {
			at, found = t, true
			return false
		}
		return true
	})
	return at, found
}

// firstInstant is the first reminder instant of version p at or after lo.
func (d *calendar) firstInstant(p *ingest.Profile, lo int64) (int64, bool) {
	cd, ok := rules.ParseCalendarDate(d.rule.DateOf(p))
	if !ok {
		return 0, false
	}
	loc := p.Location()
	if loc == nil {
		loc = d.rule.DefaultLocation()
	}
	if d.rule.Repeat == rules.RepeatOnce {
		if cd.Year == 0 {
			return 0, false
		}
		t := d.instant(cd.Year, cd, loc)
		return t, t >= lo
	}
	y := time.Unix(0, lo).In(loc).Year() - 1
	// An offset of many weeks can move an instant into another year.
	span := 2 + int(math.Abs(float64(d.rule.Offset.D()/(24*time.Hour))))/365
	y -= span - 2
	if cd.Year != 0 && y < cd.Year {
		y = cd.Year
	}
	for end := y + 2*span + 1; y <= end; y++ {
		if t := d.instant(y, cd, loc); t >= lo {
			return t, true
		}
	}
	return 0, false
}

// instant is the reminder of year y: the date (29 February is 28 February
// in other years) at `at` local time, its date moved by the offset's whole
// days and the rest added; a local time in a DST gap moves forward to the
// first that exists.
func (d *calendar) instant(y int, cd rules.CalendarDate, loc *time.Location) int64 {
	day := cd.Day
	if cd.Month == time.February && day == 29 && !isLeap(y) {
		day = 28
	}
	off := d.rule.Offset.D()
	days := off / (24 * time.Hour)
	rest := off - days*24*time.Hour
	return wallTime(y, cd.Month, day+int(days), d.rule.AtMin, loc).Add(rest).UnixNano()
}

// wallTime is atMin minutes after midnight of the local date y-m-d in loc
// (d may overflow the month, as in time.Date). A local time that does not
// exist (a DST gap) moves forward to the first one that does. Calendar
// reminders and digest schedules share it.
func wallTime(y int, m time.Month, d, atMin int, loc *time.Location) time.Time {
	hh, mm := atMin/60, atMin%60
	t := time.Date(y, m, d, hh, mm, 0, 0, loc)
	if lt := t.In(loc); lt.Hour() != hh || lt.Minute() != mm {
		// The wall time does not exist. Go placed t either past the gap
		// (then the gap ends where t's zone period starts) or before it
		// (then it ends where t's zone period ends).
		start, end := t.ZoneBounds()
		if lt.Hour()*60+lt.Minute() > atMin {
			t = start
		} else {
			t = end
		}
	}
	return t
}

func isLeap(y int) bool { return y%4 == 0 && (y%100 != 0 || y%400 == 0) }

func (d *calendar) Advance(wm time.Time, out *Output) {
	w := wm.UnixNano()
	for {
		fire := len(d.timers) > 0 && d.timers[0].At <= w
		end := len(d.ends) > 0 && d.ends[0].At <= w
		switch {
		case end && (!fire || d.ends[0].At <= d.timers[0].At):
			tm := d.ends.pop()
			if at, ok := d.firing[tm.Key]; ok && at == tm.Ref {
				d.resolve(tm.Key, at, tm.At, out)
			}
		case fire:
			tm := d.timers.pop()
			if at, ok := d.next[tm.Key]; !ok || at != tm.At {
				continue // rescheduled since
			}
			delete(d.next, tm.Key)
			tenant, customer := splitKey(tm.Key)
			at, ok := d.nextInstant(tenant, customer, tm.At)
			if ok && at == tm.At {
				d.fire(tm.Key, tenant, customer, at, out)
				d.reschedule(tm.Key, tenant, customer, at+1)
			} else if ok {
				d.reschedule(tm.Key, tenant, customer, at)
			}
		default:
			d.wm = w
			return
		}
	}
}

func splitKey(k string) (string, string) {
	for i := 0; i+len(keySep) <= len(k); i++ {
		if k[i:i+len(keySep)] == keySep {
			return k[:i], k[i+len(keySep):]
		}
	}
	return k, ""
}

func (d *calendar) fire(key, tenant, customer string, at int64, out *Output) {
	if !d.started || at < d.first {
		return // a fresh start does not replay years of birthdays
	}
	if p := d.profiles.at(tenant, customer, at); p == nil || !d.rule.Matcher.Match(rules.Event{C: p}) {
		return
	}
	if prev, ok := d.firing[key]; ok {
		d.resolve(key, prev, at, out)
	}
	out.Alerts = append(out.Alerts, d.alert(tenant, customer, StateFiring, at))
	d.firing[key] = at
	d.ends.push(timer{At: at + int64(d.rule.Lasts), Key: key, Ref: at})
}

func (d *calendar) resolve(key string, at, endsAt int64, out *Output) {
	tenant, customer := splitKey(key)
	a := d.alert(tenant, customer, StateResolved, at)
	a.EndsAt = tp(ts(endsAt))
	out.Alerts = append(out.Alerts, a)
	delete(d.firing, key)
}

func (d *calendar) alert(tenant, customer, state string, at int64) Alert {
	labels := make(map[string]string, len(d.rule.Labels)+3)
	maps.Copy(labels, d.rule.Labels)
	labels["tenant"], labels["customer_id"], labels["alertname"] = tenant, customer, d.rule.Name
	value := d.rule.Offset.D().Seconds()
	return Alert{
		Fingerprint: Fingerprint(labels), Rule: d.rule.Name, Kind: d.rule.Kind, State: state,
		Severity: d.rule.Severity, Labels: labels, Annotations: d.rule.RenderAnnotations(labels, value),
		Value: value, StartsAt: ts(at).UTC(),
	}
}

type calendarState struct {
	Next    map[string]int64
	Timers  []timer
	Ends    []timer
	Firing  map[string]int64
	First   int64
	Started bool
	WM      int64
	Ignored int64
}

func (d *calendar) MarshalState() ([]byte, error) {
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(calendarState{Next: d.next, Timers: d.timers, Ends: d.ends, Firing: d.firing,
		First: d.first, Started: d.started, WM: d.wm, Ignored: d.ignored})
	return buf.Bytes(), err
}

func (d *calendar) UnmarshalState(b []byte) error {
	var st calendarState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return err
	}
	d.next, d.timers, d.ends, d.firing = st.Next, st.Timers, st.Ends, st.Firing
	d.first, d.started, d.wm, d.ignored = st.First, st.Started, st.WM, st.Ignored
	if d.next == nil {
		d.next = map[string]int64{}
	}
	if d.firing == nil {
		d.firing = map[string]int64{}
	}
	d.timers.init()
	d.ends.init()
	return nil
}

// StateKeys is the number of customers with a pending or firing reminder.
func (d *calendar) StateKeys() int { return len(d.next) + len(d.firing) }

// Ignored is the number of profile versions whose date does not parse.
func (d *calendar) Ignored() int64 { return d.ignored }
