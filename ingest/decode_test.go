package ingest

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

func mustTime(t *testing.T, s string) time.Time {
	t.Helper()
	tm, err := time.Parse(time.RFC3339Nano, s)
	require.NoError(t, err)
	return tm.UTC()
}

// minimalInteraction is the smallest valid interaction; tests add to it.
const minimalInteraction = `"event_id":"e1","type":"purchase","customer_id":"c1","occurred_at":"2026-11-22T09:00:00+08:00"`

const minimalReceipt = `"receipt_id":"r1","message_id":"m1","customer_id":"c1","channel":"sms","status":"sent","occurred_at":"2026-11-22T09:00:00Z"`

func TestDecodeInteraction(t *testing.T) {
	base := Interaction{
		EventID: "e1", Type: "purchase", CustomerID: "c1",
		OccurredAt: mustTime(t, "2026-11-22T01:00:00Z"),
		Tenant:     DefaultTenant, Segment: UnknownDim, Region: UnknownDim, Channel: UnknownDim,
	}
	with := func(f func(*Interaction)) Interaction {
		ev := base
		f(&ev)
		return ev
	}
	tests := []struct {
		name string
		in   string
		want Interaction
	}{
		{name: "minimal gets defaults", in: `{` + minimalInteraction + `}`, want: base},
		{
			name: "every field",
			in: `{"event_id":"e2","type":"refund","customer_id":"c2","occurred_at":"2026-01-02T03:04:05.123456789Z",
				"tenant":"acme","segment":"gold","region":"apac","channel":"web","amount":-12.5,"currency":"EUR",
				"attributes":{"ticket_id":"t-9","complaint_type":"billing"}}`,
			want: Interaction{
				EventID: "e2", Type: "refund", CustomerID: "c2",
				OccurredAt: time.Date(2026, 1, 2, 3, 4, 5, 123456789, time.UTC),
				Tenant:     "acme", Segment: "gold", Region: "apac", Channel: "web",
				Amount: -12.5, Currency: "EUR",
				Attributes: map[string]string{"ticket_id": "t-9", "complaint_type": "billing"},
			},
		},
		{
			name: "null optional fields are absent",
			in:   `{` + minimalInteraction + `,"tenant":null,"segment":null,"region":null,"channel":null,"amount":null,"currency":null,"attributes":null}`,
			want: base,
		},
		{
			name: "empty defaulted strings take the default",
			in:   `{` + minimalInteraction + `,"tenant":"","segment":"","region":"","channel":"","currency":""}`,
			want: base,
		},
		{
			name: "unknown fields of every kind are skipped",
			in: `{"zz":{"a":[1,2.5e-3,{"b":null}],"c":"\"}"},` + minimalInteraction +
				`,"future":[],"flag":true,"off":false,"nothing":null,"n":-0.0E+2,"s":"x"}`,
			want: base,
		},
		{
			name: "whitespace everywhere",
			in:   " \t\r\n{ \"event_id\" : \"e1\" ,\n\"type\":\"purchase\",\"customer_id\":\"c1\",\"occurred_at\":\"2026-11-22T09:00:00+08:00\" , \"attributes\" : { \"k\" : \"v\" , \"x\":\"y\" } }\n ",
			want: with(func(ev *Interaction) { ev.Attributes = map[string]string{"k": "v", "x": "y"} }),
		},
		{
			name: "empty attributes are nil",
			in:   `{` + minimalInteraction + `,"attributes":{}}`,
			want: base,
		},
		{
			name: "null attribute value is absent",
			in:   `{` + minimalInteraction + `,"attributes":{"a":"1","b":null}}`,
			want: with(func(ev *Interaction) { ev.Attributes = map[string]string{"a": "1"} }),
		},
		{
			name: "many attributes spill past the inline array",
			in:   `{` + minimalInteraction + `,"attributes":{"a":"1","b":"2","c":"3","d":"4","e":"5","f":"6","g":"7","h":"8","i":"9","j":"10"}}`,
			want: with(func(ev *Interaction) {
				ev.Attributes = map[string]string{"a": "1", "b": "2", "c": "3", "d": "4", "e": "5", "f": "6", "g": "7", "h": "8", "i": "9", "j": "10"}
			}),
		},
		{
			name: "duplicate keys: last wins",
			in:   `{` + minimalInteraction + `,"type":"refund","amount":5,"amount":7,"tenant":"a","tenant":"b"}`,
			want: with(func(ev *Interaction) { ev.Type, ev.Amount, ev.Tenant = "refund", 7, "b" }),
		},
		{
			name: "duplicate key: a later null wins",
			in:   `{` + minimalInteraction + `,"amount":5,"amount":null,"attributes":{"a":"1"},"attributes":null}`,
			want: base,
		},
		{
			name: "duplicate attributes object replaces, not merges",
			in:   `{` + minimalInteraction + `,"attributes":{"a":"1"},"attributes":{"b":"2"}}`,
			want: with(func(ev *Interaction) { ev.Attributes = map[string]string{"b": "2"} }),
		},
		{
			name: "duplicate attribute key, last null removes it",
			in:   `{` + minimalInteraction + `,"attributes":{"a":"1","b":"2","a":null}}`,
			want: with(func(ev *Interaction) { ev.Attributes = map[string]string{"b": "2"} }),
		},
		{
			name: "duplicate required field: earlier null, later value",
			in:   `{"event_id":null,` + minimalInteraction + `}`,
			want: base,
		},
		{
			name: "escapes in values and keys",
			in: `{"event_id":"a\"b\\c\/d\be\ff\ng\rh\ti","type":"\u0070urchase","customer_id":"caf\u00e9 \u4e2d \ud83d\ude00",` +
				`"occurred_at":"2026-11-22T09:00:00+08:00","t\u0065nant":"x","attributes":{"k\u00e9y":"line1\nline2","lone":"\ud800x","pair-split":"\ud83d\u0041"}}`,
			want: with(func(ev *Interaction) {
				ev.EventID = "a\"b\\c/d\be\ff\ng\rh\ti"
				ev.Type = "purchase"
				ev.CustomerID = "café 中 😀"
				ev.Tenant = "x"
				ev.Attributes = map[string]string{"kéy": "line1\nline2", "lone": "\uFFFDx", "pair-split": "\uFFFDA"}
			}),
		},
		{
			name: "raw UTF-8 and invalid UTF-8 are kept",
			in:   "{" + minimalInteraction + ",\"currency\":\"\xff\xfe\",\"segment\":\"金\"}",
			want: with(func(ev *Interaction) { ev.Currency, ev.Segment = "\xff\xfe", "金" }),
		},
		{
			name: "amount forms",
			in:   `{` + minimalInteraction + `,"amount":1.5e3}`,
			want: with(func(ev *Interaction) { ev.Amount = 1500 }),
		},
		{
			name: "tiny amount underflows to zero like encoding/json",
			in:   `{` + minimalInteraction + `,"amount":1e-400}`,
			want: base,
		},
		{
			name: "time: fraction past nanoseconds is truncated, offset applied",
			in:   `{"event_id":"e1","type":"purchase","customer_id":"c1","occurred_at":"2026-03-01T00:30:00.1234567891-01:30"}`,
			want: with(func(ev *Interaction) { ev.OccurredAt = time.Date(2026, 3, 1, 2, 0, 0, 123456789, time.UTC) }),
		},
		{
			name: "time: leap day",
			in:   `{"event_id":"e1","type":"purchase","customer_id":"c1","occurred_at":"2024-02-29T23:59:59Z"}`,
			want: with(func(ev *Interaction) { ev.OccurredAt = time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC) }),
		},
		{
			name: "time: escaped characters",
			in:   `{"event_id":"e1","type":"purchase","customer_id":"c1","occurred_at":"2024-02-29T23:59:59\u005a"}`,
			want: with(func(ev *Interaction) { ev.OccurredAt = time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC) }),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ev Interaction
			require.NoError(t, DecodeInteraction([]byte(tt.in), &ev))
			require.Equal(t, tt.want, ev)
			require.Equal(t, time.UTC, ev.OccurredAt.Location())
		})
	}
}

