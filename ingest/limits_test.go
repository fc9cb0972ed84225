package ingest

import (
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestDecodeAtTheLimits puts every bounded value exactly on its limit: the
// limit itself is accepted, kept whole (one byte more is refused: see the
// reject tables).
func TestDecodeAtTheLimits(t *testing.T) {
	long := func(c string, n int) string { return strings.Repeat(c, n) }
	interactions := []struct {
		name  string
		in    string
		check func(t *testing.T, ev Interaction)
	}{
		{
			name: "every string field of exactly the maximum length",
			in: `{"event_id":"` + long("e", MaxFieldLen) + `","type":"` + long("t", MaxFieldLen) +
				`","customer_id":"` + long("c", MaxFieldLen) + `","occurred_at":"2026-11-22T09:00:00Z","tenant":"` + long("n", MaxFieldLen) +
				`","segment":"` + long("s", MaxFieldLen) + `","region":"` + long("r", MaxFieldLen) +
				`","channel":"` + long("h", MaxFieldLen) + `","currency":"` + long("u", MaxFieldLen) + `"}`,
			check: func(t *testing.T, ev Interaction) {
				for f, v := range map[string]string{"event_id": ev.EventID, "type": ev.Type, "customer_id": ev.CustomerID,
					"tenant": ev.Tenant, "segment": ev.Segment, "region": ev.Region, "channel": ev.Channel, "currency": ev.Currency} {
					require.Len(t, v, MaxFieldLen, f)
				}
				require.Equal(t, long("c", MaxFieldLen), ev.CustomerID)
			},
		},
		{
			name: "an escaped value longer than the limit in the input but not once unescaped",
			in:   `{` + minimalInteraction + `,"customer_id":"` + long(`\u00e9`, MaxFieldLen/2) + `"}`,
			check: func(t *testing.T, ev Interaction) {
				require.Equal(t, long("é", MaxFieldLen/2), ev.CustomerID)
				require.Len(t, ev.CustomerID, MaxFieldLen)
			},
		},
		{
			name: "an attribute key and value of exactly the maximum length",
			in:   `{` + minimalInteraction + `,"attributes":{"` + long("k", MaxAttributeKeyLen) + `":"` + long("v", MaxAttributeValueLen) + `"}}`,
			check: func(t *testing.T, ev Interaction) {
				require.Equal(t, map[string]string{long("k", MaxAttributeKeyLen): long("v", MaxAttributeValueLen)}, ev.Attributes)
			},
		},
		{
			name: "an escaped attribute value at the limit once unescaped",
			in:   `{` + minimalInteraction + `,"attributes":{"k":"` + long(`\n`, MaxAttributeValueLen) + `"}}`,
			check: func(t *testing.T, ev Interaction) {
				require.Equal(t, long("\n", MaxAttributeValueLen), ev.Attributes["k"])
			},
		},
		{
			name: "exactly the maximum number of attributes",
			in:   `{` + minimalInteraction + `,"attributes":` + attributesObject(MaxAttributes) + `}`,
			check: func(t *testing.T, ev Interaction) {
				require.Len(t, ev.Attributes, MaxAttributes)
				require.Equal(t, strconv.Itoa(MaxAttributes-1), ev.Attributes["a"+strconv.Itoa(MaxAttributes-1)])
			},
		},
		{
			// As for every repeated key, the last occurrence is the value.
			name: "a value over the limit replaced by a later occurrence of its key",
			in:   `{` + minimalInteraction + `,"event_id":"` + long("e", MaxFieldLen+1) + `","event_id":"e2","attributes":{"k":"` + long("v", MaxAttributeValueLen+1) + `"},"attributes":{"k":"v"}}`,
			check: func(t *testing.T, ev Interaction) {
				require.Equal(t, "e2", ev.EventID)
				require.Equal(t, map[string]string{"k": "v"}, ev.Attributes)
			},
		},
		{
			name:  "the first supported instant",
			in:    `{"event_id":"e1","type":"purchase","customer_id":"c1","occurred_at":"1970-01-01T00:00:00Z"}`,
			check: func(t *testing.T, ev Interaction) { require.Equal(t, MinTime, ev.OccurredAt) },
		},
		{
			name:  "the first supported instant, written with an offset",
			in:    `{"event_id":"e1","type":"purchase","customer_id":"c1","occurred_at":"1970-01-01T08:00:00+08:00"}`,
			check: func(t *testing.T, ev Interaction) { require.Equal(t, time.Unix(0, 0).UTC(), ev.OccurredAt) },
		},
		{
			name: "the last supported instant",
			in:   `{"event_id":"e1","type":"purchase","customer_id":"c1","occurred_at":"2199-12-31T23:59:59.999999999Z"}`,
			check: func(t *testing.T, ev Interaction) {
				require.Equal(t, MaxTime.Add(-time.Nanosecond), ev.OccurredAt)
			},
		},
		{
			name:  "the largest finite amount",
			in:    `{` + minimalInteraction + `,"amount":1.7976931348623157e308}`,
			check: func(t *testing.T, ev Interaction) { require.Equal(t, math.MaxFloat64, ev.Amount) },
		},
		{
			name:  "the most negative finite amount",
			in:    `{` + minimalInteraction + `,"amount":-1.7976931348623157e308}`,
			check: func(t *testing.T, ev Interaction) { require.Equal(t, -math.MaxFloat64, ev.Amount) },
		},
	}
	for _, tt := range interactions {
		t.Run(tt.name, func(t *testing.T) {
			var ev Interaction
			require.NoError(t, DecodeInteraction([]byte(tt.in), &ev))
			tt.check(t, ev)
		})
	}

	receipts := []struct {
		name  string
		in    string
		check func(t *testing.T, r Receipt)
	}{
		{
			name: "every string field of exactly the maximum length",
			in: `{"receipt_id":"` + long("r", MaxFieldLen) + `","message_id":"` + long("m", MaxFieldLen) +
				`","customer_id":"` + long("c", MaxFieldLen) + `","channel":"` + long("h", MaxFieldLen) +
				`","status":"` + long("s", MaxFieldLen) + `","occurred_at":"2026-11-22T09:00:00Z","tenant":"` + long("t", MaxFieldLen) +
				`","campaign_id":"` + long("a", MaxFieldLen) + `","template_id":"` + long("p", MaxFieldLen) +
				`","provider":"` + long("v", MaxFieldLen) + `","error_code":"` + long("e", MaxFieldLen) + `"}`,
			check: func(t *testing.T, r Receipt) {
				for f, v := range map[string]string{"receipt_id": r.ReceiptID, "message_id": r.MessageID, "customer_id": r.CustomerID,
					"channel": r.Channel, "status": r.Status, "tenant": r.Tenant, "campaign_id": r.CampaignID,
					"template_id": r.TemplateID, "provider": r.Provider, "error_code": r.ErrorCode} {
					require.Len(t, v, MaxFieldLen, f)
				}
			},
		},
		{
			name:  "the first supported instant",
			in:    `{"receipt_id":"r1","message_id":"m1","customer_id":"c1","channel":"sms","status":"sent","occurred_at":"1970-01-01T00:00:00Z"}`,
			check: func(t *testing.T, r Receipt) { require.Equal(t, MinTime, r.OccurredAt) },
		},
		{
			name:  "the last supported instant",
			in:    `{"receipt_id":"r1","message_id":"m1","customer_id":"c1","channel":"sms","status":"sent","occurred_at":"2199-12-31T23:59:59.999999999Z"}`,
			check: func(t *testing.T, r Receipt) { require.Equal(t, MaxTime.Add(-time.Nanosecond), r.OccurredAt) },
		},
	}
	for _, tt := range receipts {
		t.Run("receipt: "+tt.name, func(t *testing.T) {
			var r Receipt
			require.NoError(t, DecodeReceipt([]byte(tt.in), &r))
			tt.check(t, r)
		})
	}
}

func TestCheckTime(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		ok   bool
	}{
		{"the first supported instant", time.Date(1970, 1, 1, 0, 0, 0, 0, time.UTC), true},
		{"one ns before it", time.Date(1969, 12, 31, 23, 59, 59, 999999999, time.UTC), false},
		{"the last supported instant", time.Date(2199, 12, 31, 23, 59, 59, 999999999, time.UTC), true},
		{"the first instant past the range", time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC), false},
		{"a zone does not change the instant", time.Date(2200, 1, 1, 8, 0, 0, 0, time.FixedZone("", 8*3600)), false},
		{"now-ish", time.Date(2026, 11, 22, 9, 0, 0, 0, time.UTC), true},
		{"the zero time", time.Time{}, false},
		{"past int64 nanoseconds", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.ok, TimeInRange(tt.at))
			err := CheckTime("until", tt.at)
			if tt.ok {
				require.NoError(t, err)
				return
			}
			var re *RejectError
			require.ErrorAs(t, err, &re)
			require.Equal(t, ReasonBadTime, re.Reason)
			require.Equal(t, "until", re.Field)
			require.Contains(t, re.Detail, "outside the supported range 1970-01-01T00:00:00Z to 2200-01-01T00:00:00Z")
		})
	}
	require.Equal(t, "1970-01-01T00:00:00Z", MinTime.Format(time.RFC3339Nano))
	require.Equal(t, "2200-01-01T00:00:00Z", MaxTime.Format(time.RFC3339Nano))
}
