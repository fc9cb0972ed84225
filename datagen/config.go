package datagen

import (
	"errors"
	"fmt"
	"slices"
	"time"
)

// Config says what to generate. Every numeric field left at zero takes the
// value DefaultConfig gives it, so Config{Seed: 7} is a complete request;
// a negative rate or count switches that feature off.
type Config struct {
	// Seed selects the data set: the same Config always yields the same
	// bytes.
	Seed int64
	// Customers is the population size, spread over Tenants.
	Customers int
	// Days is how many days of events to write. Eight or more let 7-day
	// baselines fill; the injections are placed relative to the last day.
	Days int
	// Start is the first instant of day 0. It should be a UTC midnight so
	// that days line up with the epoch-aligned 1d windows of SPEC §2.
	Start time.Time
	// Tenants are the companies whose customers are generated; the first
	// is the largest.
	Tenants []string

	// ChurnRate is the fraction of customers that stop all activity on a
	// day early enough for a 7-day idle period to pass before the end.
	ChurnRate float64
	// RevenueDropTenant and RevenueDropSegment name the group whose
	// purchases fall by RevenueDropFactor (0.7: 70 % fewer) over the last
	// RevenueDropDays days. Empty names pick the first tenant and "smb".
	RevenueDropTenant  string
	RevenueDropSegment string
	RevenueDropDays    int
	RevenueDropFactor  float64
	// ComplaintBursts is the number of hours in which one tenant × region
	// receives ComplaintBurstSize complaints from distinct customers.
	ComplaintBursts    int
	ComplaintBurstSize int
	// UnresolvedComplaints is the number of complaints that never get a
	// complaint_resolved; every other complaint is resolved within 40h.
	UnresolvedComplaints int
	// ProviderIncidents is the number of hours in which one SMS provider
	// fails IncidentFailRate of the messages it is given.
	ProviderIncidents int
	IncidentFailRate  float64
	// BacklashCampaigns is the number of email blasts that draw a wave of
	// spam complaints and unsubscribes.
	BacklashCampaigns int
	// UndeliveredRate is the fraction of first attempts (email, sms, push)
	// that get a sent receipt and then no delivery report at all.
	UndeliveredRate float64
	// RetryRate is the fraction of soft-bounced or failed attempts that
	// the sending platform tries again (attempt 2, then 3 on email).
	RetryRate float64

	// OverdueInvoices, BreachedTasks, PlatinumOrders, BirthdayCases and
	// RenewalCases are the injected cases of the reminder rules (see
	// Reminders); each also places one non-case beside them.
	OverdueInvoices int
	BreachedTasks   int
	PlatinumOrders  int
	BirthdayCases   int
	RenewalCases    int
	// ProfileUpdateRate is the fraction of customers whose profile gets a
	// second version (another account manager, a higher tier) during the
	// data set; DeletedProfiles profiles are deleted in its second half.
	ProfileUpdateRate float64
	DeletedProfiles   int

	// MalformedRate is the expected fraction of written lines that are
	// malformed: not JSON, a required field missing, a wrong type, or an
	// unparsable or zone-less timestamp.
	MalformedRate float64
	// DuplicateRate is the fraction of records written a second time,
	// byte for byte, up to three minutes of event time later.
	DuplicateRate float64
	// OutOfOrderRate is the fraction of records written up to four
	// minutes behind their place: out of order, but within the lateness.
	OutOfOrderRate float64
	// LateRate is the fraction of logins, visits, contact updates, opens
	// and clicks written hours behind their place: beyond the lateness.
	LateRate float64
	// AllowedLateness is the lateness the consumer applies; Stats counts
	// a line as late when it is more than this behind its stream.
	AllowedLateness time.Duration
}

// DefaultConfig is the complete default configuration: two weeks of 2,000
// customers of three tenants, with every injection switched on at a size
// that the detectors of examples/rules.yaml pick up.
func DefaultConfig() Config {
	return Config{
		Seed:      1,
		Customers: 2000,
		Days:      14,
		Start:     time.Date(2026, time.November, 2, 0, 0, 0, 0, time.UTC), // a Monday
		Tenants:   []string{"acme", "globex", "initech"},

		ChurnRate:            0.02,
		RevenueDropDays:      3,
		RevenueDropFactor:    0.7,
		ComplaintBursts:      2,
		ComplaintBurstSize:   30,
		UnresolvedComplaints: 10,
		ProviderIncidents:    1,
		IncidentFailRate:     0.8,
		BacklashCampaigns:    1,
		UndeliveredRate:      0.001,
		RetryRate:            0.7,

		OverdueInvoices:   3,
		BreachedTasks:     3,
		PlatinumOrders:    3,
		BirthdayCases:     3,
		RenewalCases:      3,
		ProfileUpdateRate: 0.02,
		DeletedProfiles:   3,

		MalformedRate:   0.001,
		DuplicateRate:   0.002,
		OutOfOrderRate:  0.005,
		LateRate:        0.001,
		AllowedLateness: 10 * time.Minute,
	}
}