func TestDecodeReceipt(t *testing.T) {
	base := Receipt{
		ReceiptID: "r1", MessageID: "m1", CustomerID: "c1", Channel: "sms", Status: "sent",
		OccurredAt: mustTime(t, "2026-11-22T09:00:00Z"), Attempt: 1, Tenant: DefaultTenant,
	}
	with := func(f func(*Receipt)) Receipt {
		r := base
		f(&r)
		return r
	}
	tests := []struct {
		name string
		in   string
		want Receipt
	}{
		{name: "minimal gets defaults", in: `{` + minimalReceipt + `}`, want: base},
		{
			name: "every field",
			in: `{"receipt_id":"r2","message_id":"m2","customer_id":"c2","channel":"email","status":"soft_bounce",
				"occurred_at":"2026-11-22T22:30:00.5-05:00","attempt":3,"tenant":"acme","campaign_id":"bf","template_id":"t1",
				"provider":"ses","error_code":"421","recipient_tz":"America/New_York"}`,
			want: Receipt{
				ReceiptID: "r2", MessageID: "m2", CustomerID: "c2", Channel: "email", Status: "soft_bounce",
				OccurredAt: time.Date(2026, 11, 23, 3, 30, 0, 5e8, time.UTC), Attempt: 3, Tenant: "acme",
				CampaignID: "bf", TemplateID: "t1", Provider: "ses", ErrorCode: "421", RecipientTZ: "America/New_York",
			},
		},
		{
			name: "nulls are absent",
			in:   `{` + minimalReceipt + `,"attempt":null,"tenant":null,"campaign_id":null,"template_id":null,"provider":null,"error_code":null,"recipient_tz":null}`,
			want: base,
		},
		{
			name: "empty recipient_tz is absent",
			in:   `{` + minimalReceipt + `,"recipient_tz":""}`,
			want: base,
		},
		{
			name: "UTC is a zone",
			in:   `{` + minimalReceipt + `,"recipient_tz":"UTC"}`,
			want: with(func(r *Receipt) { r.RecipientTZ = "UTC" }),
		},
		{
			name: "large attempt",
			in:   `{` + minimalReceipt + `,"attempt":2147483647}`,
			want: with(func(r *Receipt) { r.Attempt = 2147483647 }),
		},
		{
			name: "interaction fields are unknown here",
			in:   `{` + minimalReceipt + `,"amount":"not checked","attributes":[1]}`,
			want: base,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var r Receipt
			require.NoError(t, DecodeReceipt([]byte(tt.in), &r))
			require.Equal(t, tt.want, r)
		})
	}
}

type rejectCase struct {
	name   string
	in     string
	reason Reason
	field  string
	detail string // a substring of the detail
}

