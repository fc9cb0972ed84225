package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/; these few are here so
// that the targets cover the main shapes even without them.

func FuzzDecodeInteraction(f *testing.F) {
	f.Add([]byte(`{` + minimalInteraction + `}`))
	f.Add(benchInteraction)
	for _, seed := range boundarySeeds(minimalInteraction) {
		f.Add(seed)
	}
	f.Add([]byte(`{` + minimalInteraction + `,"amount":1.7976931348623157e308}`))
	f.Add([]byte(`{` + minimalInteraction + `,"amount":1.8e308}`))
	f.Add([]byte(`{` + minimalInteraction + `,"amount":-1e400}`))
	f.Add([]byte(`{` + minimalInteraction + `,"attributes":{"` + strings.Repeat("k", MaxAttributeKeyLen) + `":"` + strings.Repeat("v", MaxAttributeValueLen) + `"}}`))
	f.Add([]byte(`{` + minimalInteraction + `,"attributes":{"k":"` + strings.Repeat("v", MaxAttributeValueLen+1) + `"}}`))
	f.Add([]byte(`{` + minimalInteraction + `,"attributes":` + attributesObject(MaxAttributes) + `}`))
	f.Add([]byte(`{` + minimalInteraction + `,"attributes":` + attributesObject(MaxAttributes+1) + `}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var ev Interaction
		err := DecodeInteraction(data, &ev)
		if err != nil {
			checkFuzzReject(t, data, err)
			require.Equal(t, Interaction{}, ev)
			return
		}
		require.True(t, json.Valid(data), "accepted invalid JSON")
		require.NotEmpty(t, ev.EventID)
		require.NotEmpty(t, ev.Type)
		require.NotEmpty(t, ev.CustomerID)
		require.NotEmpty(t, ev.Tenant)
		// The bounds (docs/limits.md): a finite amount, a time in the
		// supported range, every string within its length limit.
		require.False(t, math.IsInf(ev.Amount, 0) || math.IsNaN(ev.Amount), "amount %v", ev.Amount)
		require.NoError(t, CheckTime("occurred_at", ev.OccurredAt))
		for _, s := range []string{ev.EventID, ev.Type, ev.CustomerID, ev.Tenant, ev.Segment, ev.Region, ev.Channel, ev.Currency} {
			require.LessOrEqual(t, len(s), MaxFieldLen)
		}
		require.LessOrEqual(t, len(ev.Attributes), MaxAttributes)
		for k, v := range ev.Attributes {
			require.LessOrEqual(t, len(k), MaxAttributeKeyLen)
			require.LessOrEqual(t, len(v), MaxAttributeValueLen)
		}

		// Round trip: what we accepted, written by encoding/json, decodes
		// to the same record. encoding/json writes invalid UTF-8 as U+FFFD,
		// so compare with that; attribute keys that only differ in invalid
		// bytes would merge, so those records stop here.
		want := ev
		for _, f := range []*string{&want.EventID, &want.Type, &want.CustomerID, &want.Tenant,
			&want.Segment, &want.Region, &want.Channel, &want.Currency} {
			*f = validUTF8(*f)
		}
		if ev.Attributes != nil {
			want.Attributes = make(map[string]string, len(ev.Attributes))
			for k, v := range ev.Attributes {
				if !utf8.ValidString(k) {
					return
				}
				want.Attributes[k] = validUTF8(v)
				if len(want.Attributes[k]) > MaxAttributeValueLen {
					return // U+FFFD is three bytes: over the limit now
				}
			}
		}
		for _, s := range []string{want.EventID, want.Type, want.CustomerID, want.Tenant, want.Segment, want.Region, want.Channel, want.Currency} {
			if len(s) > MaxFieldLen {
				return
			}
		}
		out, err := json.Marshal(ev)
		require.NoError(t, err)
		var again Interaction
		require.NoError(t, DecodeInteraction(out, &again), "%s", out)
		require.Equal(t, want, again)
	})
}

func FuzzDecodeReceipt(f *testing.F) {
	f.Add([]byte(`{` + minimalReceipt + `}`))
	f.Add(benchReceipt)
	for _, seed := range boundarySeeds(minimalReceipt) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var r Receipt
		err := DecodeReceipt(data, &r)
		if err != nil {
			checkFuzzReject(t, data, err)
			require.Equal(t, Receipt{}, r)
			return
		}
		require.True(t, json.Valid(data), "accepted invalid JSON")
		require.GreaterOrEqual(t, r.Attempt, 1)
		require.NoError(t, CheckTime("occurred_at", r.OccurredAt))
		for _, s := range []string{r.ReceiptID, r.MessageID, r.CustomerID, r.Channel, r.Status, r.Tenant,
			r.CampaignID, r.TemplateID, r.Provider, r.ErrorCode, r.RecipientTZ} {
			require.LessOrEqual(t, len(s), MaxFieldLen)
		}
		if r.RecipientTZ != "" {
			_, err := LoadZone(r.RecipientTZ)
			require.NoError(t, err)
		}

		want := r
		for _, f := range []*string{&want.ReceiptID, &want.MessageID, &want.CustomerID, &want.Channel,
			&want.Status, &want.Tenant, &want.CampaignID, &want.TemplateID, &want.Provider, &want.ErrorCode} {
			*f = validUTF8(*f)
		}
		for _, s := range []string{want.ReceiptID, want.MessageID, want.CustomerID, want.Channel,
			want.Status, want.Tenant, want.CampaignID, want.TemplateID, want.Provider, want.ErrorCode} {
			if len(s) > MaxFieldLen {
				return // U+FFFD is three bytes: over the limit now
			}
		}
		out, err := json.Marshal(r)
		require.NoError(t, err)
		var again Receipt
		require.NoError(t, DecodeReceipt(out, &again), "%s", out)
		require.Equal(t, want, again)
	})
}

// boundarySeeds are records (minimal fields first, then one more) that sit
// on each edge of the supported time range and the length limits, on both
// sides: the fuzzer starts from them to look for a way past the limits.
func boundarySeeds(minimal string) [][]byte {
	var seeds [][]byte
	for _, at := range []string{"1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999999Z", "1970-01-01T00:30:00+01:00",
		"2199-12-31T23:59:59.999999999Z", "2200-01-01T00:00:00Z", "2199-12-31T23:00:00-01:00", "2262-04-12T00:00:00Z", "2300-01-01T00:00:00Z"} {
		seeds = append(seeds, []byte(`{`+minimal+`,"occurred_at":"`+at+`"}`))
	}
	for _, n := range []int{MaxFieldLen, MaxFieldLen + 1, 1<<16 + 1} {
		seeds = append(seeds, []byte(`{`+minimal+`,"customer_id":"`+strings.Repeat("c", n)+`"}`))
	}
	seeds = append(seeds, []byte(`{`+minimal+`,"customer_id":"`+strings.Repeat(`\u00e9`, MaxFieldLen/2)+`"}`))
	seeds = append(seeds, []byte(`{`+minimal+`,"tenant":"`+strings.Repeat("\xff", MaxFieldLen)+`"}`))
	return seeds
}

// checkFuzzReject holds for every refused input: the error is a
// *RejectError with a known reason, and not_json exactly when encoding/json
// says the input is not JSON or its top level is not an object.
func checkFuzzReject(t *testing.T, data []byte, err error) {
	t.Helper()
	var re *RejectError
	require.True(t, errors.As(err, &re), "error %T is not a *RejectError", err)
	require.True(t, slices.Contains(Reasons, re.Reason) && re.Reason != ReasonLate && re.Reason != ReasonFuture, "reason %q", re.Reason)
	require.NotEmpty(t, re.Detail)
	isObject := bytes.HasPrefix(bytes.TrimLeft(data, " \t\r\n"), []byte("{"))
	if !json.Valid(data) || !isObject {
		require.Equal(t, ReasonNotJSON, re.Reason, "%v", err)
	} else {
		require.NotEqual(t, ReasonNotJSON, re.Reason, "%v", err)
		require.NotEmpty(t, re.Field)
	}
}

// validUTF8 is s as encoding/json writes it: each invalid byte becomes
// U+FFFD.
func validUTF8(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return string([]rune(s))
}
