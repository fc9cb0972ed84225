package processor_test

import (
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// base is the day the scenarios happen on; times in steps are offsets
// from it written as "HH:MM" or Go durations like "26h".
var base = time.Date(2026, 11, 2, 0, 0, 0, 0, time.UTC)

func at(t *testing.T, s string) time.Time {
	t.Helper()
	if len(s) == 5 && s[2] == ':' {
		c, err := time.Parse("15:04", s)
		require.NoError(t, err)
		return base.Add(time.Duration(c.Hour())*time.Hour + time.Duration(c.Minute())*time.Minute)
	}
	d, err := rules.ParseDuration(s)
	require.NoError(t, err, "bad offset %q", s)
	return base.Add(d)
}

// step is one thing a scenario does: feed a record, or move the watermark.
type step struct {
	i  *ingest.Interaction
	r  *ingest.Receipt
	wm string // advance the watermark to this offset
	c  *ingest.Customer
	// drop is a customer_id whose profile a Kafka tombstone drops.
	drop string
	// wantErr, when set, is the reason the record must be refused with
	// ("late", "duplicate").
	wantErr string
}

type iopt func(*ingest.Interaction)

func amount(a float64) iopt { return func(e *ingest.Interaction) { e.Amount = a } }
func seg(s string) iopt     { return func(e *ingest.Interaction) { e.Segment = s } }
func attr(k, v string) iopt {
	return func(e *ingest.Interaction) {
		if e.Attributes == nil {
			e.Attributes = map[string]string{}
		}
		e.Attributes[k] = v
	}
}

var ids int

func ev(typ, cust, when string, opts ...iopt) step {
	ids++
	e := &ingest.Interaction{EventID: "e" + itoa(ids), Type: typ, CustomerID: cust, Tenant: "acme",
		Segment: "smb", Region: "apac", Channel: "web", OccurredAt: mustAt(when)}
	for _, o := range opts {
		o(e)
	}
	return step{i: e}
}

type ropt func(*ingest.Receipt)

func attempt(n int) ropt    { return func(r *ingest.Receipt) { r.Attempt = n } }
func tz(z string) ropt      { return func(r *ingest.Receipt) { r.RecipientTZ = z } }
func channel(c string) ropt { return func(r *ingest.Receipt) { r.Channel = c } }
func provider(p string) ropt {
	return func(r *ingest.Receipt) { r.Provider = p }
}

func rc(msg, cust, status, when string, opts ...ropt) step {
	ids++
	r := &ingest.Receipt{ReceiptID: "r" + itoa(ids), MessageID: msg, CustomerID: cust, Channel: "sms",
		Status: status, OccurredAt: mustAt(when), Attempt: 1, Tenant: "acme"}
	for _, o := range opts {
		o(r)
	}
	return step{r: r}
}

func wm(when string) step { return step{wm: when} }

type popt func(*ingest.Customer)

func tier(v string) popt { return func(c *ingest.Customer) { c.Tier = v } }
func am(v string) popt   { return func(c *ingest.Customer) { c.AccountManager = v } }
func zone(v string) popt { return func(c *ingest.Customer) { c.Timezone = v } }
func tenant(v string) popt {
	return func(c *ingest.Customer) { c.Tenant = v }
}
func pattr(k, v string) popt {
	return func(c *ingest.Customer) {
		if c.Attributes == nil {
			c.Attributes = map[string]string{}
		}
		c.Attributes[k] = v
	}
}
func deleted() popt { return func(c *ingest.Customer) { c.Deleted = true } }

// prof is a profile version of cust (tenant acme) from when on.
func prof(cust, when string, opts ...popt) step {
	c := &ingest.Customer{CustomerID: cust, UpdatedAt: mustAt(when), Tenant: "acme",
		Tier: "unknown", Segment: "unknown", Region: "unknown"}
	for _, o := range opts {
		o(c)
	}
	return step{c: c}
}

func tombstone(cust string) step { return step{drop: cust} }

func dup(s step) step {
	c := s
	if s.i != nil {
		x := *s.i
		c.i = &x
	} else {
		x := *s.r
		c.r = &x
	}
	c.wantErr = "duplicate"
	return c
}

func late(s step) step { s.wantErr = "late"; return s }

func itoa(n int) string { return strconv.Itoa(n) }

func mustAt(s string) time.Time {
	if len(s) == 5 && s[2] == ':' {
		c, err := time.Parse("15:04", s)
		if err != nil {
			panic(err)
		}
		return base.Add(time.Duration(c.Hour())*time.Hour + time.Duration(c.Minute())*time.Minute)
	}
	d, err := rules.ParseDuration(s)
	if err != nil {
		// Offsets beyond the rules' maximum duration (a record decades
		// ahead) are plain Go durations.
		if d, err = time.ParseDuration(s); err != nil {
			panic(err)
		}
	}
	return base.Add(d)
}

// run feeds steps to a fresh engine and returns everything it emitted. The
// watermark only moves on wm steps, so tests control time exactly.
func run(t *testing.T, yaml string, steps ...step) *processor.Output {
	t.Helper()
	f, err := rules.Parse([]byte(yaml))
	require.NoError(t, err)
	e, err := processor.New(processor.Config{Rules: f})
	require.NoError(t, err)
	for n, s := range steps {
		var err error
		switch {
		case s.i != nil:
			err = e.Interaction(s.i)
		case s.r != nil:
			err = e.Receipt(s.r)
		case s.c != nil:
			err = e.Customer(s.c)
		case s.drop != "":
			e.DropCustomer(s.drop)
			continue
		default:
			e.Advance(mustAt(s.wm))
			continue
		}
		switch s.wantErr {
		case "":
			require.NoError(t, err, "step %d", n)
		case "duplicate":
			require.ErrorIs(t, err, processor.ErrDuplicate, "step %d", n)
		case "late":
			var re *ingest.RejectError
			require.ErrorAs(t, err, &re, "step %d", n)
			require.Equal(t, ingest.ReasonLate, re.Reason)
		}
	}
	return e.Output()
}

// brief is an alert reduced to what scenario tables compare.
type brief struct {
	State  string
	Key    string // a label value identifying the group
	Starts string
	Ends   string
	Value  float64
}

func briefs(out *processor.Output, label string) []brief {
	var bs []brief
	for _, a := range out.Alerts {
		b := brief{State: a.State, Key: a.Labels[label], Starts: off(a.StartsAt), Value: a.Value}
		if a.EndsAt != nil {
			b.Ends = off(*a.EndsAt)
		}
		bs = append(bs, b)
	}
	return bs
}

// off renders t as an offset from base, the inverse of mustAt.
func off(t time.Time) string {
	d := t.Sub(base)
	return d.String()
}

// o is an offset as off renders it, for expected values in tables.
func o(s string) string { return off(mustAt(s)) }

func durH(h int) time.Duration { return time.Duration(h) * time.Hour }
func durM(m int) time.Duration { return time.Duration(m) * time.Minute }