// Every reason, with the field it names, for both kinds.
var interactionRejects = []rejectCase{
	{"empty input", ``, ReasonNotJSON, "", "empty input"},
	{"blank input", " \n", ReasonNotJSON, "", "empty input"},
	{"array", `[1]`, ReasonNotJSON, "", "expected a JSON object, got array"},
	{"string", `"x"`, ReasonNotJSON, "", "got string"},
	{"null", `null`, ReasonNotJSON, "", "got null"},
	{"garbage", `hello`, ReasonNotJSON, "", "invalid character 'h'"},
	{"truncated", `{"event_id":"e1","ty`, ReasonNotJSON, "", "unexpected end of JSON input"},
	{"trailing garbage", `{` + minimalInteraction + `}x`, ReasonNotJSON, "", "after top-level value"},
	{"two objects", `{` + minimalInteraction + `} {}`, ReasonNotJSON, "", "after top-level value"},
	{"trailing comma", `{` + minimalInteraction + `,}`, ReasonNotJSON, "", "beginning of object key"},
	{"single quotes", `{'event_id':'e1'}`, ReasonNotJSON, "", "invalid character '\\''"},
	{"bad escape", `{` + minimalInteraction + `,"x":"\q"}`, ReasonNotJSON, "", "escape"},
	{"short unicode escape", `{` + minimalInteraction + `,"x":"\u12"}`, ReasonNotJSON, "", "hexadecimal"},
	{"control character in string", "{" + minimalInteraction + ",\"x\":\"a\tb\"}", ReasonNotJSON, "", "in string literal"},
	{"leading zero", `{` + minimalInteraction + `,"amount":01}`, ReasonNotJSON, "", ""},
	{"bare decimal point", `{` + minimalInteraction + `,"amount":1.}`, ReasonNotJSON, "", "decimal point"},
	{"bad literal", `{` + minimalInteraction + `,"x":nul}`, ReasonNotJSON, "", "literal null"},
	{"unbalanced nesting", `{` + minimalInteraction + `,"x":[{]}}`, ReasonNotJSON, "", ""},
	{"BOM", "\xef\xbb\xbf{" + minimalInteraction + "}", ReasonNotJSON, "", ""},
	{"wrong type hidden by broken JSON", `{"event_id":5,"type":"x"`, ReasonNotJSON, "", ""},
	{"bad time hidden by broken JSON", `{"occurred_at":"yesterday",]`, ReasonNotJSON, "", ""},

	{"missing event_id", `{"type":"purchase","customer_id":"c1","occurred_at":"2026-11-22T09:00:00Z"}`, ReasonMissingField, "event_id", "required field is missing"},
	{"missing type", `{"event_id":"e1","customer_id":"c1","occurred_at":"2026-11-22T09:00:00Z"}`, ReasonMissingField, "type", "required field is missing"},
	{"missing customer_id", `{"event_id":"e1","type":"purchase","occurred_at":"2026-11-22T09:00:00Z"}`, ReasonMissingField, "customer_id", "required field is missing"},
	{"missing occurred_at", `{"event_id":"e1","type":"purchase","customer_id":"c1"}`, ReasonMissingField, "occurred_at", "required field is missing"},
	{"empty object", `{}`, ReasonMissingField, "event_id", "required field is missing"},
	{"empty event_id", `{` + minimalInteraction + `,"event_id":""}`, ReasonMissingField, "event_id", "required field is empty"},
	{"null customer_id", `{` + minimalInteraction + `,"customer_id":null}`, ReasonMissingField, "customer_id", "required field is null"},
	{"null occurred_at", `{` + minimalInteraction + `,"occurred_at":null}`, ReasonMissingField, "occurred_at", "required field is null"},
	{"key differs in case", `{"EVENT_ID":"e1","type":"purchase","customer_id":"c1","occurred_at":"2026-11-22T09:00:00Z"}`, ReasonMissingField, "event_id", "missing"},

	{"event_id number", `{` + minimalInteraction + `,"event_id":5}`, ReasonWrongType, "event_id", "expected string, got number"},
	{"type object", `{` + minimalInteraction + `,"type":{}}`, ReasonWrongType, "type", "expected string, got object"},
	{"customer_id array", `{` + minimalInteraction + `,"customer_id":["c"]}`, ReasonWrongType, "customer_id", "expected string, got array"},
	{"tenant boolean", `{` + minimalInteraction + `,"tenant":true}`, ReasonWrongType, "tenant", "expected string, got boolean"},
	{"occurred_at number", `{` + minimalInteraction + `,"occurred_at":1700000000}`, ReasonWrongType, "occurred_at", "expected string, got number"},
	{"amount string", `{` + minimalInteraction + `,"amount":"12.5"}`, ReasonWrongType, "amount", "expected number, got string"},
	{"amount boolean", `{` + minimalInteraction + `,"amount":false}`, ReasonWrongType, "amount", "expected number, got boolean"},
	{"attributes array", `{` + minimalInteraction + `,"attributes":["a"]}`, ReasonWrongType, "attributes", "expected object, got array"},
	{"attributes string", `{` + minimalInteraction + `,"attributes":"a=b"}`, ReasonWrongType, "attributes", "expected object, got string"},
	{"attribute number", `{` + minimalInteraction + `,"attributes":{"ok":"1","ticket_id":42}}`, ReasonWrongType, "attributes.ticket_id", "expected string, got number"},
	{"attribute object, escaped key", `{` + minimalInteraction + `,"attributes":{"k\u00e9y":{}}}`, ReasonWrongType, "attributes.kéy", "got object"},
	{"first wrong type wins", `{` + minimalInteraction + `,"segment":1,"region":2}`, ReasonWrongType, "segment", ""},

	{"month out of range", `{` + minimalInteraction + `,"occurred_at":"2026-13-01T00:00:00Z"}`, ReasonBadTime, "occurred_at", `parsing time "2026-13-01T00:00:00Z": month out of range`},
	{"date only", `{` + minimalInteraction + `,"occurred_at":"2026-12-01"}`, ReasonBadTime, "occurred_at", `parsing time "2026-12-01"`},
	{"no zone", `{` + minimalInteraction + `,"occurred_at":"2026-11-22T09:00:00"}`, ReasonBadTime, "occurred_at", `parsing time "2026-11-22T09:00:00"`},
	{"day out of range", `{` + minimalInteraction + `,"occurred_at":"2025-02-29T09:00:00Z"}`, ReasonBadTime, "occurred_at", "day out of range"},
	{"hour out of range", `{` + minimalInteraction + `,"occurred_at":"2025-02-28T24:00:00Z"}`, ReasonBadTime, "occurred_at", "hour out of range"},
	{"leap second", `{` + minimalInteraction + `,"occurred_at":"2016-12-31T23:59:60Z"}`, ReasonBadTime, "occurred_at", "second out of range"},
	{"lower-case z", `{` + minimalInteraction + `,"occurred_at":"2026-11-22T09:00:00z"}`, ReasonBadTime, "occurred_at", ""},
	{"space for T", `{` + minimalInteraction + `,"occurred_at":"2026-11-22 09:00:00Z"}`, ReasonBadTime, "occurred_at", ""},
	{"zone hour 24", `{` + minimalInteraction + `,"occurred_at":"2026-11-22T09:00:00+24:00"}`, ReasonBadTime, "occurred_at", "not RFC 3339"},
	{"zone without colon", `{` + minimalInteraction + `,"occurred_at":"2026-11-22T09:00:00+0800"}`, ReasonBadTime, "occurred_at", ""},
	{"comma fraction", `{` + minimalInteraction + `,"occurred_at":"2026-11-22T09:00:00,5Z"}`, ReasonBadTime, "occurred_at", ""},
	{"empty time", `{` + minimalInteraction + `,"occurred_at":""}`, ReasonBadTime, "occurred_at", ""},
	{"year -1 in UTC", `{` + minimalInteraction + `,"occurred_at":"0000-01-01T00:00:00+01:00"}`, ReasonBadTime, "occurred_at", "outside 0000-9999"},
	{"year 10000 in UTC", `{` + minimalInteraction + `,"occurred_at":"9999-12-31T23:59:59-00:01"}`, ReasonBadTime, "occurred_at", "outside 0000-9999"},

	{"amount out of range", `{` + minimalInteraction + `,"amount":1e400}`, ReasonBadValue, "amount", "out of range"},
	{"negative amount out of range", `{` + minimalInteraction + `,"amount":-1e309}`, ReasonBadValue, "amount", "not a finite float64"},
	{"amount just past the largest float64", `{` + minimalInteraction + `,"amount":1.8e308}`, ReasonBadValue, "amount", "not a finite float64"},

	// The supported time range, [1970-01-01T00:00:00Z, 2200-01-01T00:00:00Z).
	{"one ns before 1970", `{` + minimalInteraction + `,"occurred_at":"1969-12-31T23:59:59.999999999Z"}`, ReasonBadTime, "occurred_at", "outside the supported range 1970-01-01T00:00:00Z to 2200-01-01T00:00:00Z"},
	{"before 1970 by its offset", `{` + minimalInteraction + `,"occurred_at":"1970-01-01T00:30:00+01:00"}`, ReasonBadTime, "occurred_at", "1969-12-31T23:30:00Z is outside"},
	{"year 1", `{` + minimalInteraction + `,"occurred_at":"0001-01-01T00:00:00Z"}`, ReasonBadTime, "occurred_at", "outside the supported range"},
	{"2200 exactly", `{` + minimalInteraction + `,"occurred_at":"2200-01-01T00:00:00Z"}`, ReasonBadTime, "occurred_at", "2200-01-01T00:00:00Z is outside"},
	{"2200 by its offset", `{` + minimalInteraction + `,"occurred_at":"2199-12-31T23:00:00-01:00"}`, ReasonBadTime, "occurred_at", "outside"},
	{"past int64 nanoseconds", `{` + minimalInteraction + `,"occurred_at":"2300-01-01T00:00:00Z"}`, ReasonBadTime, "occurred_at", "outside"},
	{"year 9999", `{` + minimalInteraction + `,"occurred_at":"9999-12-31T23:59:59Z"}`, ReasonBadTime, "occurred_at", "outside"},
	{"out of range hidden by broken JSON", `{"occurred_at":"2300-01-01T00:00:00Z",]`, ReasonNotJSON, "", ""},

	// Length limits: one byte over each (the exact limits are accepted in
	// TestDecodeAtTheLimits).
	{"event_id over the limit", `{` + minimalInteraction + `,"event_id":"` + strings.Repeat("e", MaxFieldLen+1) + `"}`, ReasonBadValue, "event_id", "value is 1025 bytes long, over the limit of 1024 bytes"},
	{"type over the limit", `{` + minimalInteraction + `,"type":"` + strings.Repeat("t", MaxFieldLen+1) + `"}`, ReasonBadValue, "type", "limit of 1024 bytes"},
	{"customer_id over the limit", `{` + minimalInteraction + `,"customer_id":"` + strings.Repeat("c", MaxFieldLen+1) + `"}`, ReasonBadValue, "customer_id", "limit of 1024 bytes"},
	{"tenant over the limit", `{` + minimalInteraction + `,"tenant":"` + strings.Repeat("t", MaxFieldLen+1) + `"}`, ReasonBadValue, "tenant", "limit of 1024 bytes"},
	{"segment over the limit", `{` + minimalInteraction + `,"segment":"` + strings.Repeat("s", MaxFieldLen+1) + `"}`, ReasonBadValue, "segment", "limit of 1024 bytes"},
	{"region over the limit", `{` + minimalInteraction + `,"region":"` + strings.Repeat("r", MaxFieldLen+1) + `"}`, ReasonBadValue, "region", "limit of 1024 bytes"},
	{"channel over the limit", `{` + minimalInteraction + `,"channel":"` + strings.Repeat("c", MaxFieldLen+1) + `"}`, ReasonBadValue, "channel", "limit of 1024 bytes"},
	{"currency over the limit", `{` + minimalInteraction + `,"currency":"` + strings.Repeat("U", MaxFieldLen+1) + `"}`, ReasonBadValue, "currency", "limit of 1024 bytes"},
	{"escaped value over the limit once unescaped", `{` + minimalInteraction + `,"customer_id":"` + strings.Repeat(`\u00e9`, MaxFieldLen/2) + `x"}`, ReasonBadValue, "customer_id", "value is 1025 bytes long"},
	{"64 KiB customer_id", `{` + minimalInteraction + `,"customer_id":"` + strings.Repeat("c", 1<<16+1) + `"}`, ReasonBadValue, "customer_id", "65537 bytes long"},
	{"replaced by a value over the limit", `{` + minimalInteraction + `,"event_id":"e1","event_id":"` + strings.Repeat("e", MaxFieldLen+1) + `"}`, ReasonBadValue, "event_id", "limit"},
	{"attributes replaced by an object with a value over the limit", `{` + minimalInteraction + `,"attributes":{"a":"1"},"attributes":{"a":"` + strings.Repeat("v", MaxAttributeValueLen+1) + `"}}`, ReasonBadValue, "attributes.a", "limit of 4096"},
	{"attribute key over the limit", `{` + minimalInteraction + `,"attributes":{"` + strings.Repeat("k", MaxAttributeKeyLen+1) + `":"v"}}`, ReasonBadValue, "attributes", "a key is 1025 bytes long, over the limit of 1024 bytes"},
	{"attribute key over the limit with a null value", `{` + minimalInteraction + `,"attributes":{"` + strings.Repeat("k", MaxAttributeKeyLen+1) + `":null}}`, ReasonBadValue, "attributes", "a key is 1025 bytes"},
	{"attribute value over the limit", `{` + minimalInteraction + `,"attributes":{"note":"` + strings.Repeat("v", MaxAttributeValueLen+1) + `"}}`, ReasonBadValue, "attributes.note", "value is 4097 bytes long, over the limit of 4096 bytes"},
	{"escaped attribute value over the limit once unescaped", `{` + minimalInteraction + `,"attributes":{"n\u00f6te":"` + strings.Repeat(`\n`, MaxAttributeValueLen+1) + `"}}`, ReasonBadValue, "attributes.nöte", "value is 4097 bytes"},
	{"too many attributes", `{` + minimalInteraction + `,"attributes":` + attributesObject(MaxAttributes+1) + `}`, ReasonBadValue, "attributes", "more than 64 members"},
	{"length hidden by broken JSON", `{"event_id":"` + strings.Repeat("e", MaxFieldLen+1) + `",]`, ReasonNotJSON, "", ""},
}

