package datagen

import (
	"strconv"
	"unicode/utf8"
)

// The encoders append JSON by hand: every string they write is either a
// fixed ASCII name or was escaped once at setup, so no record needs
// encoding/json, reflection or an allocation.

// appendJSONString appends s as a JSON string, quotes included.
func appendJSONString(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b = append(b, '\\', c)
			i++
		case c < 0x20:
			b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			i++
		case c < utf8.RuneSelf:
			b = append(b, c)
			i++
		default:
			r, n := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && n == 1 {
				b = append(b, `\ufffd`...)
			} else {
				b = append(b, s[i:i+n]...)
			}
			i += n
		}
	}
	return append(b, '"')
}

// appendPadded appends n in decimal, zero-padded to width digits.
func appendPadded(b []byte, n uint64, width int) []byte {
	var buf [20]byte
	i := len(buf)
	for n > 0 || i > len(buf)-width {
		i--
		buf[i] = byte('0' + n%10)
		n /= 10
	}
	return append(b, buf[i:]...)
}

func append2(b []byte, n int64) []byte { return append(b, byte('0'+n/10), byte('0'+n%10)) }

// Timestamp styles: producers differ in zone and precision.
const (
	tsUTC     = iota // 2026-11-02T09:00:00Z
	tsShifted        // 2026-11-02T17:00:00+08:00
	tsNoZone         // 2026-11-02T09:00:00 (malformed)
	tsSpace          // 2026-11-02 09:00:00 (malformed)
)

// shiftedOffset is the offset of tsShifted: producers running in China.
const shiftedOffset = 8 * 3600

// appendTime appends a Unix-millisecond instant as RFC 3339.
func appendTime(b []byte, ms int64, style int, millis bool) []byte {
	secs := floorDiv(ms, 1000)
	frac := ms - secs*1000
	if style == tsShifted {
		secs += shiftedOffset
	}
	days := floorDiv(secs, 86400)
	sod := secs - days*86400
	// Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
	z := days + 719468
	era := floorDiv(z, 146097)
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	y := yoe + era*400
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d := doy - (153*mp+2)/5 + 1
	m := mp + 3
	if mp >= 10 {
		m = mp - 9
	}
	if m <= 2 {
		y++
	}
	b = append2(b, y/100)
	b = append2(b, y%100)
	b = append(b, '-')
	b = append2(b, m)
	b = append(b, '-')
	b = append2(b, d)
	if style == tsSpace {
		b = append(b, ' ')
	} else {
		b = append(b, 'T')
	}
	b = append2(b, sod/3600)
	b = append(b, ':')
	b = append2(b, sod/60%60)
	b = append(b, ':')
	b = append2(b, sod%60)
	if millis {
		b = append(b, '.', byte('0'+frac/100), byte('0'+frac/10%10), byte('0'+frac%10))
	}
	switch style {
	case tsUTC:
		b = append(b, 'Z')
	case tsShifted:
		b = append(b, "+08:00"...)
	}
	return b
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if (a%b != 0) && ((a < 0) != (b < 0)) {
		q--
	}
	return q
}

// mix is a SplitMix64 finalizer: cheap, well-spread choices derived from
// a record's seq (zone style, omitted optional fields) without drawing
// from a random stream.
func mix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// badTimes are the unparsable occurred_at values of faultBadTime.
var badTimes = []string{"yesterday", "", "now"}

func appendOccurredAt(b []byte, r *rec, style int, millis bool, f fault, variant int) []byte {
	b = append(b, `,"occurred_at":`...)
	if f == faultBadTime {
		switch variant % 3 {
		case 0:
			return appendJSONString(b, badTimes[variant/3%len(badTimes)])
		case 1:
			style = tsNoZone
		case 2:
			style = tsSpace
		}
	}
	b = append(b, '"')
	b = appendTime(b, r.at, style, millis)
	return append(b, '"')
}

