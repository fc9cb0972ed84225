// Package datagen owns the synthetic data behind `crmpulse gen`: seeded,
// realistic CRM interactions and delivery receipts in the JSON Lines format
// of SPEC §1, with known anomalies injected (churn, a revenue drop, complaint
// bursts, unresolved complaints, a provider incident, a campaign backlash,
// undelivered messages, bounces and retries) and the imperfections of real
// streams (duplicates, out-of-order and late records, malformed lines), so
// that every detector of examples/rules.yaml has something to find. With
// GenerateAll it also writes the customer profiles of SPEC §1.3 (account
// managers, tiers, zones, birthdays, contract ends; profiles.go), and the
// interactions carry invoices, payments, follow-up tasks and large orders
// (accounts.go) with the reminder cases of Reminders injected.
//
// Generation streams: events are produced a day at a time into hour
// buckets, each hour is sorted and written, and only the follow-ups of the
// next two days are held in memory. Output depends on Config alone.
package datagen

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Random streams: each concern draws from its own PCG stream of the seed,
// so that, say, a different MalformedRate leaves the valid events as they
// were and the population does not depend on Days.
const (
	streamPopulation = iota + 1
	streamPlan
	streamEvents
	streamNoiseInteractions
	streamNoiseReceipts
	streamAccounts
	streamProfiles
)

const (
	secondMs = int64(1000)
	minuteMs = 60 * secondMs
	hourMs   = 60 * minuteMs
	dayMs    = 24 * hourMs
)

// ringHours is how far ahead of the hour being written records may be
// placed: the day being generated plus the longest follow-up (a complaint
// resolved 40h later, a retry pushed past quiet hours), with room to spare.
const ringHours = 96

// maxFollowUp caps every follow-up delay so that it fits in the ring.
const maxFollowUp = 44 * hourMs

// Generate writes cfg's data set: interactions and receipts as JSON Lines,
// each stream in occurred_at order except for the records deliberately
// written out of order, late or twice. Either writer may be nil to discard
// that stream. The Stats describe exactly what was written.
func Generate(cfg Config, interactions, receipts io.Writer) (Stats, error) {
	return GenerateAll(cfg, Outputs{Interactions: interactions, Receipts: receipts})
}

// Outputs are the writers of GenerateAll; a nil one discards its stream.
type Outputs struct {
	Interactions, Receipts io.Writer
	// Customers receives the crm.customers profiles (SPEC §1.3). The
	// other streams are the same whether or not it is set.
	Customers io.Writer
}

// GenerateAll is Generate with the profiles too.
func GenerateAll(cfg Config, out Outputs) (Stats, error) {
	interactions, receipts := out.Interactions, out.Receipts
	cfg = cfg.withDefaults()
	if err := cfg.validate(); err != nil {
		return Stats{}, fmt.Errorf("datagen config: %w", err)
	}
	if interactions == nil {
		interactions = io.Discard
	}
	if receipts == nil {
		receipts = io.Discard
	}
	g := newGen(cfg, interactions, receipts)
	if out.Customers != nil {
		if err := g.writeProfiles(bufio.NewWriterSize(out.Customers, 256<<10)); err != nil {
			return g.stats, fmt.Errorf("writing customers: %w", err)
		}
	}
	g.run()
	g.noteTotals()
	if err := g.finish(); err != nil {
		return g.stats, err
	}
	return g.stats, nil
}

// rec is one record before encoding. Codes index the tables of
// population.go and encode.go; ids are derived from seq.
type rec struct {
	at      int64  // occurred_at, Unix milliseconds
	seq     uint64 // generation order: tie-break and record id
	ref     uint64 // order, ticket or message number
	amount  int64  // cents
	cust    int32  // index into gen.customers
	camp    int32  // campaign index + 1; 0 for none
	kind    uint8  // interaction type or receipt status
	ch      uint8  // interaction channel or message channel
	prov    uint8  // provider
	attempt uint8  // send attempt, receipts only
	tpl     uint8  // template
	code    uint8  // error code or attribute variant
}

func cmpRec(a, b rec) int {
	if a.at != b.at {
		if a.at < b.at {
			return -1
		}
		return 1
	}
	switch {
	case a.seq < b.seq:
		return -1
	case a.seq > b.seq:
		return 1
	}
	return 0
}

type gen struct {
	cfg       Config
	rng       *rand.Rand
	customers []customer
	byTenant  [][]int32 // customer indexes per tenant, in index order
	tenants   []tenantInfo
	campaigns []campaign
	incidents []incident
	plan      plan

	startMs, endMs int64
	flushed        int // hours written so far
	seq            uint64
	msgs, orders   uint64
	tickets        uint64

	iRing, rRing [ringHours][]rec
	iOut, rOut   *stream
	stats        Stats

	acc      accounts         // invoices, payments, tasks, large orders
	profiles []profile        // first version per customer
	versions []profileVersion // later versions, in updated_at order
	reserved []bool           // customers of injected reminder cases

	hourCDF [2][]([24]float64) // [business][zone] cumulative hour weights, UTC hours
}