// attributesObject is an attributes object with n distinct members.
func attributesObject(n int) string {
	var b strings.Builder
	b.WriteByte('{')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		fmt.Fprintf(&b, `"a%d":"%d"`, i, i)
	}
	b.WriteByte('}')
	return b.String()
}

var receiptRejects = []rejectCase{
	{"not an object", `5`, ReasonNotJSON, "", "got number"},
	{"truncated", `{` + minimalReceipt, ReasonNotJSON, "", "unexpected end"},
	{"missing receipt_id", `{"message_id":"m1","customer_id":"c1","channel":"sms","status":"sent","occurred_at":"2026-11-22T09:00:00Z"}`, ReasonMissingField, "receipt_id", "missing"},
	{"missing message_id", `{"receipt_id":"r1","customer_id":"c1","channel":"sms","status":"sent","occurred_at":"2026-11-22T09:00:00Z"}`, ReasonMissingField, "message_id", "missing"},
	{"missing customer_id", `{"receipt_id":"r1","message_id":"m1","channel":"sms","status":"sent","occurred_at":"2026-11-22T09:00:00Z"}`, ReasonMissingField, "customer_id", "missing"},
	{"missing channel", `{"receipt_id":"r1","message_id":"m1","customer_id":"c1","status":"sent","occurred_at":"2026-11-22T09:00:00Z"}`, ReasonMissingField, "channel", "missing"},
	{"missing status", `{"receipt_id":"r1","message_id":"m1","customer_id":"c1","channel":"sms","occurred_at":"2026-11-22T09:00:00Z"}`, ReasonMissingField, "status", "missing"},
	{"missing occurred_at", `{"receipt_id":"r1","message_id":"m1","customer_id":"c1","channel":"sms","status":"sent"}`, ReasonMissingField, "occurred_at", "missing"},
	{"empty status", `{` + minimalReceipt + `,"status":""}`, ReasonMissingField, "status", "required field is empty"},
	{"null channel", `{` + minimalReceipt + `,"channel":null}`, ReasonMissingField, "channel", "required field is null"},
	{"status number", `{` + minimalReceipt + `,"status":3}`, ReasonWrongType, "status", "expected string, got number"},
	{"attempt string", `{` + minimalReceipt + `,"attempt":"2"}`, ReasonWrongType, "attempt", "expected number, got string"},
	{"provider object", `{` + minimalReceipt + `,"provider":{"name":"ses"}}`, ReasonWrongType, "provider", "expected string, got object"},
	{"recipient_tz number", `{` + minimalReceipt + `,"recipient_tz":8}`, ReasonWrongType, "recipient_tz", "expected string, got number"},
	{"attempt zero", `{` + minimalReceipt + `,"attempt":0}`, ReasonBadValue, "attempt", "expected an integer from 1"},
	{"attempt negative", `{` + minimalReceipt + `,"attempt":-1}`, ReasonBadValue, "attempt", "got -1"},
	{"attempt fraction", `{` + minimalReceipt + `,"attempt":1.5}`, ReasonBadValue, "attempt", "got 1.5"},
	{"attempt 1.0", `{` + minimalReceipt + `,"attempt":1.0}`, ReasonBadValue, "attempt", ""},
	{"attempt exponent", `{` + minimalReceipt + `,"attempt":1e2}`, ReasonBadValue, "attempt", ""},
	{"attempt too large", `{` + minimalReceipt + `,"attempt":2147483648}`, ReasonBadValue, "attempt", ""},
	{"attempt huge", `{` + minimalReceipt + `,"attempt":99999999999999999999999999}`, ReasonBadValue, "attempt", ""},
	{"bad time", `{` + minimalReceipt + `,"occurred_at":"2026-11-22T09:00:00+8:00"}`, ReasonBadTime, "occurred_at", ""},
	{"unknown zone", `{` + minimalReceipt + `,"recipient_tz":"Mars/Olympus_Mons"}`, ReasonBadValue, "recipient_tz", `unknown time zone "Mars/Olympus_Mons"`},
	{"Local is not a zone", `{` + minimalReceipt + `,"recipient_tz":"Local"}`, ReasonBadValue, "recipient_tz", ""},
	{"path is not a zone", `{` + minimalReceipt + `,"recipient_tz":"../../etc/passwd"}`, ReasonBadValue, "recipient_tz", ""},
	{"offset is not a zone", `{` + minimalReceipt + `,"recipient_tz":"+08:00"}`, ReasonBadValue, "recipient_tz", ""},
	{"one ns before 1970", `{` + minimalReceipt + `,"occurred_at":"1969-12-31T23:59:59.999999999Z"}`, ReasonBadTime, "occurred_at", "outside the supported range"},
	{"2200 exactly", `{` + minimalReceipt + `,"occurred_at":"2200-01-01T00:00:00Z"}`, ReasonBadTime, "occurred_at", "outside the supported range"},
	{"receipt_id over the limit", `{` + minimalReceipt + `,"receipt_id":"` + strings.Repeat("r", MaxFieldLen+1) + `"}`, ReasonBadValue, "receipt_id", "value is 1025 bytes long, over the limit of 1024 bytes"},
	{"message_id over the limit", `{` + minimalReceipt + `,"message_id":"` + strings.Repeat("m", MaxFieldLen+1) + `"}`, ReasonBadValue, "message_id", "limit of 1024"},
	{"customer_id over the limit", `{` + minimalReceipt + `,"customer_id":"` + strings.Repeat("c", MaxFieldLen+1) + `"}`, ReasonBadValue, "customer_id", "limit of 1024"},
	{"channel over the limit", `{` + minimalReceipt + `,"channel":"` + strings.Repeat("c", MaxFieldLen+1) + `"}`, ReasonBadValue, "channel", "limit of 1024"},
	{"status over the limit", `{` + minimalReceipt + `,"status":"` + strings.Repeat("s", MaxFieldLen+1) + `"}`, ReasonBadValue, "status", "limit of 1024"},
	{"tenant over the limit", `{` + minimalReceipt + `,"tenant":"` + strings.Repeat("t", MaxFieldLen+1) + `"}`, ReasonBadValue, "tenant", "limit of 1024"},
	{"campaign_id over the limit", `{` + minimalReceipt + `,"campaign_id":"` + strings.Repeat("c", MaxFieldLen+1) + `"}`, ReasonBadValue, "campaign_id", "limit of 1024"},
	{"template_id over the limit", `{` + minimalReceipt + `,"template_id":"` + strings.Repeat("t", MaxFieldLen+1) + `"}`, ReasonBadValue, "template_id", "limit of 1024"},
	{"provider over the limit", `{` + minimalReceipt + `,"provider":"` + strings.Repeat("p", MaxFieldLen+1) + `"}`, ReasonBadValue, "provider", "limit of 1024"},
	{"error_code over the limit", `{` + minimalReceipt + `,"error_code":"` + strings.Repeat("e", MaxFieldLen+1) + `"}`, ReasonBadValue, "error_code", "limit of 1024"},
	{"recipient_tz over the limit", `{` + minimalReceipt + `,"recipient_tz":"` + strings.Repeat("z", MaxFieldLen+1) + `"}`, ReasonBadValue, "recipient_tz", "limit of 1024"},
}