func appendCustomerID(b []byte, num int32, asNumber bool) []byte {
	b = append(b, `,"customer_id":`...)
	if asNumber {
		return strconv.AppendInt(b, int64(num), 10)
	}
	b = append(b, `"c`...)
	b = appendPadded(b, uint64(num), 7)
	return append(b, '"')
}

// finishObject turns the leading comma written at start into the opening
// brace and closes the object.
func finishObject(b []byte, start int) []byte {
	if len(b) == start {
		return append(b, '{', '}')
	}
	b[start] = '{'
	return append(b, '}')
}

func appendAmount(b []byte, cents int64, quoted bool) []byte {
	b = append(b, `,"amount":`...)
	if quoted {
		b = append(b, '"')
	}
	b = strconv.AppendInt(b, cents/100, 10)
	b = append(b, '.')
	b = append2(b, cents%100)
	if quoted {
		b = append(b, '"')
	}
	return b
}

func appendAttr(b []byte, first bool, key, value string) []byte {
	if first {
		b = append(b, `,"attributes":{"`...)
	} else {
		b = append(b, `,"`...)
	}
	b = append(b, key...)
	b = append(b, `":"`...)
	b = append(b, value...)
	return append(b, '"')
}

func appendAttrID(b []byte, first bool, key string, prefix byte, n uint64, width int) []byte {
	if first {
		b = append(b, `,"attributes":{"`...)
	} else {
		b = append(b, `,"`...)
	}
	b = append(b, key...)
	b = append(b, `":"`...)
	b = append(b, prefix)
	b = appendPadded(b, n, width)
	return append(b, '"')
}

// encodeInteraction appends one crm.interactions record (SPEC §1.1).
func (g *gen) encodeInteraction(b []byte, r *rec, id uint64, f fault, v int) []byte {
	c := &g.customers[r.cust]
	t := &g.tenants[c.tenant]
	h := mix(r.seq)
	missing := -1
	if f == faultMissing {
		missing = v % 4
	}
	hasAmount := r.kind == itPurchase || r.kind == itRefund
	start := len(b)
	if missing != 0 {
		b = append(b, `,"event_id":"ev_`...)
		b = strconv.AppendUint(b, id, 36)
		b = append(b, '"')
	}
	if missing != 1 {
		b = append(b, `,"type":"`...)
		b = append(b, iTypeNames[r.kind]...)
		b = append(b, '"')
	}
	if missing != 2 {
		b = appendCustomerID(b, c.num, f == faultWrongType && !hasAmount)
	}
	if missing != 3 {
		style := tsUTC
		if h%10 < 3 {
			style = tsShifted
		}
		b = appendOccurredAt(b, r, style, false, f, v)
	}
	b = append(b, `,"tenant":`...)
	b = append(b, t.quoted...)
	b = append(b, `,"segment":"`...)
	b = append(b, segmentNames[c.segment]...)
	b = append(b, `","region":"`...)
	b = append(b, regionNames[c.region]...)
	b = append(b, '"')
	if h>>8%50 != 0 { // a few producers leave the channel out
		b = append(b, `,"channel":"`...)
		b = append(b, iChannelNames[r.ch]...)
		b = append(b, '"')
	}
	if hasAmount {
		b = appendAmount(b, r.amount, f == faultWrongType)
		b = append(b, `,"currency":"`...)
		b = append(b, t.currency...)
		b = append(b, '"')
	}
	switch r.kind {
	case itPurchase:
		b = appendAttrID(b, true, "order_id", 'o', r.ref, 8)
		b = append(b, '}')
	case itRefund:
		b = appendAttrID(b, true, "order_id", 'o', r.ref, 8)
		b = appendAttr(b, false, "reason", refundReasons[r.code])
		b = append(b, '}')
	case itTicketOpened:
		b = appendAttrID(b, true, "ticket_id", 'T', r.ref, 7)
		b = appendAttr(b, false, "topic", ticketTopics[r.code])
		b = append(b, '}')
	case itComplaint:
		b = appendAttrID(b, true, "ticket_id", 'T', r.ref, 7)
		b = appendAttr(b, false, "complaint_type", complaintTypes[r.code])
		b = append(b, '}')
	case itComplaintResolved:
		b = appendAttrID(b, true, "ticket_id", 'T', r.ref, 7)
		b = appendAttr(b, false, "resolution", resolutions[r.code])
		b = append(b, '}')
	case itUnsubscribe:
		b = appendAttr(b, true, "list", "marketing")
		b = appendAttr(b, false, "source", unsubSources[r.code])
		b = append(b, '}')
	case itContactUpdated:
		b = appendAttr(b, true, "field", contactFields[r.code])
		b = append(b, '}')
	}
	return finishObject(b, start)
}

