package ingest

import (
	"encoding/binary"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	// recipient_tz must validate on hosts without /usr/share/zoneinfo
	// (distroless images too); the embedded copy is only a fallback.
	_ "time/tzdata"
	"unicode/utf16"
	"unicode/utf8"
	"unsafe"
)

// This file is the decoder for the two record kinds of SPEC §1. It is a
// hand-written single-pass scanner rather than encoding/json because decoding
// is the largest per-event cost of the pipeline (DESIGN §3): the schemas are
// flat and fixed, so keys are matched through a small perfect hash, values
// are validated in place, and every string of a record is copied into one
// allocation at the end.
//
// Where this decoder differs from encoding/json, on purpose:
//   - keys match exactly (encoding/json also matches "EVENT_ID");
//   - a repeated key replaces the earlier value entirely, null included
//     (encoding/json ignores a later null and merges repeated objects);
//   - a null attribute value means the attribute is absent;
//   - invalid UTF-8 inside strings is kept byte for byte (encoding/json
//     substitutes U+FFFD), which is cheaper and loses nothing;
//   - an empty defaulted string (tenant, segment, region, channel) takes its
//     default, as an absent one does; an empty recipient_tz is absent;
//   - a time outside [MinTime, MaxTime), a number beyond float64 and a
//     string over its length limit (limits.go) are refused, never cut.

// DecodeInteraction decodes one crm.interactions record (SPEC §1.1) into ev,
// replacing everything ev held. Optional fields take their SPEC defaults.
//
// The error, if any, is a *RejectError; ev is then the zero Interaction.
// ev never refers to data, so the caller may reuse the buffer at once. All
// strings of one record share one allocation: keeping any of them alive
// keeps all of them, so long-lived state should strings.Clone what it keeps.
func DecodeInteraction(data []byte, ev *Interaction) error {
	d := decoder{data: data, schema: &interactionSchema}
	if err := d.decode(); err != nil {
		*ev = Interaction{}
		return err
	}
	backing := d.materialize()
	*ev = Interaction{
		EventID:    d.str(backing, iEventID),
		Type:       d.str(backing, iType),
		CustomerID: d.str(backing, iCustomerID),
		OccurredAt: d.when,
		Tenant:     d.strOr(backing, iTenant, DefaultTenant),
		Segment:    d.strOr(backing, iSegment, UnknownDim),
		Region:     d.strOr(backing, iRegion, UnknownDim),
		Channel:    d.strOr(backing, iChannel, UnknownDim),
		Amount:     d.amount,
		Currency:   d.str(backing, iCurrency),
		Attributes: d.attributeMap(backing),
	}
	return nil
}

// DecodeReceipt decodes one crm.delivery-receipts record (SPEC §1.2) into r,
// replacing everything r held. Attempt defaults to 1 and Tenant to
// DefaultTenant; a RecipientTZ is checked with LoadZone.
//
// The error, if any, is a *RejectError; r is then the zero Receipt. As with
// DecodeInteraction, r never refers to data and its strings share one
// allocation.
func DecodeReceipt(data []byte, r *Receipt) error {
	d := decoder{data: data, schema: &receiptSchema, attempt: 1}
	if err := d.decode(); err != nil {
		*r = Receipt{}
		return err
	}
	backing := d.materialize()
	tz := d.str(backing, rRecipientTZ)
	if tz != "" {
		if _, err := LoadZone(tz); err != nil {
			*r = Receipt{}
			return &RejectError{Reason: ReasonBadValue, Field: "recipient_tz", Detail: err.Error()}
		}
	}
	*r = Receipt{
		ReceiptID:   d.str(backing, rReceiptID),
		MessageID:   d.str(backing, rMessageID),
		CustomerID:  d.str(backing, rCustomerID),
		Channel:     d.str(backing, rChannel),
		Status:      d.str(backing, rStatus),
		OccurredAt:  d.when,
		Attempt:     d.attempt,
		Tenant:      d.strOr(backing, rTenant, DefaultTenant),
		CampaignID:  d.str(backing, rCampaignID),
		TemplateID:  d.str(backing, rTemplateID),
		Provider:    d.str(backing, rProvider),
		ErrorCode:   d.str(backing, rErrorCode),
		RecipientTZ: tz,
	}
	return nil
}

// zones caches LoadZone: time.LoadLocation reads and parses a zoneinfo file
// on every call, far too slow for once per receipt.
var (
	zones         sync.Map // zone name → zoneEntry
	badZoneStored atomic.Int64
)

// maxBadZones bounds how many unknown zone names are remembered, so a
// producer sending garbage cannot grow the cache without limit; the real
// zones are a few hundred.
const maxBadZones = 1024