func TestDecodeInteractionRejects(t *testing.T) {
	for _, tc := range interactionRejects {
		t.Run(tc.name, func(t *testing.T) {
			ev := Interaction{EventID: "stale", Attributes: map[string]string{"stale": "x"}}
			err := DecodeInteraction([]byte(tc.in), &ev)
			checkRejectReason(t, tc, err)
			require.Equal(t, Interaction{}, ev, "a rejected record leaves the zero value")
		})
	}
}

func TestDecodeReceiptRejects(t *testing.T) {
	for _, tc := range receiptRejects {
		t.Run(tc.name, func(t *testing.T) {
			r := Receipt{ReceiptID: "stale", Attempt: 9}
			err := DecodeReceipt([]byte(tc.in), &r)
			checkRejectReason(t, tc, err)
			require.Equal(t, Receipt{}, r, "a rejected record leaves the zero value")
		})
	}
}

func checkRejectReason(t *testing.T, tc rejectCase, err error) {
	t.Helper()
	require.Error(t, err)
	var re *RejectError
	require.True(t, errors.As(err, &re), "error %T is not a *RejectError", err)
	require.Equal(t, tc.reason, re.Reason, "detail: %s", re.Detail)
	require.Equal(t, tc.field, re.Field, "detail: %s", re.Detail)
	require.Contains(t, re.Detail, tc.detail)
	require.Contains(t, err.Error(), string(tc.reason))
	if tc.field != "" {
		require.Contains(t, err.Error(), "field "+tc.field)
	}
	// The decoder and encoding/json agree on what is JSON: not_json is
	// only ever the answer for invalid JSON or a top level that is not an
	// object.
	valid := json.Valid([]byte(tc.in))
	if tc.reason == ReasonNotJSON {
		require.True(t, !valid || !strings.HasPrefix(strings.TrimSpace(tc.in), "{"), "valid JSON object refused as not_json")
	} else {
		require.True(t, valid, "invalid JSON refused as %s", tc.reason)
	}
}

