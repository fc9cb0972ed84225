package rules

import (
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
)

// KindCalendar is the fixed-date reminder kind (SPEC §3.1), on profiles.
const KindCalendar = "calendar"

// SourceCustomers is the profile stream; only calendar rules read it.
const SourceCustomers = "customers"

// Repeat values of a calendar rule.
const (
	RepeatYearly = "yearly"
	RepeatOnce   = "once"
)

// CalendarDate is a parsed calendar date: Year is 0 for MM-DD.
type CalendarDate struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseCalendarDate parses YYYY-MM-DD or MM-DD (02-29 included).
func ParseCalendarDate(s string) (CalendarDate, bool) {
	switch len(s) {
	case len("2006-01-02"):
		t, err := time.Parse("2006-01-02", s)
		if err != nil {
			return CalendarDate{}, false
		}
		return CalendarDate{t.Year(), t.Month(), t.Day()}, true
	case len("01-02"):
		// Parsed in a leap year, so that 02-29 is a date.
		t, err := time.Parse("2006-01-02", "2000-"+s)
		if err != nil {
			return CalendarDate{}, false
		}
		return CalendarDate{0, t.Month(), t.Day()}, true
	}
	return CalendarDate{}, false
}

// profileSourceField is a path of a rule on source customers: the
// profile's own fields, plus tenant.
func profileSourceField(path string) (Field, error) {
	path = strings.TrimPrefix(path, CustomerPrefix) // customer.tier reads the same here
	if path == "tenant" {
		return Field{Path: path, Label: path, Get: func(e Event) string {
			if p := e.Profile(); p != nil {
				return p.Tenant
			}
			return ingest.DefaultTenant
		}}, nil
	}
	pf, err := CompileProfileField(path)
	if err != nil {
		return Field{}, err
	}
	get := pf.Get
	return Field{Path: path, Label: pf.Label, Get: func(e Event) string {
		p := e.Profile()
		if p == nil {
			return ingest.UnknownDim
		}
		if v := get(p); v != "" {
			return v
		}
		return ingest.UnknownDim
	}}, nil
}

func (r *Rule) compileCalendar(has func(string) bool, f func(string, string, ...any)) {
	if r.Source != SourceCustomers {
		f("source", "a calendar rule reads profiles: source must be customers")
	}
	for _, k := range []string{"date", "repeat", "at"} {
		if !has(k) {
			f(k, "missing required parameter for kind calendar")
		}
	}
	if has("date") {
		pf, err := CompileProfileField(strings.TrimPrefix(r.DateField, CustomerPrefix))
		if err != nil {
			f("date", "%v", err)
		}
		r.DateOf = pf.Get
	}
	switch r.Repeat {
	case RepeatYearly, RepeatOnce, "":
	default:
		f("repeat", "unknown repeat %q (want yearly or once)", r.Repeat)
	}
	if has("at") {
		m, err := parseClock(r.At)
		if err != nil {
			f("at", "%v", err)
		}
		r.AtMin = m
	}
	if has("lasts") && r.Lasts <= 0 {
		f("lasts", "must be a positive duration")
	}
	if r.Lasts == 0 {
		r.Lasts = Duration(DefaultEventLasts)
	}
	if r.For.Set {
		f("for", "not a parameter of kind calendar")
	}
	// A calendar alert is one customer's: its key is (tenant, customer_id),
	// which is also what tells the streaming pipeline to run it in the
	// partition engines, beside the profiles. The calendar component builds
	// its labels from the profile's key itself; these getters only name it.
	r.Fields = []Field{
		{Path: "tenant", Label: "tenant", Get: func(e Event) string {
			if p := e.Profile(); p != nil {
				return p.Tenant
			}
			return ingest.DefaultTenant
		}},
		{Path: "customer_id", Label: "customer_id", Get: func(Event) string { return "" }},
	}
}

// DefaultLocation is defaults.timezone (UTC when unset), for rules that
// place local times.
func (r *Rule) DefaultLocation() *time.Location {
	if r.defaultLoc == nil {
		return time.UTC
	}
	return r.defaultLoc
}