type zoneEntry struct {
	loc *time.Location
	err error
}

// LoadZone returns the IANA time zone called name, as time.LoadLocation
// does, from a process-wide cache. It refuses "" and "Local", which
// time.LoadLocation maps to UTC and to the host's zone: neither names the
// recipient's zone. Consumers of Receipt.RecipientTZ should use it too, so
// each zone is loaded once.
func LoadZone(name string) (*time.Location, error) {
	if v, ok := zones.Load(name); ok {
		e := v.(zoneEntry)
		return e.loc, e.err
	}
	var e zoneEntry
	if name == "" || name == "Local" {
		e.err = fmt.Errorf("%q is not an IANA time zone name", name)
	} else if e.loc, e.err = time.LoadLocation(name); e.err != nil {
		e.err = fmt.Errorf("unknown time zone %q", name)
	}
	if e.err == nil || badZoneStored.Add(1) <= maxBadZones {
		// Clone: name may be a slice of a record's shared backing string.
		zones.Store(strings.Clone(name), e)
	}
	return e.loc, e.err
}

// fieldKind says how a known field's value is checked and stored.
type fieldKind uint8

const (
	kindString fieldKind = iota
	kindTime
	kindAmount
	kindAttempt
	kindAttributes
	kindBool // a JSON boolean (customers' deleted)
)

type fieldSpec struct {
	name     string
	kind     fieldKind
	required bool
	w1, w2   uint64 // keyWords(name), filled in by newSchema
}

// maxFields bounds the fields of a schema, so per-field state fits a
// bitmask and a fixed array on the stack.
const maxFields = 16

// keySlots is the size of a schema's key table; a power of two.
const (
	keySlotBits = 7
	keySlots    = 1 << keySlotBits
)

// Field names are 4 to 16 bytes long, so that two overlapping loads cover
// every byte of one (see keyWords).
const minKeyLen, maxKeyLen = 4, 16

// schema is one record kind: its fields (required ones reported missing in
// this order) and a collision-free table from keyHash to field index.
type schema struct {
	fields   []fieldSpec
	slots    [keySlots]int8 // field index + 1; 0 is an empty slot
	strings  uint32         // bit f set: field f is a kindString
	required uint32         // bit f set: field f is required
}

func newSchema(fields []fieldSpec) schema {
	if len(fields) > maxFields {
		panic("ingest: schema has more than maxFields fields")
	}
	s := schema{fields: fields}
	for i := range fields {
		f := &fields[i]
		if len(f.name) < minKeyLen || len(f.name) > maxKeyLen {
			panic("ingest: field name length out of range: " + f.name)
		}
		f.w1, f.w2 = keyWords([]byte(f.name))
		h := keyHash(f.w2)
		if s.slots[h] != 0 {
			panic("ingest: key hash collision between " + f.name + " and " + fields[s.slots[h]-1].name)
		}
		s.slots[h] = int8(i + 1)
		if f.kind == kindString {
			s.strings |= 1 << i
		}
		if f.required {
			s.required |= 1 << i
		}
	}
	return s
}

// keyWords loads a key of 4 to 16 bytes as two words that together hold
// every byte: the first and the last eight bytes (or four, for short keys),
// overlapping when the key is shorter than twice that. Two keys of the same
// length are equal exactly when their words are.
func keyWords(k []byte) (uint64, uint64) {
	if n := len(k); n >= 8 {
		return binary.LittleEndian.Uint64(k), binary.LittleEndian.Uint64(k[n-8:])
	}
	return uint64(binary.LittleEndian.Uint32(k)), uint64(binary.LittleEndian.Uint32(k[len(k)-4:]))
}

// keyHash is a multiplicative (Fibonacci) hash of a key's last word, whose
// top bits pick the slot. newSchema proves it collision-free for every
// field name (a new name that collides fails at start-up, in every test),
// so lookup needs one probe and one comparison of two words, much cheaper
// than comparing the key with each name.
func keyHash(w2 uint64) uint {
	return uint((w2 * 0x9E3779B97F4A7C15) >> (64 - keySlotBits))
}

// lookup returns the index of the field called k, or -1 for a key this
// schema does not know.
func (s *schema) lookup(k []byte) int {
	if len(k) < minKeyLen || len(k) > maxKeyLen {
		return -1
	}
	w1, w2 := keyWords(k)
	i := int(s.slots[keyHash(w2)]) - 1
	if i < 0 {
		return -1
	}
	if f := &s.fields[i]; len(f.name) != len(k) || f.w1 != w1 || f.w2 != w2 {
		return -1
	}
	return i
}

// Field indexes of the interaction schema; the order of the first four is
// the order missing required fields are reported in.
const (
	iEventID = iota
	iType
	iCustomerID
	iOccurredAt
	iTenant
	iSegment
	iRegion
	iChannel
	iAmount
	iCurrency
	iAttributes
)

