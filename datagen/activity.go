package datagen

import (
	"math"
	"time"
)

// Interaction types (SPEC §1.1).
const (
	itPurchase = iota
	itRefund
	itLogin
	itVisit
	itTicketOpened
	itComplaint
	itComplaintResolved
	itUnsubscribe
	itContactUpdated
	numITypes
)

var iTypeNames = [numITypes]string{
	"purchase", "refund", "login", "visit", "ticket_opened", "complaint",
	"complaint_resolved", "unsubscribe", "contact_updated",
}

// baseRate is how often a customer of a segment does each thing per day,
// before the customer's own activity multiplier and the day of the week.
// Business customers order often and in bulk; consumers browse more than
// they buy. Resolutions follow complaints and are not drawn on their own.
var baseRate = [numSegments][numITypes]float64{
	segConsumer:   {0.40, 0.012, 0.8, 2.0, 0.03, 0.004, 0, 0.0005, 0.01},
	segSMB:        {0.80, 0.024, 1.5, 2.5, 0.03, 0.004, 0, 0.0005, 0.01},
	segMidMarket:  {1.50, 0.045, 2.5, 3.0, 0.04, 0.004, 0, 0.0003, 0.01},
	segEnterprise: {3.00, 0.090, 4.0, 4.0, 0.05, 0.004, 0, 0.0002, 0.01},
}

// amountMedian is the median purchase in each segment, in currency units;
// amounts are log-normal around it.
var amountMedian = [numSegments]float64{35, 150, 550, 2000}

const amountSigma = 0.5

// Daily rhythm in local time, hour 0 to 23: consumers peak in the
// evening, businesses in office hours.
var (
	consumerHours = [24]float64{0.3, 0.15, 0.1, 0.1, 0.1, 0.2, 0.4, 0.8, 1.1, 1.2, 1.3, 1.4,
		1.5, 1.4, 1.3, 1.3, 1.4, 1.6, 1.9, 2.2, 2.3, 2.0, 1.3, 0.7}
	businessHours = [24]float64{0.1, 0.05, 0.05, 0.05, 0.05, 0.1, 0.3, 0.8, 1.8, 2.4, 2.5, 2.3,
		1.8, 2.2, 2.4, 2.3, 2.0, 1.4, 0.8, 0.5, 0.4, 0.3, 0.2, 0.15}
)

// weekFactor scales activity by day of the week: consumers shop a little
// more at weekends, businesses less (but not so much less that a 7-day
// mean makes every Sunday look like a revenue drop).
func weekFactor(segment uint8, wd time.Weekday) float64 {
	weekend := wd == time.Saturday || wd == time.Sunday
	switch {
	case segment == segConsumer && weekend:
		return 1.1
	case segment == segConsumer:
		return 0.96
	case weekend:
		return 0.75
	}
	return 1.05
}

// Attribute value tables, indexed by rec.code.
var (
	refundReasons  = []string{"damaged", "not_as_described", "late_delivery", "changed_mind"}
	ticketTopics   = []string{"billing", "shipping", "account", "product_question"}
	complaintTypes = []string{"billing", "delivery", "product_quality", "service"}
	resolutions    = []string{"refund", "replacement", "explanation", "credit"}
	unsubSources   = []string{"email_link", "preferences", "sms_stop"}
	contactFields  = []string{"email", "phone", "address"}
)

const (
	unsubEmailLink   = 0
	unsubPreferences = 1
	unsubSMSStop     = 2
)

// Complaint handling: most are resolved within a working day, all within
// resolveMax, safely inside the 48h the example rule allows.
const (
	resolveMin  = 1 * hourMs
	resolveMean = 8 * hourMs
	resolveMax  = 40 * hourMs
)

// customerDay draws one customer's interactions for one day.
func (g *gen) customerDay(ci int32, day int, dayStart int64) {
	c := &g.customers[ci]
	if c.churnAt <= dayStart {
		return
	}
	wf := weekFactor(c.segment, msToTime(dayStart).Weekday())
	drop := g.plan.dropping(c, day)
	for t := range numITypes {
		rate := baseRate[c.segment][t]
		if rate == 0 {
			continue
		}
		lambda := rate * c.activity * wf
		if t == itPurchase && drop {
			lambda *= 1 - g.cfg.RevenueDropFactor
		}
		for n := poisson(g.rng, lambda); n > 0; n-- {
			at := g.sampleTime(c, dayStart)
			if at >= c.churnAt {
				continue
			}
			g.interaction(ci, uint8(t), at)
		}
	}
}