type tenantInfo struct {
	name         string
	quoted       []byte // JSON string, quotes included
	currency     string
	campaignHour int // UTC hour of the daily campaign
	smsMain      uint8
	twilioShare  float64
	sendgridPart float64
}

type campaign struct {
	id       []byte // JSON string, quotes included
	tenant   uint8
	backlash bool
}

type incident struct {
	prov     uint8
	from, to int64
}

func newGen(cfg Config, iw, rw io.Writer) *gen {
	g := &gen{
		cfg:     cfg,
		rng:     rand.New(rand.NewPCG(uint64(cfg.Seed), streamEvents)),
		startMs: cfg.Start.UnixMilli(),
	}
	g.endMs = g.startMs + int64(cfg.Days)*dayMs
	g.customers = newPopulation(&cfg)
	g.byTenant = make([][]int32, len(cfg.Tenants))
	for i := range g.customers {
		t := g.customers[i].tenant
		g.byTenant[t] = append(g.byTenant[t], int32(i))
	}
	for i, name := range cfg.Tenants {
		ti := tenantInfo{
			name:         name,
			quoted:       appendJSONString(nil, name),
			currency:     currencies[i%len(currencies)],
			campaignHour: (15 + 11*i) % 24,
			twilioShare:  0.65,
			sendgridPart: 0.6,
		}
		if i%2 == 1 {
			ti.twilioShare, ti.sendgridPart = 0.35, 0.4
		}
		ti.smsMain = provTwilio
		if ti.twilioShare < 0.5 {
			ti.smsMain = provSinch
		}
		g.tenants = append(g.tenants, ti)
	}
	for b := range 2 {
		g.hourCDF[b] = make([][24]float64, len(zones))
		prof := &consumerHours
		if b == 1 {
			prof = &businessHours
		}
		for z, zn := range zones {
			var sum float64
			for h := range 24 {
				local := ((h+int(zn.offset/3600))%24 + 24) % 24
				sum += prof[local]
				g.hourCDF[b][z][h] = sum
			}
			for h := range 24 {
				g.hourCDF[b][z][h] /= sum
			}
		}
	}
	noiseI := rand.New(rand.NewPCG(uint64(cfg.Seed), streamNoiseInteractions))
	noiseR := rand.New(rand.NewPCG(uint64(cfg.Seed), streamNoiseReceipts))
	g.iOut = newStream(&cfg, bufio.NewWriterSize(iw, 256<<10), noiseI, g.endMs, &g.stats, &g.stats.Interactions,
		g.encodeInteraction, interactionNoise)
	g.rOut = newStream(&cfg, bufio.NewWriterSize(rw, 256<<10), noiseR, g.endMs, &g.stats, &g.stats.Receipts,
		g.encodeReceipt, receiptNoise)
	g.iOut.before = g.writeAccounts
	g.acc.rng = rand.New(rand.NewPCG(uint64(cfg.Seed), streamAccounts))
	g.makePlan()
	g.planProfiles()
	return g
}

// run generates and writes every day.
func (g *gen) run() {
	for d := range g.cfg.Days {
		dayStart := g.startMs + int64(d)*dayMs
		for i := range g.customers {
			g.customerDay(int32(i), d, dayStart)
		}
		g.campaignDay(d, dayStart)
		g.injectDay(d, dayStart)
		g.accountsDay(dayStart)
		for h := d * 24; h < (d+1)*24; h++ {
			g.flushHour(h)
		}
		if g.iOut.err != nil || g.rOut.err != nil {
			return
		}
	}
}

func (g *gen) flushHour(h int) {
	slot := h % ringHours
	ib, rb := g.iRing[slot], g.rRing[slot]
	slices.SortFunc(ib, cmpRec)
	slices.SortFunc(rb, cmpRec)
	g.iOut.writeHour(ib)
	for g.writeAccounts(g.startMs + int64(h+1)*hourMs) {
	}
	g.rOut.writeHour(rb)
	g.iRing[slot], g.rRing[slot] = ib[:0], rb[:0]
	g.flushed = h + 1
}

func (g *gen) finish() error {
	errI := g.iOut.close()
	errR := g.rOut.close()
	if errI != nil {
		return fmt.Errorf("writing interactions: %w", errI)
	}
	if errR != nil {
		return fmt.Errorf("writing receipts: %w", errR)
	}
	return nil
}