var interactionSchema = newSchema([]fieldSpec{
	iEventID:    {name: "event_id", kind: kindString, required: true},
	iType:       {name: "type", kind: kindString, required: true},
	iCustomerID: {name: "customer_id", kind: kindString, required: true},
	iOccurredAt: {name: "occurred_at", kind: kindTime, required: true},
	iTenant:     {name: "tenant", kind: kindString},
	iSegment:    {name: "segment", kind: kindString},
	iRegion:     {name: "region", kind: kindString},
	iChannel:    {name: "channel", kind: kindString},
	iAmount:     {name: "amount", kind: kindAmount},
	iCurrency:   {name: "currency", kind: kindString},
	iAttributes: {name: "attributes", kind: kindAttributes},
})

// Field indexes of the receipt schema.
const (
	rReceiptID = iota
	rMessageID
	rCustomerID
	rChannel
	rStatus
	rOccurredAt
	rAttempt
	rTenant
	rCampaignID
	rTemplateID
	rProvider
	rErrorCode
	rRecipientTZ
)

var receiptSchema = newSchema([]fieldSpec{
	rReceiptID:   {name: "receipt_id", kind: kindString, required: true},
	rMessageID:   {name: "message_id", kind: kindString, required: true},
	rCustomerID:  {name: "customer_id", kind: kindString, required: true},
	rChannel:     {name: "channel", kind: kindString, required: true},
	rStatus:      {name: "status", kind: kindString, required: true},
	rOccurredAt:  {name: "occurred_at", kind: kindTime, required: true},
	rAttempt:     {name: "attempt", kind: kindAttempt},
	rTenant:      {name: "tenant", kind: kindString},
	rCampaignID:  {name: "campaign_id", kind: kindString},
	rTemplateID:  {name: "template_id", kind: kindString},
	rProvider:    {name: "provider", kind: kindString},
	rErrorCode:   {name: "error_code", kind: kindString},
	rRecipientTZ: {name: "recipient_tz", kind: kindString},
})

// maxAttempt keeps attempt arithmetic downstream (k+1, multiplier^(k-1))
// far from overflow; no real message is sent two billion times.
const maxAttempt = math.MaxInt32

// maxDepth is encoding/json's nesting limit, so that the two agree on which
// documents are JSON.
const maxDepth = 10000

// span locates a string value inside the input (while scanning) or inside
// the record's backing string (after materialize). esc says the raw bytes
// hold escapes and must be unescaped when copied. int32 keeps the decoder,
// which lives on the stack, small; decode refuses larger inputs.
type span struct {
	start, end int32
	esc        bool
}

func (s span) len() int { return int(s.end - s.start) }

// attr is one attributes entry; null marks "key": null, which removes the
// key so that a repeated key's last value wins even when it is null.
type attr struct {
	key, val span
	null     bool
}

// inlineAttrs attributes fit in the decoder, on the stack; more spill to a
// slice. (The array cannot live outside the decoder: escape analysis does
// not tell fields apart, so a pointer to it would escape with d.when.)
const inlineAttrs = 8

// decoder holds what one record's scan found, as positions in the input, so
// that strings can be copied in one go once the record is known to be good.
type decoder struct {
	data      []byte
	schema    *schema
	present   uint32 // bit f set: field f holds a value
	null      uint32 // bit f set: field f was last seen as null
	total     int    // bytes materialize will copy, at most
	strs      [maxFields]span
	when      time.Time
	amount    float64
	attempt   int
	flag      bool // the kindBool field's value
	nattrs    int
	attrs     [inlineAttrs]attr
	moreAttrs []attr
}