func TestDecodeReusesStructWithoutLeaks(t *testing.T) {
	full := `{"event_id":"e9","type":"refund","customer_id":"c9","occurred_at":"2020-01-01T00:00:00.5Z","tenant":"acme",` +
		`"segment":"gold","region":"eu","channel":"app","amount":3,"currency":"EUR","attributes":{"a":"b"}}`
	var ev Interaction
	require.NoError(t, DecodeInteraction([]byte(full), &ev))
	kept := ev.Attributes
	require.NoError(t, DecodeInteraction([]byte(`{`+minimalInteraction+`}`), &ev))
	var fresh Interaction
	require.NoError(t, DecodeInteraction([]byte(`{`+minimalInteraction+`}`), &fresh))
	require.Equal(t, fresh, ev)
	require.Equal(t, map[string]string{"a": "b"}, kept, "the previous record's map is not reused")

	fullReceipt := `{` + minimalReceipt + `,"attempt":4,"tenant":"t","campaign_id":"c","template_id":"t","provider":"p","error_code":"e","recipient_tz":"Europe/Paris"}`
	var r Receipt
	require.NoError(t, DecodeReceipt([]byte(fullReceipt), &r))
	require.NoError(t, DecodeReceipt([]byte(`{`+minimalReceipt+`}`), &r))
	var freshR Receipt
	require.NoError(t, DecodeReceipt([]byte(`{`+minimalReceipt+`}`), &freshR))
	require.Equal(t, freshR, r)
}

func TestDecodeDoesNotAliasInput(t *testing.T) {
	in := []byte(`{"event_id":"e1","type":"purchase","customer_id":"c1","occurred_at":"2026-11-22T09:00:00+08:00",` +
		`"tenant":"acme","segment":"s","region":"r","channel":"c","currency":"USD","attributes":{"k":"v","e\u00e9":"x\ny"}}`)
	var ev Interaction
	require.NoError(t, DecodeInteraction(in, &ev))
	want := Interaction{
		EventID: "e1", Type: "purchase", CustomerID: "c1", OccurredAt: mustTime(t, "2026-11-22T01:00:00Z"),
		Tenant: "acme", Segment: "s", Region: "r", Channel: "c", Currency: "USD",
		Attributes: map[string]string{"k": "v", "eé": "x\ny"},
	}
	for i := range in {
		in[i] = 'X'
	}
	require.Equal(t, want, ev)

	rin := []byte(`{` + minimalReceipt + `,"provider":"ses","recipient_tz":"Asia/Tokyo"}`)
	var r Receipt
	require.NoError(t, DecodeReceipt(rin, &r))
	for i := range rin {
		rin[i] = 'X'
	}
	require.Equal(t, "r1", r.ReceiptID)
	require.Equal(t, "ses", r.Provider)
	require.Equal(t, "Asia/Tokyo", r.RecipientTZ)
}

func TestDecodeNestingDepth(t *testing.T) {
	// encoding/json allows 10000 levels, the top-level object included.
	nest := func(levels int) []byte {
		return []byte(`{` + minimalInteraction + `,"x":` + strings.Repeat("[", levels-1) + strings.Repeat("]", levels-1) + `}`)
	}
	var ev Interaction
	require.True(t, json.Valid(nest(maxDepth)))
	require.NoError(t, DecodeInteraction(nest(maxDepth), &ev))
	require.False(t, json.Valid(nest(maxDepth+1)))
	err := DecodeInteraction(nest(maxDepth+1), &ev)
	var re *RejectError
	require.ErrorAs(t, err, &re)
	require.Equal(t, ReasonNotJSON, re.Reason)
}

func TestLoadZone(t *testing.T) {
	a, err := LoadZone("Asia/Shanghai")
	require.NoError(t, err)
	b, err := LoadZone("Asia/Shanghai")
	require.NoError(t, err)
	require.Same(t, a, b, "the second lookup comes from the cache")
	require.Equal(t, "Asia/Shanghai", a.String())
	for _, bad := range []string{"", "Local", "Nowhere/Special", "/etc/localtime"} {
		_, err := LoadZone(bad)
		require.Error(t, err, bad)
		_, err = LoadZone(bad) // and again, from the cache
		require.Error(t, err, bad)
	}
}

