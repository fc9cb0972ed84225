package datagen

import (
	"container/heap"
	"math/rand/v2"
	"strconv"
)

// Account records are the interactions the reminder rules act on:
// invoices and their payments, follow-up tasks, large orders. They come
// from a random stream of their own and are written into the interactions
// file beside the activity records, in time order and without noise, so
// that adding them left every other line (ids, noise, order) as it was:
// the replay golden files only gained the alerts of the new rules.

// Account record kinds.
const (
	akInvoiceIssued = iota
	akInvoicePaid
	akTaskOpened
	akTaskDone
	akLargeOrder
	numAKinds
)

var aKindNames = [numAKinds]string{"invoice_issued", "invoice_paid", "task_opened", "task_done", "large_order"}

// Normal account traffic, per customer and day. Consumers get none: they
// pay at checkout and have no account manager's tasks.
var (
	invoiceRate = [numSegments]float64{0, 0.03, 0.04, 0.05}
	taskRate    = [numSegments]float64{0, 0.02, 0.03, 0.04}
	orderRate   = [numSegments]float64{0, 0, 0.002, 0.006} // large_order: above the order desk's approval limit
	// invoiceTerms are the payment terms in days.
	invoiceTerms = []int64{7, 14, 30}
)

// Follow-up timing. Normal invoices are paid from a day after issue to
// three days after due, so only injected invoices reach the overdue stage
// (due + overdueAfter); normal tasks are done well inside taskSLA.
const (
	overdueAfter  = 7 * dayMs
	taskSLA       = 2 * dayMs
	taskEscalate  = 1 * dayMs // after the SLA
	taskDoneMin   = 1 * hourMs
	taskDoneMean  = 8 * hourMs
	taskDoneMax   = 40 * hourMs
	largeOrderMin = 20_000_00 // cents
)

type arec struct {
	at     int64 // occurred_at, ms
	seq    uint64
	ref    uint64 // invoice, task or order number
	due    int64  // invoice due time, ms
	amount int64  // cents
	cust   int32
	kind   uint8
	dueDay bool // due_at written as a date (YYYY-MM-DD, the customer's zone)
}

type aQueue []arec

func (q aQueue) Len() int { return len(q) }
func (q aQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q aQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *aQueue) Push(x any)   { *q = append(*q, x.(arec)) }
func (q *aQueue) Pop() any {
	old := *q
	r := old[len(old)-1]
	*q = old[:len(old)-1]
	return r
}

// accounts is the generator state of the account records.
type accounts struct {
	rng                    *rand.Rand
	queue                  aQueue
	seq                    uint64
	invoices, tasks, order uint64
	line                   []byte
}

// addA queues an account record; records past the end are not written.
func (g *gen) addA(r arec) bool {
	r.at -= r.at % secondMs
	if r.at >= g.endMs || r.at < g.startMs {
		return false
	}
	a := &g.acc
	a.seq++
	r.seq = a.seq
	heap.Push(&a.queue, r)
	inj := &g.stats.Injected
	switch r.kind {
	case akInvoiceIssued:
		inj.Invoices++
	case akInvoicePaid:
		inj.Payments++
	case akTaskOpened:
		inj.Tasks++
	case akLargeOrder:
		inj.LargeOrders++
	}
	return true
}

// accountsDay draws the normal account traffic of one day.
func (g *gen) accountsDay(dayStart int64) {
	a := &g.acc
	r := a.rng
	for i := range g.customers {
		c := &g.customers[i]
		ci := int32(i)
		if r.Float64() < invoiceRate[c.segment] {
			at := dayStart + g.between2(r, 8*hourMs, 18*hourMs)
			terms := invoiceTerms[r.IntN(len(invoiceTerms))] * dayMs
			due := at - at%dayMs + terms // midnight UTC, terms days on
			paid := at + dayMs + r.Int64N(due+3*dayMs-at-dayMs)
			g.invoice(ci, at, due, paid, r.Float64() < 0.3, g.amount2(r, c.segment))
		}
		if r.Float64() < taskRate[c.segment] {
			at := dayStart + g.between2(r, 7*hourMs, 19*hourMs)
			done := at + taskDoneMin + min(int64(r.ExpFloat64()*float64(taskDoneMean)), taskDoneMax-taskDoneMin)
			g.task(ci, at, done)
		}
		if r.Float64() < orderRate[c.segment] {
			g.largeOrder(ci, dayStart+g.between2(r, 8*hourMs, 18*hourMs), largeOrderMin+r.Int64N(80_000_00))
		}
	}
}

