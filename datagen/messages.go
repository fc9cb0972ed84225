package datagen

import "time"

// Receipt statuses (SPEC §1.2).
const (
	stSent = iota
	stDelivered
	stOpened
	stClicked
	stSoftBounce
	stHardBounce
	stFailed
	stRejected
	stComplained
	stUnsubscribed
	numStatuses
)

var statusNames = [numStatuses]string{
	"sent", "delivered", "opened", "clicked", "soft_bounce", "hard_bounce",
	"failed", "rejected", "complained", "unsubscribed",
}

// Templates.
const (
	tplOrderConfirm = iota
	tplOTP
	tplTicketAck
	tplRefundNotice
	tplPromoA
	tplPromoB
	tplNewsletter
	numTemplates
)

var templateNames = [numTemplates]string{
	"tpl_order_confirm", "tpl_otp", "tpl_ticket_ack", "tpl_refund_notice",
	"tpl_promo_a", "tpl_promo_b", "tpl_newsletter",
}

// failRates are the chances that an attempt ends soft_bounce, hard_bounce,
// failed or rejected, per channel, in normal operation.
var failRates = [numChannels][4]float64{
	chEmail: {0.015, 0.008, 0.003, 0.002},
	chSMS:   {0.020, 0.005, 0.008, 0.003},
	chPush:  {0.005, 0, 0.015, 0.002},
	chInApp: {},
}

// badEmailRates replace the email rates for customers whose address is
// dead: their mail bounces, which makes hard_bounce suppression matter.
var badEmailRates = [4]float64{0.35, 0.60, 0.03, 0.02}

// errorCodes are the provider codes written with each failure status
// (soft, hard, failed, rejected) per channel; rec.code picks one.
var errorCodes = [numChannels][4][]string{
	chEmail: {{"421 4.7.0", "452 4.2.2"}, {"550 5.1.1", "551 5.1.6"}, {"554 5.0.0"}, {"554 5.7.1"}},
	chSMS:   {{"30003", "30006"}, {"30005"}, {"30008"}, {"30007"}},
	chPush:  {{"QuotaExceeded"}, {"Unregistered"}, {"Unavailable", "InternalServerError"}, {"InvalidRegistration"}},
	chInApp: {{"x"}, {"x"}, {"x"}, {"x"}},
}

// maxAttempts is how many attempts the sending platform makes per channel
// of the first attempt; backoffMs is its first retry delay, doubled per
// attempt. An SMS that fails twice is tried a third time by email, as the
// example sms_retry policy's fallback does.
var (
	maxAttempts = [numChannels]int{chEmail: 2, chSMS: 3, chPush: 1, chInApp: 1}
	backoffMs   = [numChannels]int64{chEmail: 30 * minuteMs, chSMS: 5 * minuteMs}
)

// Quiet hours the platform keeps for SMS retries, in local time.
const (
	quietStart = 22 * hourMs
	quietEnd   = 8 * hourMs
)

// undeliveredCutoff keeps undelivered injections early enough that a
// 2h absence rule sees them before the data ends.
const undeliveredCutoff = 3 * hourMs

// sendMessage sends a new message (attempt 1) and everything the provider
// and the customer do with it.
func (g *gen) sendMessage(ci int32, ch uint8, at int64, camp int32, tpl uint8) {
	g.msgs++
	g.attemptSend(ci, g.msgs, ch, 1, at, camp, tpl, provNone)
}

// attemptSend writes attempt k of a message: sent, then a delivery report
// or a failure, then opens, clicks, complaints and unsubscribes, and for
// some failures the next attempt. avoid is a provider the platform fails
// over from.
func (g *gen) attemptSend(ci int32, msg uint64, ch uint8, k int, at int64, camp int32, tpl uint8, avoid uint8) {
	c := &g.customers[ci]
	prov := g.route(c, ch, avoid)
	base := rec{cust: ci, ref: msg, ch: ch, prov: prov, attempt: uint8(k), tpl: tpl, camp: camp}
	sent := base
	sent.at, sent.kind = at, stSent
	if !g.addR(sent) {
		return
	}
	if k == 1 && ch != chInApp && at < g.endMs-undeliveredCutoff && g.rng.Float64() < g.cfg.UndeliveredRate {
		g.stats.Injected.Undelivered++
		return
	}

	rates := failRates[ch]
	if ch == chEmail && c.badEmail {
		rates = badEmailRates
	}
	switch prov {
	case provSES:
		rates[0] += 0.005
	case provSinch:
		rates[2] += 0.005
	}
	outcome := -1
	incident := g.incidentAt(prov, at)
	if incident && g.rng.Float64() < g.cfg.IncidentFailRate {
		// The provider times out: mostly soft bounces, some hard failures.
		outcome = 0
		if g.rng.Float64() < 0.25 {
			outcome = 2
		}
	} else {
		u := g.rng.Float64()
		for i, p := range rates {
			if u < p {
				outcome = i
				break
			}
			u -= p
		}
	}
	if outcome >= 0 {
		g.failure(ci, base, at, outcome, incident)
		return
	}
	g.delivered(ci, base, at)
}