// encodeReceipt appends one crm.delivery-receipts record (SPEC §1.2).
func (g *gen) encodeReceipt(b []byte, r *rec, id uint64, f fault, v int) []byte {
	c := &g.customers[r.cust]
	t := &g.tenants[c.tenant]
	h := mix(r.seq)
	missing := -1
	if f == faultMissing {
		missing = v % 6
	}
	start := len(b)
	if missing != 0 {
		b = append(b, `,"receipt_id":"rc_`...)
		b = strconv.AppendUint(b, id, 36)
		b = append(b, '"')
	}
	if missing != 1 {
		b = append(b, `,"message_id":"m`...)
		b = appendPadded(b, r.ref, 9)
		b = append(b, '"')
	}
	if missing != 2 {
		b = appendCustomerID(b, c.num, f == faultWrongType && v%2 == 0)
	}
	if missing != 3 {
		b = append(b, `,"channel":"`...)
		b = append(b, channelNames[r.ch]...)
		b = append(b, '"')
	}
	if missing != 4 {
		b = append(b, `,"status":"`...)
		b = append(b, statusNames[r.kind]...)
		b = append(b, '"')
	}
	if missing != 5 {
		style := tsUTC
		if h%4 == 0 {
			style = tsShifted
		}
		b = appendOccurredAt(b, r, style, millisProvider(r.prov), f, v)
	}
	switch {
	case f == faultWrongType && v%2 == 1:
		b = append(b, `,"attempt":"`...)
		b = strconv.AppendUint(b, uint64(r.attempt), 10)
		b = append(b, '"')
	case r.attempt > 1 || h>>8%3 != 0: // attempt 1 is the default; some producers omit it
		b = append(b, `,"attempt":`...)
		b = strconv.AppendUint(b, uint64(r.attempt), 10)
	}
	b = append(b, `,"tenant":`...)
	b = append(b, t.quoted...)
	if r.camp != 0 {
		b = append(b, `,"campaign_id":`...)
		b = append(b, g.campaigns[r.camp-1].id...)
	}
	b = append(b, `,"template_id":"`...)
	b = append(b, templateNames[r.tpl]...)
	b = append(b, '"')
	if r.prov != provNone {
		b = append(b, `,"provider":"`...)
		b = append(b, providerNames[r.prov]...)
		b = append(b, '"')
	}
	if r.kind >= stSoftBounce && r.kind <= stRejected {
		b = append(b, `,"error_code":"`...)
		b = append(b, errorCodes[r.ch][r.kind-stSoftBounce][r.code]...)
		b = append(b, '"')
	}
	if !c.omitTZ {
		b = append(b, `,"recipient_tz":"`...)
		b = append(b, zones[c.zone].name...)
		b = append(b, '"')
	}
	return finishObject(b, start)
}

// millisProvider reports whether a provider's receipts carry milliseconds
// (email and push do; SMS carriers report whole seconds). Record times are
// truncated to what is written, so that written times sort as generated.
func millisProvider(p uint8) bool {
	return p == provSendgrid || p == provSES || p == provFCM || p == provAPNs
}
