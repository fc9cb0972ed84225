package datagen

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"time"
)

// plan is where and when the anomalies go. It is drawn once, from its own
// random stream, before any event is generated.
type plan struct {
	dropOn      bool
	dropTenant  uint8
	dropSegment uint8
	dropFrom    int // first day of the drop

	bursts     []burst
	unresolved []unresolvedComplaint
	backlash   []struct{ tenant, day int }
}

type burst struct {
	day       int
	at        int64 // start of the hour
	customers []int32
}

type unresolvedComplaint struct {
	day  int
	cust int32
}

// Placement of the injections, in days before the end so that the
// detectors' windows, baselines and timers see them.
const (
	churnIdleDays       = 8 // churn leaves at least this many quiet days
	incidentDaysBefore  = 4
	burstDaysBefore     = 2
	backlashDaysBefore  = 6
	unresolvedMarginDay = 2 // a 48h absence timer must expire before the end
)

func (g *gen) makePlan() {
	cfg := &g.cfg
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), streamPlan))
	inj := &g.stats.Injected
	p := &g.plan

	// Churn: customers who stop everything on a day that leaves a full
	// idle period before the end.
	if lastDay := cfg.Days - churnIdleDays; lastDay > 1 && cfg.ChurnRate > 0 {
		for i := range g.customers {
			if r.Float64() < cfg.ChurnRate {
				g.customers[i].churnAt = g.startMs + dayMs + r.Int64N(int64(lastDay-1)*dayMs)
				inj.ChurnedCustomers++
			}
		}
		if inj.ChurnedCustomers > 0 {
			g.note("churn: %d customers stop all activity between %s and %s", inj.ChurnedCustomers,
				g.day(1), g.day(lastDay))
		}
	}

	// Revenue drop: one tenant × segment buys RevenueDropFactor less over
	// the last days.
	if cfg.RevenueDropDays > 0 && cfg.RevenueDropFactor > 0 {
		p.dropOn = true
		p.dropTenant = uint8(slices.Index(cfg.Tenants, cfg.RevenueDropTenant))
		p.dropSegment = uint8(slices.Index(segmentNames[:], cfg.RevenueDropSegment))
		p.dropFrom = max(0, cfg.Days-cfg.RevenueDropDays)
		inj.RevenueDrops = 1
		g.note("revenue drop: %s/%s purchases -%.0f%% from %s", cfg.RevenueDropTenant, cfg.RevenueDropSegment,
			100*cfg.RevenueDropFactor, g.day(p.dropFrom))
	}

	// Provider incidents: a tenant's main SMS provider fails most messages
	// during the hour of that tenant's campaign, when SMS volume is high.
	for i := range cfg.ProviderIncidents {
		day := cfg.Days - incidentDaysBefore - 2*i
		if day < 0 {
			break
		}
		t := &g.tenants[i%len(g.tenants)]
		from := g.startMs + int64(day)*dayMs + int64(t.campaignHour)*hourMs
		g.incidents = append(g.incidents, incident{prov: t.smsMain, from: from, to: from + hourMs})
		inj.ProviderIncidents++
		g.note("provider incident: %s fails %.0f%% of SMS %s to %s (tenant %s campaign hour)",
			providerNames[t.smsMain], 100*cfg.IncidentFailRate, msToTime(from).Format(time.RFC3339),
			msToTime(from+hourMs).Format(time.RFC3339), t.name)
	}

	// Complaint bursts: many customers of one tenant's largest region
	// complain within one hour (a courier failure, an outage).
	counts := tenantRegionCounts(g.customers, len(cfg.Tenants))
	for i := range cfg.ComplaintBursts {
		day := cfg.Days - burstDaysBefore - 4*i
		if day < 0 {
			break
		}
		ti := i % len(cfg.Tenants)
		region := 0
		for k := range numRegions {
			if counts[ti][k] > counts[ti][region] {
				region = k
			}
		}
		at := g.startMs + int64(day)*dayMs + int64((13+3*i)%24)*hourMs
		var pool []int32
		for _, ci := range g.byTenant[ti] {
			c := &g.customers[ci]
			if int(c.region) == region && c.churnAt > at+hourMs {
				pool = append(pool, ci)
			}
		}
		n := min(cfg.ComplaintBurstSize, len(pool))
		for k := range n {
			j := k + r.IntN(len(pool)-k)
			pool[k], pool[j] = pool[j], pool[k]
		}
		if n == 0 {
			continue
		}
		p.bursts = append(p.bursts, burst{day: day, at: at, customers: slices.Clone(pool[:n])})
		inj.ComplaintBursts++
		g.note("complaint burst: %d complaints from tenant %s region %s between %s and %s", n,
			cfg.Tenants[ti], regionNames[region], msToTime(at).Format(time.RFC3339),
			msToTime(at+hourMs).Format(time.RFC3339))
	}

	// Unresolved complaints: complaints early enough for a 48h timer to
	// expire, from customers still active then, never resolved.
	if lastDay := cfg.Days - unresolvedMarginDay - 1; lastDay >= 0 && len(g.customers) > 0 {
		for range cfg.UnresolvedComplaints {
			day := r.IntN(lastDay + 1)
			dayEnd := g.startMs + int64(day+1)*dayMs
			ci := int32(r.IntN(len(g.customers)))
			for tries := 0; g.customers[ci].churnAt <= dayEnd && tries < 100; tries++ {
				ci = int32(r.IntN(len(g.customers)))
			}
			if g.customers[ci].churnAt <= dayEnd {
				continue
			}
			p.unresolved = append(p.unresolved, unresolvedComplaint{day: day, cust: ci})
		}
		slices.SortStableFunc(p.unresolved, func(a, b unresolvedComplaint) int { return a.day - b.day })
	}

	// Campaign backlash: an email blast that many recipients report as spam.
	for i := range cfg.BacklashCampaigns {
		day := cfg.Days - backlashDaysBefore - 3*i
		if day < 0 {
			break
		}
		p.backlash = append(p.backlash, struct{ tenant, day int }{(1 + i) % len(cfg.Tenants), day})
	}
}