// slotFor returns the ring slot for a record at ms, or false when the
// record falls after the data set's end (it is then not written).
func (g *gen) slotFor(at int64) (int, bool) {
	if at >= g.endMs || at < g.startMs {
		return 0, false
	}
	h := int((at - g.startMs) / hourMs)
	if h < g.flushed || h >= g.flushed+ringHours {
		// Follow-ups are capped to fit; reaching here is a bug.
		panic(fmt.Sprintf("datagen: record at hour %d outside the ring [%d, %d)", h, g.flushed, g.flushed+ringHours))
	}
	return h % ringHours, true
}

// addI places an interaction; it reports false when the record is past
// the end of the data set.
func (g *gen) addI(r rec) bool {
	r.at -= r.at % secondMs // interactions are written to the second
	slot, ok := g.slotFor(r.at)
	if !ok {
		return false
	}
	g.seq++
	r.seq = g.seq
	g.iRing[slot] = append(g.iRing[slot], r)
	if r.kind == itUnsubscribe {
		g.stats.Injected.Unsubscribes++
	}
	return true
}

// addR places a receipt; it reports false when the record is past the end
// of the data set.
func (g *gen) addR(r rec) bool {
	if !millisProvider(r.prov) {
		r.at -= r.at % secondMs
	}
	slot, ok := g.slotFor(r.at)
	if !ok {
		return false
	}
	g.seq++
	r.seq = g.seq
	g.rRing[slot] = append(g.rRing[slot], r)
	inj := &g.stats.Injected
	switch r.kind {
	case stSent:
		if r.attempt > 1 {
			inj.Retries++
		}
	case stSoftBounce:
		inj.SoftBounces++
	case stHardBounce:
		inj.HardBounces++
	case stFailed:
		inj.Failed++
	case stRejected:
		inj.Rejected++
	case stComplained:
		inj.Complained++
	case stUnsubscribed:
		inj.Unsubscribed++
	}
	return true
}

// sampleTime draws an instant of the UTC day starting at dayStart,
// shaped by the customer's local daily rhythm.
func (g *gen) sampleTime(c *customer, dayStart int64) int64 {
	b := 0
	if c.segment != segConsumer {
		b = 1
	}
	cdf := &g.hourCDF[b][c.zone]
	u := g.rng.Float64()
	h := 0
	for h < 23 && u >= cdf[h] {
		h++
	}
	return dayStart + int64(h)*hourMs + g.rng.Int64N(hourMs)
}

// exp draws an exponential delay with the given mean, capped.
func (g *gen) exp(mean, limit int64) int64 {
	d := int64(g.rng.ExpFloat64() * float64(mean))
	return min(d, limit)
}

// between draws a duration in [lo, hi).
func (g *gen) between(lo, hi int64) int64 {
	return lo + g.rng.Int64N(hi-lo)
}

func poisson(r *rand.Rand, lambda float64) int {
	switch {
	case lambda <= 0:
		return 0
	case lambda > 30:
		return max(0, int(math.Round(lambda+math.Sqrt(lambda)*r.NormFloat64())))
	}
	limit := math.Exp(-lambda)
	k, p := 0, r.Float64()
	for p > limit {
		k++
		p *= r.Float64()
	}
	return k
}

// msToTime is for the human-readable notes in Stats.
func msToTime(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// Files are the paths WriteFiles wrote.
type Files struct {
	Interactions, Receipts, Customers string
}

// WriteFiles writes the data set of cfg as interactions.jsonl,
// receipts.jsonl and customers.jsonl in dir (what `crmpulse gen` writes).
func WriteFiles(cfg Config, dir string) (Files, Stats, error) {
	f := Files{Interactions: filepath.Join(dir, "interactions.jsonl"), Receipts: filepath.Join(dir, "receipts.jsonl"),
		Customers: filepath.Join(dir, "customers.jsonl")}
	var files []*os.File
	defer func() {
		for _, fh := range files {
			fh.Close()
		}
	}()
	for _, p := range []string{f.Interactions, f.Receipts, f.Customers} {
		fh, err := os.Create(p)
		if err != nil {
			return f, Stats{}, err
		}
		files = append(files, fh)
	}
	bufs := []*bufio.Writer{bufio.NewWriterSize(files[0], 1<<20), bufio.NewWriterSize(files[1], 1<<20), bufio.NewWriterSize(files[2], 1<<20)}
	stats, err := GenerateAll(cfg, Outputs{Interactions: bufs[0], Receipts: bufs[1], Customers: bufs[2]})
	if err != nil {
		return f, stats, err
	}
	for i, p := range []string{f.Interactions, f.Receipts, f.Customers} {
		if err := bufs[i].Flush(); err != nil {
			return f, stats, fmt.Errorf("writing %s: %w", p, err)
		}
		if err := files[i].Close(); err != nil {
			return f, stats, fmt.Errorf("writing %s: %w", p, err)
		}
	}
	return f, stats, nil
}