// decode scans the whole record. Errors found in a value (a wrong type, a
// bad time) are only reported once the rest of the input is known to be
// JSON, so that a broken record is always not_json, as with encoding/json.
//
// The scanning functions take and return the position rather than keep it
// in a struct, so that it stays in a register (measured: an eighth fewer
// instructions per record).
func (d *decoder) decode() *RejectError {
	data := d.data
	if len(data) > math.MaxInt32 {
		return &RejectError{Reason: ReasonNotJSON, Detail: "record larger than 2 GiB"}
	}
	i := skipWS(data, 0)
	if i >= len(data) {
		return &RejectError{Reason: ReasonNotJSON, Detail: "empty input"}
	}
	if data[i] != '{' {
		if what := valueKind(data[i]); what != "" {
			return &RejectError{Reason: ReasonNotJSON, Detail: "expected a JSON object, got " + what}
		}
		return syntaxError(data, i, "looking for beginning of value")
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		i++
	} else {
		for {
			if i >= len(data) || data[i] != '"' {
				return syntaxError(data, i, "looking for beginning of object key string")
			}
			end, esc, bad := scanString(data, i)
			if bad != "" {
				return syntaxError(data, end, bad)
			}
			key := data[i+1 : end-1]
			if esc {
				key = appendUnescaped(nil, key)
			}
			i = skipWS(data, end)
			if i >= len(data) || data[i] != ':' {
				return syntaxError(data, i, "after object key")
			}
			i = skipWS(data, i+1)
			var err *RejectError
			switch f := d.schema.lookup(key); {
			case f < 0:
				i, err = skipValue(data, i, 1)
			case d.schema.strings&(1<<f) != 0 && i < len(data) && data[i] == '"':
				// The common case, inline: a string for a string field.
				end, esc, bad := scanString(data, i)
				if bad != "" {
					return syntaxError(data, end, bad)
				}
				d.strs[f] = span{start: int32(i + 1), end: int32(end - 1), esc: esc}
				d.total += end - 1 - (i + 1)
				d.present |= 1 << f
				d.null &^= 1 << f
				i = end
			default:
				i, err = d.field(f, i)
			}
			if err != nil {
				return err
			}
			i = skipWS(data, i)
			if i < len(data) {
				if data[i] == ',' {
					i = skipWS(data, i+1)
					continue
				}
				if data[i] == '}' {
					i++
					break
				}
			}
			return syntaxError(data, i, "after object key:value pair")
		}
	}
	if i = skipWS(data, i); i != len(data) {
		return syntaxError(data, i, "after top-level value")
	}

	// Required fields, in schema order: absent or null, or an empty string.
	bad := d.schema.required &^ d.present
	for m := d.schema.required & d.schema.strings & d.present; m != 0; m &= m - 1 {
		if f := bits.TrailingZeros32(m); d.strs[f].start == d.strs[f].end {
			bad |= 1 << f
		}
	}
	if bad != 0 {
		f := bits.TrailingZeros32(bad)
		err := &RejectError{Reason: ReasonMissingField, Field: d.schema.fields[f].name, Detail: "required field is empty"}
		switch {
		case d.null&(1<<f) != 0:
			err.Detail = "required field is null"
		case d.present&(1<<f) == 0:
			err.Detail = "required field is missing"
		}
		return err
	}
	// total bounds every string of the record, so a record short enough
	// (nearly all) cannot hold a value over a length limit: one comparison
	// instead of one per field, and none in the scanning loop.
	if d.total > MaxFieldLen {
		return d.checkLengths()
	}
	return nil
}

// checkLengths refuses a string field, attribute key or attribute value
// over its limit (limits.go). It looks at what the scan kept, so a value
// replaced by a later occurrence of its key does not count, as everywhere
// else in the decoder. Lengths are those after unescaping, which may bring
// a raw value back under its limit ("\u00e9" is six bytes for two).
func (d *decoder) checkLengths() *RejectError {
	for m := d.present & d.schema.strings; m != 0; m &= m - 1 {
		f := bits.TrailingZeros32(m)
		if n := d.strs[f].len(); n > MaxFieldLen {
			if n = d.unescapedLen(d.strs[f]); n > MaxFieldLen {
				return tooLong(d.schema.fields[f].name, "value", n, MaxFieldLen)
			}
		}
	}
	for i := 0; i < d.nattrs; i++ {
		a := d.attr(i)
		if n := a.key.len(); n > MaxAttributeKeyLen {
			if n = d.unescapedLen(a.key); n > MaxAttributeKeyLen {
				return tooLong("attributes", "a key", n, MaxAttributeKeyLen)
			}
		}
		if n := a.val.len(); !a.null && n > MaxAttributeValueLen {
			if n = d.unescapedLen(a.val); n > MaxAttributeValueLen {
				return tooLong("attributes."+d.attrKey(*a), "value", n, MaxAttributeValueLen)
			}
		}
	}
	return nil
}