// failure writes a failed attempt and, for transient failures, the retry.
func (g *gen) failure(ci int32, base rec, sentAt int64, outcome int, incident bool) {
	ch := base.ch
	r := base
	r.kind = uint8(stSoftBounce + outcome)
	r.code = uint8(g.rng.IntN(len(errorCodes[ch][outcome])))
	if incident {
		r.at = sentAt + g.between(30*secondMs, 2*minuteMs) // timeouts
	} else {
		r.at = sentAt + 500 + g.exp(20*secondMs, 10*minuteMs)
	}
	if !g.addR(r) {
		return
	}
	k := int(base.attempt)
	first := g.firstChannel(base)
	transient := r.kind == stSoftBounce || r.kind == stFailed
	if !transient || k >= maxAttempts[first] || g.rng.Float64() >= g.cfg.RetryRate {
		return
	}
	next := r.at + backoffMs[first]<<(k-1) + g.between(0, 90*secondMs)
	nextCh := ch
	if first == chSMS && k+1 > 2 {
		nextCh = chEmail
	}
	if nextCh == chSMS {
		next = g.outOfQuietHours(&g.customers[ci], next)
	}
	avoid := uint8(provNone)
	if incident {
		avoid = base.prov
	}
	g.attemptSend(ci, base.ref, nextCh, k+1, next, base.camp, base.tpl, avoid)
}

// firstChannel is the channel of a message's first attempt: attempts on the
// fallback channel keep the first channel's retry schedule.
func (g *gen) firstChannel(r rec) uint8 {
	if r.ch == chEmail && r.attempt > 2 {
		return chSMS
	}
	return r.ch
}

// outOfQuietHours moves an instant inside the customer's quiet hours to
// shortly after they end.
func (g *gen) outOfQuietHours(c *customer, at int64) int64 {
	off := zones[c.zone].offset * secondMs
	local := ((at+off)%dayMs + dayMs) % dayMs
	switch {
	case local >= quietStart:
		at += dayMs - local + quietEnd
	case local < quietEnd:
		at += quietEnd - local
	default:
		return at
	}
	return at + g.between(0, 20*minuteMs)
}

// delivered writes a delivery report and what the customer does next.
func (g *gen) delivered(ci int32, base rec, sentAt int64) {
	c := &g.customers[ci]
	ch := base.ch
	d := base
	d.kind = stDelivered
	switch ch {
	case chSMS:
		d.at = sentAt + 1500 + g.exp(8*secondMs, 2*minuteMs)
		if g.rng.Float64() < 0.01 {
			d.at = sentAt + g.between(minuteMs, 12*minuteMs) // congested carrier
		}
	case chEmail:
		d.at = sentAt + 300 + g.exp(2*secondMs, minuteMs)
		if g.rng.Float64() < 0.02 {
			d.at = sentAt + g.between(30*secondMs, 8*minuteMs) // greylisting
		}
	case chPush:
		d.at = sentAt + 100 + g.exp(500, 30*secondMs)
	case chInApp:
		// Shown when the app is next opened.
		d.at = sentAt + g.exp(3*hourMs, 30*hourMs)
	}
	if !g.addR(d) {
		return
	}
	at := d.at
	if at >= c.churnAt {
		return // gone: nobody opens, clicks or complains
	}
	campaign := base.camp != 0
	backlash := campaign && g.campaigns[base.camp-1].backlash
	switch ch {
	case chEmail:
		openP, complainP, unsubP := 0.5, 0.0, 0.0
		if campaign {
			openP, complainP, unsubP = 0.3, 0.001, 0.004
		}
		if backlash {
			complainP, unsubP = 0.12, 0.12
		}
		if g.rng.Float64() < complainP {
			mean := hourMs
			if backlash {
				mean = 10 * minuteMs // straight from the inbox to the spam button
			}
			g.addR(withKind(base, stComplained, at+g.exp(mean, 20*hourMs)))
		}
		if g.rng.Float64() >= openP {
			return
		}
		open := at + g.exp(2*hourMs, 20*hourMs)
		if backlash {
			open = at + g.exp(15*minuteMs, 20*hourMs)
		}
		g.addR(withKind(base, stOpened, open))
		if g.rng.Float64() < 0.15 {
			g.addR(withKind(base, stClicked, open+g.exp(3*minuteMs, hourMs)))
		}
		if g.rng.Float64() < unsubP {
			u := open + g.exp(2*minuteMs, hourMs)
			if g.addR(withKind(base, stUnsubscribed, u)) && c.unsubAt > u {
				g.unsubscribe(ci, u+g.between(secondMs, 30*secondMs), icEmail, unsubEmailLink)
			}
		}
	case chSMS:
		clickP, stopP := 0.01, 0.0
		if campaign {
			clickP, stopP = 0.04, 0.003
		}
		if g.rng.Float64() < clickP {
			g.addR(withKind(base, stClicked, at+g.exp(20*minuteMs, 20*hourMs)))
		}
		if g.rng.Float64() < stopP {
			u := at + g.exp(10*minuteMs, 20*hourMs)
			if g.addR(withKind(base, stUnsubscribed, u)) && c.unsubAt > u {
				g.unsubscribe(ci, u+g.between(secondMs, 30*secondMs), icSMS, unsubSMSStop)
			}
		}
	case chPush:
		openP := 0.2
		if campaign {
			openP = 0.08
		}
		if g.rng.Float64() < openP {
			g.addR(withKind(base, stOpened, at+g.exp(30*minuteMs, 20*hourMs)))
		}
	case chInApp:
		if g.rng.Float64() < 0.5 {
			open := at + g.exp(minuteMs, hourMs)
			g.addR(withKind(base, stOpened, open))
			if g.rng.Float64() < 0.2 {
				g.addR(withKind(base, stClicked, open+g.exp(minuteMs, hourMs)))
			}
		}
	}
}

