package datagen

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// Profiles are the crm.customers records (SPEC §1.3): who looks after each
// customer, its tier, zone, birthday and contract end. They are drawn from
// a random stream of their own, so the activity data does not depend on
// them, and written to customers.jsonl in updated_at order: a first
// version of every customer at the start, then the updates.

const (
	tierBronze = iota
	tierSilver
	tierGold
	tierPlatinum
	numTiers
)

var tierNames = [numTiers]string{"bronze", "silver", "gold", "platinum"}

// tierShare is the tier mix per segment: consumers are never platinum.
var tierShare = [numSegments][numTiers]float64{
	segConsumer:   {0.6, 0.3, 0.1, 0},
	segSMB:        {0.5, 0.35, 0.15, 0},
	segMidMarket:  {0, 0.4, 0.5, 0.1},
	segEnterprise: {0, 0, 0.6, 0.4},
}

// Profile mix knobs.
const (
	accountManagers = 5     // am1@example.com … am5@example.com
	birthdayShare   = 0.6   // consumers who told us their birthday
	birthYearShare  = 0.3   // of those, with the year (YYYY-MM-DD)
	contractShare   = 0.8   // business customers with a contract
	profileLead     = dayMs // first versions hold from a day before the start
)

type profile struct {
	am          uint8
	tier        uint8
	month, day  uint8 // birthday; 0 for none
	year        int16 // birth year; 0 writes MM-DD
	contractEnd int64 // ms of a UTC midnight; 0 for none
}

type profileVersion struct {
	at      int64
	cust    int32
	p       profile
	deleted bool
}

// planProfiles draws every customer's first profile, the injected
// reminder cases and the later versions. It must run after makePlan and
// before any account record is generated.
func (g *gen) planProfiles() {
	cfg := &g.cfg
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), streamProfiles))
	g.profiles = make([]profile, len(g.customers))
	for i := range g.customers {
		c := &g.customers[i]
		p := &g.profiles[i]
		p.am = uint8(r.IntN(accountManagers))
		p.tier = uint8(pick(r, tierShare[c.segment][:]))
		if c.segment == segConsumer {
			if r.Float64() < birthdayShare {
				p.month, p.day = uint8(1+r.IntN(12)), uint8(1+r.IntN(28))
				if r.Float64() < birthYearShare {
					p.year = int16(1950 + r.IntN(56))
				}
			}
		} else if r.Float64() < contractShare {
			p.contractEnd = g.startMs - g.startMs%dayMs + (r.Int64N(900)-180)*dayMs
		}
	}
	g.injectReminders(r)

	inj := &g.stats.Injected
	inj.Profiles = len(g.profiles)
	// Later versions: an account handed to another manager, a tier
	// upgrade; and a few customers who asked to be forgotten.
	if cfg.ProfileUpdateRate > 0 {
		for i := range g.customers {
			if g.reserved[i] || r.Float64() >= cfg.ProfileUpdateRate {
				continue
			}
			p := g.profiles[i]
			if r.IntN(2) == 0 {
				p.am = uint8((int(p.am) + 1 + r.IntN(accountManagers-1)) % accountManagers)
			} else if p.tier < tierGold || (p.tier == tierGold && g.customers[i].segment != segConsumer && g.customers[i].segment != segSMB) {
				p.tier++
			}
			at := g.startMs + r.Int64N(g.endMs-g.startMs)
			g.versions = append(g.versions, profileVersion{at: at - at%secondMs, cust: int32(i), p: p})
			inj.ProfileUpdates++
		}
	}
	for k := 0; k < cfg.DeletedProfiles && len(g.customers) > 0; k++ {
		ci := int32(r.IntN(len(g.customers)))
		if g.reserved[ci] {
			continue
		}
		g.reserved[ci] = true
		half := (g.endMs - g.startMs) / 2
		at := g.startMs + half + r.Int64N(half)
		g.versions = append(g.versions, profileVersion{at: at - at%secondMs, cust: ci, deleted: true})
		inj.DeletedProfiles++
	}
	slices.SortStableFunc(g.versions, func(a, b profileVersion) int {
		switch {
		case a.at < b.at:
			return -1
		case a.at > b.at:
			return 1
		}
		return int(a.cust - b.cust)
	})
}