// field decodes the value of known field f at position i and returns the
// position after it. A later occurrence of a key replaces an earlier one,
// null included.
func (d *decoder) field(f, i int) (int, *RejectError) {
	data := d.data
	spec := &d.schema.fields[f]
	c := byte(0)
	if i < len(data) {
		c = data[i]
	}
	if c == 'n' {
		end, err := literal(data, i, "null")
		if err != nil {
			return end, err
		}
		d.present &^= 1 << f
		d.null |= 1 << f
		switch spec.kind {
		case kindAmount:
			d.amount = 0
		case kindAttempt:
			d.attempt = 1
		case kindAttributes:
			d.nattrs, d.moreAttrs = 0, d.moreAttrs[:0]
		case kindTime:
			d.when = time.Time{}
		case kindBool:
			d.flag = false
		}
		return end, nil
	}
	switch spec.kind {
	case kindString:
		// A string is handled in decode; anything else is the wrong type.
		return i, d.wrongType(spec.name, "string", i)
	case kindTime:
		if c != '"' {
			return i, d.wrongType(spec.name, "string", i)
		}
		end, esc, bad := scanString(data, i)
		if bad != "" {
			return end, syntaxError(data, end, bad)
		}
		raw := data[i+1 : end-1]
		if esc {
			raw = appendUnescaped(nil, raw)
		}
		t, ok := parseTime(raw)
		if !ok {
			return end, d.deferred(&RejectError{Reason: ReasonBadTime, Field: spec.name, Detail: timeDetail(raw)})
		}
		if !TimeInRange(t) {
			return end, d.deferred(timeRangeError(spec.name, t))
		}
		d.when = t
		i = end
	case kindAmount:
		if c != '-' && !isDigit(c) {
			return i, d.wrongType(spec.name, "number", i)
		}
		end, err := scanNumber(data, i)
		if err != nil {
			return end, err
		}
		// The conversion does not allocate: ParseFloat's argument does not
		// escape and numbers are short.
		v, perr := strconv.ParseFloat(string(data[i:end]), 64)
		// The grammar is checked, so only ErrRange is left: a magnitude
		// beyond float64, which ParseFloat gives as ±Inf. JSON has no NaN
		// or Inf literal, so this is the one way a non-finite amount could
		// enter, and one Inf would make every sum it joins Inf for good.
		if perr != nil || math.IsInf(v, 0) || math.IsNaN(v) {
			return end, d.deferred(&RejectError{Reason: ReasonBadValue, Field: spec.name,
				Detail: "number " + string(data[i:end]) + " is out of range: not a finite float64"})
		}
		d.amount = v
		i = end
	case kindAttempt:
		if c != '-' && !isDigit(c) {
			return i, d.wrongType(spec.name, "number", i)
		}
		end, err := scanNumber(data, i)
		if err != nil {
			return end, err
		}
		n, ok := parseAttempt(data[i:end])
		if !ok {
			return end, d.deferred(&RejectError{Reason: ReasonBadValue, Field: spec.name,
				Detail: "expected an integer from 1 to " + strconv.Itoa(maxAttempt) + ", got " + string(data[i:end])})
		}
		d.attempt = n
		i = end
	case kindBool:
		want := "false"
		if c == 't' {
			want = "true"
		} else if c != 'f' {
			return i, d.wrongType(spec.name, "boolean", i)
		}
		end, err := literal(data, i, want)
		if err != nil {
			return end, err
		}
		d.flag = want == "true"
		i = end
	case kindAttributes:
		if c != '{' {
			return i, d.wrongType(spec.name, "object", i)
		}
		end, err := d.attributes(spec.name, i)
		if err != nil {
			return end, err
		}
		i = end
	}
	d.present |= 1 << f
	d.null &^= 1 << f
	return i, nil
}

// attributes decodes an object of string → string at position i, replacing
// any earlier attributes of this record.
func (d *decoder) attributes(field string, i int) (int, *RejectError) {
	data := d.data
	d.nattrs, d.moreAttrs = 0, d.moreAttrs[:0]
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return i, syntaxError(data, i, "looking for beginning of object key string")
		}
		end, esc, bad := scanString(data, i)
		if bad != "" {
			return end, syntaxError(data, end, bad)
		}
		// Counted here, not after the scan, so that a huge object is
		// refused before it is collected.
		if d.nattrs >= MaxAttributes {
			return i, d.deferred(&RejectError{Reason: ReasonBadValue, Field: field,
				Detail: "more than " + strconv.Itoa(MaxAttributes) + " members, over the limit"})
		}
		a := attr{key: span{start: int32(i + 1), end: int32(end - 1), esc: esc}}
		i = skipWS(data, end)
		if i >= len(data) || data[i] != ':' {
			return i, syntaxError(data, i, "after object key")
		}
		i = skipWS(data, i+1)
		switch {
		case i < len(data) && data[i] == '"':
			end, esc, bad := scanString(data, i)
			if bad != "" {
				return end, syntaxError(data, end, bad)
			}
			a.val = span{start: int32(i + 1), end: int32(end - 1), esc: esc}
			i = end
		case i < len(data) && data[i] == 'n':
			end, err := literal(data, i, "null")
			if err != nil {
				return end, err
			}
			a.null = true
			i = end
		default:
			return i, d.wrongType(field+"."+d.attrKey(a), "string", i)
		}
		if d.nattrs < inlineAttrs {
			d.attrs[d.nattrs] = a
		} else {
			d.moreAttrs = append(d.moreAttrs, a)
		}
		d.nattrs++
		d.total += a.key.len() + a.val.len()
		i = skipWS(data, i)
		if i < len(data) {
			if data[i] == ',' {
				i = skipWS(data, i+1)
				continue
			}
			if data[i] == '}' {
				return i + 1, nil
			}
		}
		return i, syntaxError(data, i, "after object key:value pair")
	}
}