// withDefaults returns c with every zero field set from DefaultConfig and
// every negative rate or count set to zero (off). The seed is kept as is:
// zero is a seed like any other.
func (c Config) withDefaults() Config {
	d := DefaultConfig()
	intOr := func(v *int, def int) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			*v = 0
		}
	}
	floatOr := func(v *float64, def float64) {
		switch {
		case *v == 0:
			*v = def
		case *v < 0:
			*v = 0
		}
	}
	intOr(&c.Customers, d.Customers)
	intOr(&c.Days, d.Days)
	if c.Start.IsZero() {
		c.Start = d.Start
	}
	if len(c.Tenants) == 0 {
		c.Tenants = d.Tenants
	}
	floatOr(&c.ChurnRate, d.ChurnRate)
	if c.RevenueDropTenant == "" {
		c.RevenueDropTenant = c.Tenants[0]
	}
	if c.RevenueDropSegment == "" {
		c.RevenueDropSegment = "smb"
	}
	intOr(&c.RevenueDropDays, d.RevenueDropDays)
	floatOr(&c.RevenueDropFactor, d.RevenueDropFactor)
	intOr(&c.ComplaintBursts, d.ComplaintBursts)
	intOr(&c.ComplaintBurstSize, d.ComplaintBurstSize)
	intOr(&c.UnresolvedComplaints, d.UnresolvedComplaints)
	intOr(&c.ProviderIncidents, d.ProviderIncidents)
	floatOr(&c.IncidentFailRate, d.IncidentFailRate)
	intOr(&c.BacklashCampaigns, d.BacklashCampaigns)
	floatOr(&c.UndeliveredRate, d.UndeliveredRate)
	floatOr(&c.RetryRate, d.RetryRate)
	intOr(&c.OverdueInvoices, d.OverdueInvoices)
	intOr(&c.BreachedTasks, d.BreachedTasks)
	intOr(&c.PlatinumOrders, d.PlatinumOrders)
	intOr(&c.BirthdayCases, d.BirthdayCases)
	intOr(&c.RenewalCases, d.RenewalCases)
	floatOr(&c.ProfileUpdateRate, d.ProfileUpdateRate)
	intOr(&c.DeletedProfiles, d.DeletedProfiles)
	floatOr(&c.MalformedRate, d.MalformedRate)
	floatOr(&c.DuplicateRate, d.DuplicateRate)
	floatOr(&c.OutOfOrderRate, d.OutOfOrderRate)
	floatOr(&c.LateRate, d.LateRate)
	if c.AllowedLateness <= 0 {
		c.AllowedLateness = d.AllowedLateness
	}
	return c
}

// maxCustomers keeps customer ids at the seven digits of "c0001234";
// maxTenants keeps a tenant a one-byte code.
const (
	maxCustomers = 9_999_999
	maxTenants   = 255
)

// validate reports every setting Generate cannot honour, naming the field.
func (c Config) validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("field %s: %s", field, fmt.Sprintf(format, args...)))
	}
	if c.Customers > maxCustomers {
		bad("Customers", "at most %d, got %d", maxCustomers, c.Customers)
	}
	if c.Days > 3660 {
		bad("Days", "at most 3660, got %d", c.Days)
	}
	if len(c.Tenants) > maxTenants {
		bad("Tenants", "at most %d tenants, got %d", maxTenants, len(c.Tenants))
	}
	for i, t := range c.Tenants {
		if t == "" {
			bad("Tenants", "tenant #%d is empty", i+1)
		}
		if slices.Index(c.Tenants, t) < i {
			bad("Tenants", "tenant %q is listed twice", t)
		}
	}
	if !slices.Contains(c.Tenants, c.RevenueDropTenant) {
		bad("RevenueDropTenant", "%q is not one of Tenants", c.RevenueDropTenant)
	}
	if !slices.Contains(segmentNames[:], c.RevenueDropSegment) {
		bad("RevenueDropSegment", "%q is not a segment (want one of %v)", c.RevenueDropSegment, segmentNames)
	}
	for _, f := range []struct {
		name string
		v    float64
	}{
		{"ChurnRate", c.ChurnRate}, {"RevenueDropFactor", c.RevenueDropFactor},
		{"IncidentFailRate", c.IncidentFailRate}, {"UndeliveredRate", c.UndeliveredRate},
		{"RetryRate", c.RetryRate}, {"MalformedRate", c.MalformedRate},
		{"DuplicateRate", c.DuplicateRate}, {"OutOfOrderRate", c.OutOfOrderRate},
		{"LateRate", c.LateRate}, {"ProfileUpdateRate", c.ProfileUpdateRate},
	} {
		if f.v > 1 {
			bad(f.name, "a fraction must be at most 1, got %g", f.v)
		}
	}
	if c.MalformedRate >= 0.5 {
		bad("MalformedRate", "must be below 0.5, got %g", c.MalformedRate)
	}
	if c.LateRate+c.OutOfOrderRate > 1 {
		bad("LateRate", "LateRate + OutOfOrderRate must be at most 1")
	}
	return errors.Join(errs...)
}