// Reminders are the injected cases of the reminder rules of
// examples/rules.yaml, by id, so that a test can check each one: the
// cases fire, the non-cases (PaidEarlyInvoice, OnTimeTask, GoldOrder,
// DeletedBirthday) do not. Invoice ids are I0000001…, task ids K0000001…,
// customer ids c0000001…. A case is listed only when the data set is long
// enough for its reminder to fall inside it.
type Reminders struct {
	// OverdueInvoices are never paid: due 5 days after issue, they reach
	// the overdue stage (due + 7d) a day or more before the end.
	OverdueInvoices []string
	// PaidEarlyInvoice is paid 2 days after issue, 9 days before its
	// upcoming stage (due − 3d): no reminder at all.
	PaidEarlyInvoice string
	// BreachedTasks are never done: past their 2-day SLA and the 1-day
	// escalation after it before the end.
	BreachedTasks []string
	// OnTimeTask is done 6 hours after it was opened.
	OnTimeTask string
	// PlatinumOrders are customers, platinum throughout, who place a
	// large_order two days before the end; GoldOrder is a gold customer
	// who does the same.
	PlatinumOrders []string
	GoldOrder      string
	// Birthdays are consumers whose birthday is BirthdayDate (MM-DD), three
	// days before the end; DeletedBirthday has the same birthday, but its
	// profile is deleted the day before.
	Birthdays       []string
	BirthdayDate    string
	DeletedBirthday string
	// Renewals are business customers whose contract_end is 30 days after
	// RenewalDate (four days before the end), the day their renewal
	// reminder (offset −30d) fires.
	Renewals    []string
	RenewalDate string
}

func customerID(num int32) string { return fmt.Sprintf("c%07d", num) }

// injectReminders places the cases of Reminders. Every customer used is
// reserved: no later version changes it (except the deleted birthday's
// tombstone).
func (g *gen) injectReminders(r *rand.Rand) {
	cfg := &g.cfg
	inj := &g.stats.Injected
	rem := &inj.Reminders
	g.reserved = make([]bool, len(g.customers))
	perm := r.Perm(len(g.customers))
	take := func(ok func(c *customer) bool) (int32, bool) {
		for _, i := range perm {
			if !g.reserved[i] && ok(&g.customers[i]) {
				g.reserved[i] = true
				return int32(i), true
			}
		}
		return 0, false
	}
	business := func(c *customer) bool { return c.segment != segConsumer }
	consumer := func(c *customer) bool { return c.segment == segConsumer }
	dayAt := func(d int, h int64) int64 { return g.startMs + int64(d)*dayMs + h }

	// Invoices: issued 14 days before the end (or on day 0).
	if d0 := max(0, cfg.Days-14); cfg.Days >= 13 {
		for k := range cfg.OverdueInvoices {
			ci, ok := take(business)
			if !ok {
				break
			}
			at := dayAt(d0, 10*hourMs+int64(k)*hourMs)
			n := g.invoice(ci, at, dayAt(d0+5, 0), 0, false, 1_500_00+int64(k)*10_000)
			rem.OverdueInvoices = append(rem.OverdueInvoices, invoiceID(n))
		}
		if ci, ok := take(business); ok && cfg.OverdueInvoices > 0 {
			at := dayAt(d0, 11*hourMs)
			n := g.invoice(ci, at, dayAt(d0+14, 0), at+2*dayMs, false, 900_00)
			rem.PaidEarlyInvoice = invoiceID(n)
		}
	}
	// Tasks: opened 5 days before the end.
	if d1 := cfg.Days - 5; d1 >= 0 && cfg.BreachedTasks > 0 {
		for k := range cfg.BreachedTasks {
			ci, ok := take(business)
			if !ok {
				break
			}
			n := g.task(ci, dayAt(d1, 9*hourMs+int64(k)*hourMs), 0)
			rem.BreachedTasks = append(rem.BreachedTasks, taskID(n))
		}
		if ci, ok := take(business); ok {
			at := dayAt(d1, 9*hourMs)
			rem.OnTimeTask = taskID(g.task(ci, at, at+6*hourMs))
		}
	}
	// Large orders: two days before the end.
	if d2 := cfg.Days - 2; d2 >= 0 && cfg.PlatinumOrders > 0 {
		for k := range cfg.PlatinumOrders {
			ci, ok := take(business)
			if !ok {
				break
			}
			g.profiles[ci].tier = tierPlatinum
			g.largeOrder(ci, dayAt(d2, 14*hourMs+int64(k)*minuteMs), 45_000_00+int64(k)*100_00)
			rem.PlatinumOrders = append(rem.PlatinumOrders, customerID(g.customers[ci].num))
		}
		if ci, ok := take(business); ok {
			g.profiles[ci].tier = tierGold
			g.largeOrder(ci, dayAt(d2, 14*hourMs), 60_000_00)
			rem.GoldOrder = customerID(g.customers[ci].num)
		}
	}
	// Birthdays and renewals.
	if d3 := cfg.Days - 3; d3 >= 1 && cfg.BirthdayCases > 0 {
		date := msToTime(dayAt(d3, 0))
		rem.BirthdayDate = date.Format("01-02")
		for k := range cfg.BirthdayCases {
			ci, ok := take(consumer)
			if !ok {
				break
			}
			p := &g.profiles[ci]
			p.month, p.day, p.year = uint8(date.Month()), uint8(date.Day()), 0
			if k == 0 {
				p.year = 1990
			}
			rem.Birthdays = append(rem.Birthdays, customerID(g.customers[ci].num))
		}
		if ci, ok := take(consumer); ok {
			p := &g.profiles[ci]
			p.month, p.day, p.year = uint8(date.Month()), uint8(date.Day()), 0
			g.versions = append(g.versions, profileVersion{at: dayAt(d3-1, 12*hourMs), cust: ci, deleted: true})
			inj.DeletedProfiles++
			rem.DeletedBirthday = customerID(g.customers[ci].num)
		}
	}
	if d4 := cfg.Days - 4; d4 >= 0 && cfg.RenewalCases > 0 {
		date := msToTime(dayAt(d4, 0))
		rem.RenewalDate = date.Format(time.DateOnly)
		for range cfg.RenewalCases {
			ci, ok := take(business)
			if !ok {
				break
			}
			g.profiles[ci].contractEnd = dayAt(d4+30, 0)
			rem.Renewals = append(rem.Renewals, customerID(g.customers[ci].num))
		}
	}
	if n := len(rem.OverdueInvoices); n > 0 {
		g.note("overdue invoices: %s never paid, due %s", fmt.Sprint(rem.OverdueInvoices), g.day(max(0, cfg.Days-14)+5))
	}
	if n := len(rem.BreachedTasks); n > 0 {
		g.note("breached tasks: %s opened %s, never done", fmt.Sprint(rem.BreachedTasks), g.day(cfg.Days-5))
	}
	if n := len(rem.PlatinumOrders); n > 0 {
		g.note("platinum large orders: %s on %s (and gold %s, not a case)", fmt.Sprint(rem.PlatinumOrders),
			g.day(cfg.Days-2), rem.GoldOrder)
	}
	if n := len(rem.Birthdays); n > 0 {
		g.note("birthdays on %s: %s (and %s, deleted the day before)", rem.BirthdayDate, fmt.Sprint(rem.Birthdays),
			rem.DeletedBirthday)
	}
	if n := len(rem.Renewals); n > 0 {
		g.note("contract renewals due in 30 days on %s: %s", rem.RenewalDate, fmt.Sprint(rem.Renewals))
	}
}