// invoice queues an invoice and, when paid > 0, its payment; it returns
// the invoice number.
func (g *gen) invoice(ci int32, at, due, paid int64, dueDay bool, cents int64) uint64 {
	a := &g.acc
	a.invoices++
	n := a.invoices
	g.addA(arec{at: at, cust: ci, kind: akInvoiceIssued, ref: n, due: due, amount: cents, dueDay: dueDay})
	if paid > 0 {
		g.addA(arec{at: paid, cust: ci, kind: akInvoicePaid, ref: n, amount: cents})
	}
	return n
}

// task queues a follow-up task and, when done > 0, its completion.
func (g *gen) task(ci int32, at, done int64) uint64 {
	a := &g.acc
	a.tasks++
	n := a.tasks
	g.addA(arec{at: at, cust: ci, kind: akTaskOpened, ref: n})
	if done > 0 {
		g.addA(arec{at: done, cust: ci, kind: akTaskDone, ref: n})
	}
	return n
}

func (g *gen) largeOrder(ci int32, at, cents int64) uint64 {
	a := &g.acc
	a.order++
	g.addA(arec{at: at, cust: ci, kind: akLargeOrder, ref: a.order, amount: cents})
	return a.order
}

func (g *gen) between2(r *rand.Rand, lo, hi int64) int64 { return lo + r.Int64N(hi-lo) }

func (g *gen) amount2(r *rand.Rand, segment uint8) int64 {
	return max(100, int64(float64(amountMedian[segment])*100*(2+3*r.Float64())))
}

// writeAccounts writes the queued account records due before before into
// the interactions stream; it reports whether it wrote one.
func (g *gen) writeAccounts(before int64) bool {
	a := &g.acc
	if len(a.queue) == 0 || a.queue[0].at >= before {
		return false
	}
	r := heap.Pop(&a.queue).(arec)
	a.line = g.encodeAccount(a.line[:0], &r)
	g.iOut.putInOrder(r.at, a.line)
	return true
}

// Ids: invoices I0000001, tasks K0000001, large orders L0000001 (apart
// from the o-numbered purchases); event ids ac_<n> (apart from ev_).
func invoiceID(n uint64) string { return "I" + string(appendPadded(nil, n, 7)) }
func taskID(n uint64) string    { return "K" + string(appendPadded(nil, n, 7)) }

// encodeAccount appends one account record as a crm.interactions line.
func (g *gen) encodeAccount(b []byte, r *arec) []byte {
	c := &g.customers[r.cust]
	t := &g.tenants[c.tenant]
	start := len(b)
	b = append(b, `,"event_id":"ac_`...)
	b = strconv.AppendUint(b, r.seq, 36)
	b = append(b, `","type":"`...)
	b = append(b, aKindNames[r.kind]...)
	b = append(b, '"')
	b = appendCustomerID(b, c.num, false)
	b = appendOccurredAt(b, &rec{at: r.at}, tsUTC, false, faultNone, 0)
	b = append(b, `,"tenant":`...)
	b = append(b, t.quoted...)
	b = append(b, `,"segment":"`...)
	b = append(b, segmentNames[c.segment]...)
	b = append(b, `","region":"`...)
	b = append(b, regionNames[c.region]...)
	b = append(b, `","channel":"`...)
	if r.kind == akTaskOpened || r.kind == akTaskDone {
		b = append(b, "call_center"...)
	} else {
		b = append(b, "web"...)
	}
	b = append(b, '"')
	if r.amount > 0 {
		b = appendAmount(b, r.amount, false)
		b = append(b, `,"currency":"`...)
		b = append(b, t.currency...)
		b = append(b, '"')
	}
	switch r.kind {
	case akInvoiceIssued:
		b = appendAttrID(b, true, "invoice_id", 'I', r.ref, 7)
		b = append(b, `,"due_at":"`...)
		n := len(b)
		b = appendTime(b, r.due, tsUTC, false)
		if r.dueDay {
			b = b[:n+len("2006-01-02")]
		}
		b = append(b, `"}`...)
	case akInvoicePaid:
		b = appendAttrID(b, true, "invoice_id", 'I', r.ref, 7)
		b = append(b, '}')
	case akTaskOpened, akTaskDone:
		b = appendAttrID(b, true, "task_id", 'K', r.ref, 7)
		b = append(b, '}')
	case akLargeOrder:
		b = appendAttrID(b, true, "order_id", 'L', r.ref, 7)
		b = append(b, '}')
	}
	return finishObject(b, start)
}