func withKind(r rec, kind uint8, at int64) rec {
	r.kind, r.at = kind, at
	return r
}

// route picks the provider for a message: per-tenant routing weights, the
// device for push, and failover away from a provider in trouble.
func (g *gen) route(c *customer, ch uint8, avoid uint8) uint8 {
	t := &g.tenants[c.tenant]
	var p uint8
	switch ch {
	case chEmail:
		p = provSES
		if g.rng.Float64() < t.sendgridPart {
			p = provSendgrid
		}
		if p == avoid {
			p = provSendgrid + provSES - p
		}
	case chSMS:
		p = provSinch
		if g.rng.Float64() < t.twilioShare {
			p = provTwilio
		}
		if p == avoid {
			p = provTwilio + provSinch - p
		}
	case chPush:
		p = provFCM
		if c.ios {
			p = provAPNs
		}
	}
	return p
}

func (g *gen) incidentAt(prov uint8, at int64) bool {
	for _, in := range g.incidents {
		if in.prov == prov && at >= in.from && at < in.to {
			return true
		}
	}
	return false
}

// Campaigns: every tenant sends a daily promotion at its own hour to a
// share of its customers, each on their preferred channel, spread over
// campaignSpread. A backlash campaign is an email blast to most customers
// that draws spam complaints and unsubscribes.
const (
	audienceWeekday  = 0.25
	audienceWeekend  = 0.12
	audienceBacklash = 0.8
	campaignSpread   = 40 * minuteMs
)

func (g *gen) campaignDay(day int, dayStart int64) {
	wd := msToTime(dayStart).Weekday()
	for ti := range g.tenants {
		t := &g.tenants[ti]
		backlash := g.plan.backlashOn(ti, day)
		suffix := "_promo"
		if backlash {
			suffix = "_newsletter"
		}
		id := "cmp_" + t.name + "_" + msToTime(dayStart).Format("20060102") + suffix
		g.campaigns = append(g.campaigns, campaign{id: appendJSONString(nil, id), tenant: uint8(ti), backlash: backlash})
		camp := int32(len(g.campaigns))
		start := dayStart + int64(t.campaignHour)*hourMs
		audience := audienceWeekday
		if wd == time.Saturday || wd == time.Sunday {
			audience = audienceWeekend
		}
		tpl := uint8(tplPromoA)
		if backlash {
			audience, tpl = audienceBacklash, tplNewsletter
			g.stats.Injected.BacklashCampaigns++
			g.note("campaign backlash: %s (tenant %s) at %s", id, t.name, msToTime(start).Format(time.RFC3339))
		}
		for _, ci := range g.byTenant[ti] {
			if g.rng.Float64() >= audience {
				continue
			}
			c := &g.customers[ci]
			at := start + g.rng.Int64N(campaignSpread)
			if c.unsubAt <= at {
				continue
			}
			ch := c.preferred
			if backlash {
				ch = chEmail
			}
			ab := tpl
			if !backlash && g.rng.IntN(2) == 1 {
				ab = tplPromoB
			}
			g.sendMessage(ci, ch, at, camp, ab)
		}
	}
}