func TestParseTimeMatchesStandardLibrary(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		s := randomTimestamp(rng)
		got, ok := parseTime([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		require.NoError(t, err, s)
		require.True(t, ok, s)
		require.Equal(t, want.UTC(), got, s)
		require.True(t, want.Equal(got), s)
	}
	// Random mutations: whatever parseTime accepts, time.Parse accepts with
	// the same instant.
	base := []byte("2024-02-29T23:59:59.999999999+14:00")
	for range 20000 {
		b := append([]byte(nil), base[:rng.IntN(len(base)+1)]...)
		for range rng.IntN(3) + 1 {
			if len(b) > 0 {
				b[rng.IntN(len(b))] = "0123456789-+:.TZ"[rng.IntN(16)]
			}
		}
		got, ok := parseTime(b)
		if !ok {
			continue
		}
		want, err := time.Parse(time.RFC3339Nano, string(b))
		require.NoError(t, err, string(b))
		require.True(t, want.Equal(got), string(b))
	}
}

// randomTimestamp writes a valid RFC 3339 timestamp between the years 1 and
// 9998 with a random fraction and zone.
func randomTimestamp(rng *rand.Rand) string {
	var unix int64
	switch rng.IntN(3) {
	case 0: // around now
		unix = 1_700_000_000 + rng.Int64N(500_000_000)
	case 1: // anywhere
		unix = -62_100_000_000 + rng.Int64N(253_300_000_000+62_100_000_000)
	default: // around month and year ends
		t := time.Date(1900+rng.IntN(300), time.Month(1+rng.IntN(12)), 1, 0, 0, 0, 0, time.UTC)
		unix = t.Unix() + rng.Int64N(7200) - 3600
	}
	offset := 0
	if rng.IntN(3) > 0 {
		offset = (rng.IntN(24*60*2-1) - (24*60 - 1)) * 60
	}
	t := time.Unix(unix, 0).In(time.FixedZone("", offset))
	s := t.Format("2006-01-02T15:04:05")
	if n := rng.IntN(13); n > 0 {
		s += "."
		for range n {
			s += string(rune('0' + rng.IntN(10)))
		}
	}
	if offset == 0 && rng.IntN(2) == 0 {
		return s + "Z"
	}
	return s + t.Format("-07:00")
}

// randomEventTime is a randomTimestamp inside the supported range
// [MinTime, MaxTime), which the decoder accepts.
func randomEventTime(rng *rand.Rand) string {
	for {
		s := randomTimestamp(rng)
		if t, err := time.Parse(time.RFC3339Nano, s); err == nil && !t.Before(MinTime) && t.Before(MaxTime) {
			return s
		}
	}
}

// referenceInteraction is the slow, obviously right decoder: encoding/json
// into the same struct, then the SPEC defaults.
func referenceInteraction(data []byte) (Interaction, error) {
	var ev Interaction
	if err := json.Unmarshal(data, &ev); err != nil {
		return ev, err
	}
	ev.OccurredAt = ev.OccurredAt.UTC()
	for _, f := range []*string{&ev.Segment, &ev.Region, &ev.Channel} {
		if *f == "" {
			*f = UnknownDim
		}
	}
	if ev.Tenant == "" {
		ev.Tenant = DefaultTenant
	}
	if len(ev.Attributes) == 0 {
		ev.Attributes = nil
	}
	return ev, nil
}

func referenceReceipt(data []byte) (Receipt, error) {
	var r Receipt
	if err := json.Unmarshal(data, &r); err != nil {
		return r, err
	}
	r.OccurredAt = r.OccurredAt.UTC()
	if r.Tenant == "" {
		r.Tenant = DefaultTenant
	}
	if r.Attempt == 0 {
		r.Attempt = 1
	}
	return r, nil
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	for i := range 5000 {
		in := randomInteraction(rng)
		want, err := referenceInteraction(in)
		require.NoError(t, err, "%d: %s", i, in)
		var got Interaction
		require.NoError(t, DecodeInteraction(in, &got), "%d: %s", i, in)
		require.Equal(t, want, got, "%d: %s", i, in)

		in = randomReceipt(rng)
		wantR, err := referenceReceipt(in)
		require.NoError(t, err, "%d: %s", i, in)
		var gotR Receipt
		require.NoError(t, DecodeReceipt(in, &gotR), "%d: %s", i, in)
		require.Equal(t, wantR, gotR, "%d: %s", i, in)
	}
}

// recordWriter writes JSON by hand so that tests can use every spelling
// JSON allows (escapes encoding/json never writes, odd whitespace, nulls).
type recordWriter struct {
	rng *rand.Rand
	b   strings.Builder
}

func (w *recordWriter) ws() {
	if w.rng.IntN(4) == 0 {
		w.b.WriteString([]string{" ", "\n", "\t", "\r\n  "}[w.rng.IntN(4)])
	}
}

// str writes s as a JSON string, escaping some runes that need no escape.
func (w *recordWriter) str(s string) {
	w.b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			w.b.WriteByte('\\')
			w.b.WriteRune(r)
		case r == '/' && w.rng.IntN(2) == 0:
			w.b.WriteString(`\/`)
		case r == '\n' || r == '\t' || r == '\r' || r == '\b' || r == '\f':
			w.b.WriteString(map[rune]string{'\n': `\n`, '\t': `\t`, '\r': `\r`, '\b': `\b`, '\f': `\f`}[r])
		case r < 0x20 || w.rng.IntN(8) == 0:
			if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
				fmt.Fprintf(&w.b, `\u%04x\u%04X`, r1, r2)
			} else {
				fmt.Fprintf(&w.b, `\u%04x`, r)
			}
		default:
			w.b.WriteRune(r)
		}
	}
	w.b.WriteByte('"')
}

// plain writes s as a JSON string without escapes: time.Time's
// UnmarshalJSON, unlike our decoder, does not unescape.
func (w *recordWriter) plain(s string) {
	w.b.WriteString(strconv.Quote(s))
}

var testRunes = []rune("abcxyzABC019_-:/. \"\\\n\t\r\b\f\x01\x1féß中文😀𝄞€<>&\u2028")

func randomString(rng *rand.Rand, minLen int) string {
	n := minLen + rng.IntN(12)
	var b strings.Builder
	for range n {
		b.WriteRune(testRunes[rng.IntN(len(testRunes))])
	}
	return b.String()
}

