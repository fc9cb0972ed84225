package ingest

import (
	"bytes"
	"encoding/json"
	"errors"
	"slices"
	"testing"
	"unicode/utf8"

	"github.com/stretchr/testify/require"
)

// The seed corpora live in testdata/fuzz/<FuzzName>/; these few are here so
// that the targets cover the main shapes even without them.

func FuzzDecodeInteraction(f *testing.F) {
	f.Add([]byte(`{` + minimalInteraction + `}`))
	f.Add(benchInteraction)
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
		if r.RecipientTZ != "" {
			_, err := LoadZone(r.RecipientTZ)
			require.NoError(t, err)
		}

		want := r
		for _, f := range []*string{&want.ReceiptID, &want.MessageID, &want.CustomerID, &want.Channel,
			&want.Status, &want.Tenant, &want.CampaignID, &want.TemplateID, &want.Provider, &want.ErrorCode} {
			*f = validUTF8(*f)
		}
		out, err := json.Marshal(r)
		require.NoError(t, err)
		var again Receipt
		require.NoError(t, DecodeReceipt(out, &again), "%s", out)
		require.Equal(t, want, again)
	})
}

// checkFuzzReject holds for every refused input: the error is a
// *RejectError with a known reason, and not_json exactly when encoding/json
// says the input is not JSON or its top level is not an object.
func checkFuzzReject(t *testing.T, data []byte, err error) {
	t.Helper()
	var re *RejectError
	require.True(t, errors.As(err, &re), "error %T is not a *RejectError", err)
	require.True(t, slices.Contains(Reasons, re.Reason) && re.Reason != ReasonLate, "reason %q", re.Reason)
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