// interaction writes one interaction and what follows from it: order
// confirmations, one-time passwords, ticket acknowledgements, resolutions.
func (g *gen) interaction(ci int32, t uint8, at int64) {
	c := &g.customers[ci]
	r := rec{at: at, cust: ci, kind: t}
	switch t {
	case itPurchase:
		g.orders++
		r.ref = g.orders
		r.amount = g.amount(c.segment)
		r.ch = uint8(pick(g.rng, []float64{0.5, 0.4, 0.1}))
		c.lastOrder = r.ref
		g.addI(r)
		ch := uint8(chEmail)
		if c.preferred == chSMS && g.rng.Float64() < 0.5 {
			ch = chSMS
		}
		g.sendMessage(ci, ch, at+g.between(5*secondMs, 60*secondMs), 0, tplOrderConfirm)
	case itRefund:
		if c.lastOrder == 0 {
			return
		}
		r.ref = c.lastOrder
		r.amount = g.amount(c.segment)
		r.ch = uint8(pick(g.rng, []float64{0.6, 0.1, 0.2, 0.1}))
		r.code = uint8(g.rng.IntN(len(refundReasons)))
		g.addI(r)
		g.sendMessage(ci, chEmail, at+g.between(30*secondMs, 10*minuteMs), 0, tplRefundNotice)
	case itLogin:
		r.ch = uint8(g.rng.IntN(2))
		g.addI(r)
		if g.rng.Float64() < otpShare {
			g.sendMessage(ci, chSMS, at+g.between(secondMs, 5*secondMs), 0, tplOTP)
		}
	case itVisit:
		r.ch = uint8(g.rng.IntN(2))
		g.addI(r)
	case itTicketOpened:
		g.tickets++
		r.ref = g.tickets
		r.ch = uint8(pick(g.rng, []float64{0.4, 0.2, 0, 0.3, 0.1}))
		r.code = uint8(g.rng.IntN(len(ticketTopics)))
		g.addI(r)
		g.sendMessage(ci, chEmail, at+g.between(30*secondMs, 5*minuteMs), 0, tplTicketAck)
	case itComplaint:
		g.complaint(ci, at, uint8(g.rng.IntN(len(complaintTypes))), true)
	case itUnsubscribe:
		if c.unsubAt <= at {
			return
		}
		g.unsubscribe(ci, at, icWeb, unsubPreferences)
	case itContactUpdated:
		r.ch = uint8(g.rng.IntN(2))
		r.code = uint8(g.rng.IntN(len(contactFields)))
		g.addI(r)
	}
}

// otpShare is the share of logins that send a one-time password by SMS.
const otpShare = 0.08

func (g *gen) amount(segment uint8) int64 {
	v := amountMedian[segment] * math.Exp(amountSigma*g.rng.NormFloat64())
	return max(1, int64(math.Round(v*100)))
}

// complaint writes a complaint with a new ticket, its acknowledgement and,
// when resolve is set, its resolution.
func (g *gen) complaint(ci int32, at int64, ctype uint8, resolve bool) bool {
	g.tickets++
	r := rec{at: at, cust: ci, kind: itComplaint, ref: g.tickets, code: ctype}
	r.ch = uint8(pick(g.rng, []float64{0.3, 0.2, 0, 0.4, 0.1}))
	if !g.addI(r) {
		return false
	}
	g.sendMessage(ci, chEmail, at+g.between(30*secondMs, 5*minuteMs), 0, tplTicketAck)
	if resolve {
		done := at + resolveMin + g.exp(resolveMean, resolveMax-resolveMin)
		g.addI(rec{at: done, cust: ci, kind: itComplaintResolved, ref: r.ref, ch: icCallCenter,
			code: uint8(g.rng.IntN(len(resolutions)))})
	}
	return true
}

// unsubscribe records a marketing unsubscribe: campaigns stop reaching the
// customer, and the resend policies must suppress them.
func (g *gen) unsubscribe(ci int32, at int64, ch, source uint8) {
	c := &g.customers[ci]
	if g.addI(rec{at: at, cust: ci, kind: itUnsubscribe, ch: ch, code: source}) {
		c.unsubAt = min(c.unsubAt, at)
	}
}