// dropping reports whether c's purchases are reduced on day.
func (p *plan) dropping(c *customer, day int) bool {
	return p.dropOn && day >= p.dropFrom && c.tenant == p.dropTenant && c.segment == p.dropSegment
}

func (p *plan) backlashOn(tenant, day int) bool {
	for _, b := range p.backlash {
		if b.tenant == tenant && b.day == day {
			return true
		}
	}
	return false
}

// injectDay writes the day's complaint bursts and unresolved complaints.
func (g *gen) injectDay(day int, dayStart int64) {
	for _, b := range g.plan.bursts {
		if b.day != day {
			continue
		}
		for _, ci := range b.customers {
			if g.complaint(ci, b.at+g.rng.Int64N(hourMs), 1, true) { // complaint_type delivery
				g.stats.Injected.BurstComplaints++
			}
		}
	}
	for _, u := range g.plan.unresolved {
		if u.day != day {
			continue
		}
		at := g.sampleTime(&g.customers[u.cust], dayStart) // before churnAt, by the plan
		if g.complaint(u.cust, at, uint8(g.rng.IntN(len(complaintTypes))), false) {
			g.stats.Injected.UnresolvedComplaints++
		}
	}
}

func (g *gen) note(format string, args ...any) {
	g.stats.Injected.Notes = append(g.stats.Injected.Notes, fmt.Sprintf(format, args...))
}

func (g *gen) day(d int) string {
	return msToTime(g.startMs + int64(d)*dayMs).Format("2006-01-02")
}

// noteTotals adds the notes whose numbers are known only at the end.
func (g *gen) noteTotals() {
	inj := &g.stats.Injected
	if inj.UnresolvedComplaints > 0 {
		g.note("unresolved complaints: %d complaints never get a complaint_resolved", inj.UnresolvedComplaints)
	}
	if inj.Undelivered > 0 {
		g.note("undelivered: %d send attempts get a sent receipt and nothing else", inj.Undelivered)
	}
}