// randomValue writes any JSON value, for unknown fields.
func (w *recordWriter) randomValue(depth int) {
	switch k := w.rng.IntN(7); {
	case k == 0 && depth < 3:
		w.b.WriteByte('{')
		for i := range w.rng.IntN(3) {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.str(randomString(w.rng, 0))
			w.b.WriteByte(':')
			w.randomValue(depth + 1)
		}
		w.b.WriteByte('}')
	case k == 1 && depth < 3:
		w.b.WriteByte('[')
		for i := range w.rng.IntN(3) {
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.ws()
			w.randomValue(depth + 1)
		}
		w.b.WriteByte(']')
	case k == 2:
		w.b.WriteString([]string{"true", "false", "null"}[w.rng.IntN(3)])
	case k == 3:
		w.b.WriteString(randomNumber(w.rng))
	default:
		w.str(randomString(w.rng, 0))
	}
}

func randomNumber(rng *rand.Rand) string {
	switch rng.IntN(5) {
	case 0:
		return strconv.Itoa(rng.IntN(100000) - 50000)
	case 1:
		return strconv.FormatFloat(rng.NormFloat64()*1000, 'f', rng.IntN(4), 64)
	case 2:
		return strconv.FormatFloat(rng.ExpFloat64()*1e6, 'e', -1, 64)
	case 3:
		return []string{"0", "-0", "0.0", "1E3", "1e-3", "-2.5E+2", "123456789012345678901234567890", "0.1"}[rng.IntN(8)]
	}
	return strconv.FormatFloat(rng.Float64(), 'g', -1, 64)
}

type member struct {
	key   string
	write func()
}

// object writes the members in a random order with unknown members mixed in.
func (w *recordWriter) object(members []member) []byte {
	for range w.rng.IntN(3) {
		members = append(members, member{"x_" + strconv.Itoa(w.rng.IntN(1000)), func() { w.randomValue(0) }})
	}
	w.rng.Shuffle(len(members), func(i, j int) { members[i], members[j] = members[j], members[i] })
	w.ws()
	w.b.WriteByte('{')
	for i, m := range members {
		if i > 0 {
			w.b.WriteByte(',')
		}
		w.ws()
		w.str(m.key)
		w.ws()
		w.b.WriteByte(':')
		w.ws()
		m.write()
		w.ws()
	}
	w.b.WriteByte('}')
	w.ws()
	return []byte(w.b.String())
}

// optional adds key with a value, an explicit null, or not at all.
func (w *recordWriter) optional(members []member, key string, write func()) []member {
	switch w.rng.IntN(3) {
	case 0:
		return members
	case 1:
		return append(members, member{key, func() { w.b.WriteString("null") }})
	}
	return append(members, member{key, write})
}

func (w *recordWriter) strMember(key string, minLen int) member {
	s := randomString(w.rng, minLen)
	return member{key, func() { w.str(s) }}
}

func randomInteraction(rng *rand.Rand) []byte {
	w := &recordWriter{rng: rng}
	ms := []member{
		w.strMember("event_id", 1), w.strMember("type", 1), w.strMember("customer_id", 1),
		{"occurred_at", func() { w.plain(randomEventTime(rng)) }},
	}
	for _, k := range []string{"tenant", "segment", "region", "channel", "currency"} {
		m := w.strMember(k, 0)
		ms = w.optional(ms, k, m.write)
	}
	ms = w.optional(ms, "amount", func() { w.b.WriteString(randomNumber(rng)) })
	ms = w.optional(ms, "attributes", func() {
		w.b.WriteByte('{')
		seen := map[string]bool{}
		for i := range rng.IntN(12) {
			k := randomString(rng, 0)
			if seen[k] { // encoding/json would merge duplicates differently
				continue
			}
			seen[k] = true
			if i > 0 {
				w.b.WriteByte(',')
			}
			w.ws()
			w.str(k)
			w.b.WriteByte(':')
			w.ws()
			w.str(randomString(rng, 0))
		}
		w.b.WriteByte('}')
	})
	return w.object(ms)
}

var testZones = []string{"Asia/Shanghai", "Europe/Berlin", "America/Los_Angeles", "UTC", "Australia/Lord_Howe", "Etc/GMT+5"}

func randomReceipt(rng *rand.Rand) []byte {
	w := &recordWriter{rng: rng}
	ms := []member{
		w.strMember("receipt_id", 1), w.strMember("message_id", 1), w.strMember("customer_id", 1),
		w.strMember("channel", 1), w.strMember("status", 1),
		{"occurred_at", func() { w.plain(randomEventTime(rng)) }},
	}
	for _, k := range []string{"tenant", "campaign_id", "template_id", "provider", "error_code"} {
		m := w.strMember(k, 0)
		ms = w.optional(ms, k, m.write)
	}
	ms = w.optional(ms, "attempt", func() { w.b.WriteString(strconv.Itoa(1 + rng.IntN(20))) })
	ms = w.optional(ms, "recipient_tz", func() { w.str(testZones[rng.IntN(len(testZones))]) })
	return w.object(ms)
}

func TestSchemaLookup(t *testing.T) {
	for _, sc := range []*schema{&interactionSchema, &receiptSchema} {
		names := map[string]int{}
		for i, f := range sc.fields {
			names[f.name] = i
			require.Equal(t, i, sc.lookup([]byte(f.name)), f.name)
		}
		// Every one-byte change, and every key one byte shorter or longer,
		// is unknown unless it happens to be another field's name.
		for _, f := range sc.fields {
			for i := range len(f.name) {
				for _, c := range []byte("_aez\x00\xff") {
					k := []byte(f.name)
					if k[i] == c {
						continue
					}
					k[i] = c
					want, ok := names[string(k)]
					if !ok {
						want = -1
					}
					require.Equal(t, want, sc.lookup(k), "%q", k)
				}
			}
			require.Equal(t, -1, sc.lookup([]byte(f.name[:len(f.name)-1])), f.name)
			require.Equal(t, -1, sc.lookup([]byte(f.name+"_")), f.name)
		}
		require.Equal(t, -1, sc.lookup(nil))
		require.Equal(t, -1, sc.lookup([]byte("a_very_long_unknown_field_name")))
	}
}

func TestDecodeAllocations(t *testing.T) {
	var ev Interaction
	var r Receipt
	// One backing string; for interactions also the attributes map, which
	// takes two (the map and its first group).
	require.LessOrEqual(t, testing.AllocsPerRun(100, func() {
		if err := DecodeInteraction(benchInteraction, &ev); err != nil {
			t.Fatal(err)
		}
	}), 3.0)
	require.LessOrEqual(t, testing.AllocsPerRun(100, func() {
		if err := DecodeReceipt(benchReceipt, &r); err != nil {
			t.Fatal(err)
		}
	}), 1.0)
}