// attrKey is the unescaped key of a, for messages; a is still a span of
// the input.
func (d *decoder) attrKey(a attr) string {
	name := d.data[a.key.start:a.key.end]
	if a.key.esc {
		name = appendUnescaped(nil, name)
	}
	return string(name)
}

// unescapedLen is the length of the string at sp, a span of the input,
// once unescaped. It runs only for strings over a limit.
func (d *decoder) unescapedLen(sp span) int {
	if !sp.esc {
		return sp.len()
	}
	return len(appendUnescaped(nil, d.data[sp.start:sp.end]))
}

func (d *decoder) attr(i int) *attr {
	if i < inlineAttrs {
		return &d.attrs[i]
	}
	return &d.moreAttrs[i-inlineAttrs]
}

// wrongType reports the value at position i as being of the wrong JSON
// type, or a syntax error when no value starts there.
func (d *decoder) wrongType(field, want string, i int) *RejectError {
	got := ""
	if i < len(d.data) {
		got = valueKind(d.data[i])
	}
	if got == "" {
		return syntaxError(d.data, i, "looking for beginning of value")
	}
	return d.deferred(&RejectError{Reason: ReasonWrongType, Field: field, Detail: "expected " + want + ", got " + got})
}

// deferred returns err unless the input as a whole is not JSON, in which
// case that is the better reason: a record cut in half should be counted as
// not_json even if its first field happens to have the wrong type.
func (d *decoder) deferred(err *RejectError) *RejectError {
	if serr := document(d.data); serr != nil {
		return serr
	}
	return err
}

// materialize copies every string the record keeps into one new string and
// repoints the spans at it: one allocation per record instead of one per
// field.
func (d *decoder) materialize() string {
	if d.total == 0 {
		return ""
	}
	// total counts raw bytes, and unescaping never lengthens a string.
	buf := make([]byte, 0, d.total)
	for m := d.present & d.schema.strings; m != 0; m &= m - 1 {
		buf = d.copySpan(buf, &d.strs[bits.TrailingZeros32(m)])
	}
	for i := 0; i < d.nattrs; i++ {
		a := d.attr(i)
		buf = d.copySpan(buf, &a.key)
		if !a.null {
			buf = d.copySpan(buf, &a.val)
		}
	}
	// buf is never written again and nothing else refers to it, so the
	// string may share its memory; this is what strings.Builder does.
	return unsafe.String(unsafe.SliceData(buf), len(buf))
}

// copySpan appends the string at *sp (unescaping it) and repoints *sp at
// where it landed in buf.
func (d *decoder) copySpan(buf []byte, sp *span) []byte {
	start := len(buf)
	raw := d.data[sp.start:sp.end]
	if sp.esc {
		buf = appendUnescaped(buf, raw)
	} else {
		buf = append(buf, raw...)
	}
	sp.start, sp.end = int32(start), int32(len(buf))
	return buf
}

// str returns string field f after materialize; "" when absent or null.
func (d *decoder) str(backing string, f int) string {
	sp := d.strs[f]
	if d.present&(1<<f) == 0 || sp.start == sp.end {
		// An empty string must not point into backing and keep it alive.
		return ""
	}
	return backing[sp.start:sp.end]
}

// strOr is str with a default for absent, null and empty values.
func (d *decoder) strOr(backing string, f int, def string) string {
	if v := d.str(backing, f); v != "" {
		return v
	}
	return def
}

// attributeMap builds the attributes after materialize. An empty object
// gives nil, like an absent one: the two mean the same, and nil survives a
// round trip through encoding/json's omitempty.
func (d *decoder) attributeMap(backing string) map[string]string {
	if d.nattrs == 0 {
		return nil
	}
	m := make(map[string]string, d.nattrs)
	for i := 0; i < d.nattrs; i++ {
		a := d.attr(i)
		k := backing[a.key.start:a.key.end]
		if a.null {
			delete(m, k)
			continue
		}
		m[k] = backing[a.val.start:a.val.end]
	}
	if len(m) == 0 {
		return nil
	}
	return m
}