// writeProfiles writes every version to w, in updated_at order.
func (g *gen) writeProfiles(w *bufio.Writer) error {
	var b []byte
	put := func(at int64, ci int32, p *profile, deleted bool) error {
		b = g.encodeProfile(b[:0], at, ci, p, deleted)
		b = append(b, '\n')
		g.stats.Customers++
		_, err := w.Write(b)
		return err
	}
	for i := range g.profiles {
		if err := put(g.startMs-profileLead, int32(i), &g.profiles[i], false); err != nil {
			return err
		}
	}
	for _, v := range g.versions {
		if err := put(v.at, v.cust, &v.p, v.deleted); err != nil {
			return err
		}
	}
	return w.Flush()
}

// encodeProfile appends one crm.customers record (SPEC §1.3).
func (g *gen) encodeProfile(b []byte, at int64, ci int32, p *profile, deleted bool) []byte {
	c := &g.customers[ci]
	t := &g.tenants[c.tenant]
	b = append(b, `{"customer_id":"c`...)
	b = appendPadded(b, uint64(c.num), 7)
	b = append(b, `","updated_at":"`...)
	b = appendTime(b, at, tsUTC, false)
	b = append(b, `","tenant":`...)
	b = append(b, t.quoted...)
	if deleted {
		return append(b, `,"deleted":true}`...)
	}
	b = append(b, `,"account_manager":"am`...)
	b = append(b, byte('1'+p.am))
	b = append(b, `@example.com","tier":"`...)
	b = append(b, tierNames[p.tier]...)
	b = append(b, `","segment":"`...)
	b = append(b, segmentNames[c.segment]...)
	b = append(b, `","region":"`...)
	b = append(b, regionNames[c.region]...)
	b = append(b, '"')
	if !c.omitTZ {
		b = append(b, `,"timezone":"`...)
		b = append(b, zones[c.zone].name...)
		b = append(b, '"')
	}
	first := true
	if p.month != 0 {
		b = append(b, `,"attributes":{"birthday":"`...)
		if p.year != 0 {
			b = appendPadded(b, uint64(p.year), 4)
			b = append(b, '-')
		}
		b = append2(b, int64(p.month))
		b = append(b, '-')
		b = append2(b, int64(p.day))
		b = append(b, '"')
		first = false
	}
	if p.contractEnd != 0 {
		if first {
			b = append(b, `,"attributes":{`...)
		} else {
			b = append(b, ',')
		}
		b = append(b, `"contract_end":"`...)
		n := len(b)
		b = appendTime(b, p.contractEnd, tsUTC, false)
		b = b[:n+len(time.DateOnly)]
		b = append(b, '"')
		first = false
	}
	if !first {
		b = append(b, '}')
	}
	return append(b, '}')
}