// parseAttempt accepts a JSON integer in [1, maxAttempt]; num is known to
// match the JSON number grammar.
func parseAttempt(num []byte) (int, bool) {
	n := 0
	for _, c := range num {
		if !isDigit(c) { // '-', '.', 'e': negative, fractional or exponent
			return 0, false
		}
		n = n*10 + int(c-'0')
		if n > maxAttempt {
			return 0, false
		}
	}
	return n, n >= 1
}

// The JSON syntax functions below take the input and a position, validate
// what starts there, and return the position just past it (or, with an
// error, where the error is).

func skipWS(data []byte, i int) int {
	for i < len(data) {
		// Between tokens there is usually no space at all: one comparison
		// settles the common case.
		if c := data[i]; c > ' ' || (c != ' ' && c != '\n' && c != '\t' && c != '\r') {
			return i
		}
		i++
	}
	return i
}

// document checks that the whole input is one JSON object.
func document(data []byte) *RejectError {
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return syntaxError(data, i, "looking for beginning of value")
	}
	i, err := skipValue(data, i, 0)
	if err != nil {
		return err
	}
	if i = skipWS(data, i); i != len(data) {
		return syntaxError(data, i, "after top-level value")
	}
	return nil
}

// skipValue validates and steps over one value found at nesting depth.
func skipValue(data []byte, i, depth int) (int, *RejectError) {
	if i >= len(data) {
		return i, syntaxError(data, i, "looking for beginning of value")
	}
	switch c := data[i]; c {
	case '"':
		end, _, bad := scanString(data, i)
		if bad != "" {
			return end, syntaxError(data, end, bad)
		}
		return end, nil
	case '{':
		return skipObject(data, i, depth+1)
	case '[':
		return skipArray(data, i, depth+1)
	case 't':
		return literal(data, i, "true")
	case 'f':
		return literal(data, i, "false")
	case 'n':
		return literal(data, i, "null")
	default:
		if c == '-' || isDigit(c) {
			return scanNumber(data, i)
		}
		return i, syntaxError(data, i, "looking for beginning of value")
	}
}

func skipObject(data []byte, i, depth int) (int, *RejectError) {
	if depth > maxDepth {
		return i, &RejectError{Reason: ReasonNotJSON, Detail: "exceeded max nesting depth"}
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, nil
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return i, syntaxError(data, i, "looking for beginning of object key string")
		}
		end, _, bad := scanString(data, i)
		if bad != "" {
			return end, syntaxError(data, end, bad)
		}
		i = skipWS(data, end)
		if i >= len(data) || data[i] != ':' {
			return i, syntaxError(data, i, "after object key")
		}
		var err *RejectError
		if i, err = skipValue(data, skipWS(data, i+1), depth); err != nil {
			return i, err
		}
		i = skipWS(data, i)
		if i < len(data) {
			if data[i] == ',' {
				i = skipWS(data, i+1)
				continue
			}
			if data[i] == '}' {
				return i + 1, nil
			}
		}
		return i, syntaxError(data, i, "after object key:value pair")
	}
}

func skipArray(data []byte, i, depth int) (int, *RejectError) {
	if depth > maxDepth {
		return i, &RejectError{Reason: ReasonNotJSON, Detail: "exceeded max nesting depth"}
	}
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == ']' {
		return i + 1, nil
	}
	for {
		var err *RejectError
		if i, err = skipValue(data, i, depth); err != nil {
			return i, err
		}
		i = skipWS(data, i)
		if i < len(data) {
			if data[i] == ',' {
				i = skipWS(data, i+1)
				continue
			}
			if data[i] == ']' {
				return i + 1, nil
			}
		}
		return i, syntaxError(data, i, "after array element")
	}
}

// literal consumes want (true, false or null) at position i.
func literal(data []byte, i int, want string) (int, *RejectError) {
	end := i + len(want)
	if end <= len(data) && string(data[i:end]) == want {
		return end, nil
	}
	// Point at the first byte that differs, for the message.
	for j := 0; j < len(want) && i < len(data) && data[i] == want[j]; j++ {
		i++
	}
	return i, syntaxError(data, i, "in literal "+want)
}

// scanNumber consumes a number in JSON's grammar at position i:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func scanNumber(data []byte, i int) (int, *RejectError) {
	if i < len(data) && data[i] == '-' {
		i++
	}
	switch {
	case i < len(data) && data[i] == '0':
		i++
	case i < len(data) && data[i] >= '1' && data[i] <= '9':
		for i++; i < len(data) && isDigit(data[i]); i++ {
		}
	default:
		return i, syntaxError(data, i, "in numeric literal")
	}
	if i < len(data) && data[i] == '.' {
		i++
		if i >= len(data) || !isDigit(data[i]) {
			return i, syntaxError(data, i, "after decimal point in numeric literal")
		}
		for ; i < len(data) && isDigit(data[i]); i++ {
		}
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		if i >= len(data) || !isDigit(data[i]) {
			return i, syntaxError(data, i, "in exponent of numeric literal")
		}
		for ; i < len(data) && isDigit(data[i]); i++ {
		}
	}
	return i, nil
}

// scanString consumes the string whose opening quote is at position i. It
// returns the position after the closing quote and whether the contents
// hold escapes; or, when bad is not empty, the position of the error and
// what it is. Escapes are validated here so that unescaping later cannot
// fail.
func scanString(data []byte, i int) (end int, esc bool, bad string) {
	i++
	for {
		// Strings are most of the input. Where eight bytes can be read,
		// test them at once and jump straight to the first special one
		// (quote, backslash or control character); reading past the
		// closing quote is harmless, it is still inside data.
		if i+8 <= len(data) {
			m := specialBytes(binary.LittleEndian.Uint64(data[i:]))
			if m == 0 {
				i += 8
				continue
			}
			i += bits.TrailingZeros64(m) >> 3
		} else {
			for i < len(data) && plain[data[i]] {
				i++
			}
			if i >= len(data) {
				return i, esc, "in string literal"
			}
		}
		switch c := data[i]; {
		case c == '"':
			return i + 1, esc, ""
		case c == '\\':
			esc = true
			if i+1 >= len(data) {
				return i + 1, esc, "in string escape code"
			}
			switch data[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for j := i + 2; j < i+6; j++ {
					if j >= len(data) || !isHex(data[j]) {
						return j, esc, "in \\u hexadecimal character escape"
					}
				}
				i += 6
			default:
				return i + 1, esc, "in string escape code"
			}
		default:
			return i, esc, "in string literal"
		}
	}
}

// specialBytes has the high bit set in each byte of w (little-endian) that
// may be a quote, a backslash or a control character. It combines the
// "has a byte less than n" bit trick (Stanford bithacks) three times. The
// trick can flag a byte above a special one by borrowing from it, but never
// one below, so the lowest set bit always marks the first special byte.
func specialBytes(w uint64) uint64 {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	quote := w ^ (ones * '"')
	backslash := w ^ (ones * '\\')
	return ((w-ones*0x20)&^w |
		(quote-ones)&^quote |
		(backslash-ones)&^backslash) & highs
}

// plain marks the bytes that stand for themselves inside a JSON string.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

func isHex(c byte) bool {
	return isDigit(c) || (c|0x20)-'a' <= 'f'-'a'
}

func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case isDigit(c):
			c -= '0'
		case c|0x20 >= 'a':
			c = c | 0x20 - 'a' + 10
		}
		r = r<<4 | rune(c)
	}
	return r
}

// appendUnescaped appends the contents of a string literal, whose escapes
// scanString has validated, with its escapes decoded as encoding/json
// decodes them: a \u surrogate pair is one rune, a lone surrogate U+FFFD.
func appendUnescaped(dst, src []byte) []byte {
	for i := 0; i < len(src); {
		if src[i] != '\\' {
			j := i + 1
			for j < len(src) && src[j] != '\\' {
				j++
			}
			dst = append(dst, src[i:j]...)
			i = j
			continue
		}
		switch e := src[i+1]; e {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(src[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(src) && src[i] == '\\' && src[i+1] == 'u' {
					if dec := utf16.DecodeRune(r, hex4(src[i+2:])); dec != utf8.RuneError {
						dst = utf8.AppendRune(dst, dec)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
			continue
		default: // '"', '\\', '/'
			dst = append(dst, e)
		}
		i += 2
	}
	return dst
}

// valueKind names the JSON type a value starting with c has, or "" if no
// value starts with c.
func valueKind(c byte) string {
	switch {
	case c == '"':
		return "string"
	case c == '{':
		return "object"
	case c == '[':
		return "array"
	case c == 't' || c == 'f':
		return "boolean"
	case c == 'n':
		return "null"
	case c == '-' || isDigit(c):
		return "number"
	}
	return ""
}

// syntaxError is a not_json rejection at position i, worded like
// encoding/json's.
func syntaxError(data []byte, i int, context string) *RejectError {
	if i >= len(data) {
		return &RejectError{Reason: ReasonNotJSON, Detail: "unexpected end of JSON input"}
	}
	return &RejectError{Reason: ReasonNotJSON,
		Detail: fmt.Sprintf("invalid character %s %s (offset %d)", quoteChar(data[i]), context, i)}
}

func quoteChar(c byte) string {
	switch {
	case c == '\'':
		return `'\''`
	case c == '"':
		return `'"'`
	case c < utf8.RuneSelf && strconv.IsPrint(rune(c)):
		return "'" + string(rune(c)) + "'"
	}
	return fmt.Sprintf("%#02x", c)
}
