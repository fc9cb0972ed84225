package processor

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// stdJSON is what encoding/json writes for v, as the pipeline configured it.
func stdJSON(t testing.TB, v any) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	require.NoError(t, enc.Encode(v))
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

var oddStrings = []string{"", "plain", `quo"te`, `back\slash`, "tab\tnew\nline\rret", "\x00\x01\x1f\x7f",
	"\b\f", "<html>&amp;", "é中文🙂", "\u2028\u2029", "bad\xffutf8\xc3", "\xed\xa0\x80", "a|b"}

var oddFloats = []float64{0, math.Copysign(0, -1), 1, -1, 0.5, 3.0000000001, 1e-6, 9.99e-7, 1e-7, 1.5e-300,
	1e20, 1e21, 123456789e13, -2.5e22, math.MaxFloat64, math.SmallestNonzeroFloat64, 0.1 + 0.2, 100, 1e9}

func randomString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return oddStrings[r.IntN(len(oddStrings))]
	}
	b := make([]byte, r.IntN(12))
	for i := range b {
		b[i] = byte(r.IntN(256))
	}
	return string(b)
}

func randomTime(r *rand.Rand) time.Time {
	t := time.Unix(r.Int64N(4e9), r.Int64N(1e9)*int64(r.IntN(2)))
	if r.IntN(2) == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("x", (r.IntN(27)-12)*3600+r.IntN(2)*1800))
}

func randomMap(r *rand.Rand) map[string]string {
	if r.IntN(5) == 0 {
		return nil
	}
	m := map[string]string{}
	for range r.IntN(5) {
		m[randomString(r)] = randomString(r)
	}
	return m
}

func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	tp := func() *time.Time {
		if r.IntN(2) == 0 {
			return nil
		}
		v := randomTime(r)
		return &v
	}
	for i := range 20000 {
		a := Alert{
			Fingerprint: randomString(r), Rule: randomString(r), Kind: randomString(r), State: randomString(r),
			Severity: randomString(r), Labels: randomMap(r), Annotations: randomMap(r),
			Value: oddFloats[r.IntN(len(oddFloats))], Threshold: r.NormFloat64() * math.Pow(10, float64(r.IntN(60)-30)),
			StartsAt: randomTime(r), EndsAt: tp(), WindowStart: tp(), WindowEnd: tp(), EmittedAt: randomTime(r),
		}
		got, err := a.AppendJSON(nil)
		require.NoError(t, err)
		require.Equal(t, string(stdJSON(t, &a)), string(got), "alert %d", i)

		rs := Resend{
			TriggerID: randomString(r), Action: randomString(r), Policy: randomString(r), MessageID: randomString(r),
			CustomerID: randomString(r), Tenant: randomString(r), Channel: randomString(r), Attempt: r.IntN(1000) - 10,
			Reason: randomString(r), NotBefore: randomTime(r), CreatedAt: randomTime(r), FailedAt: randomTime(r),
		}
		got, err = rs.AppendJSON(nil)
		require.NoError(t, err)
		require.Equal(t, string(stdJSON(t, &rs)), string(got), "resend %d", i)

		var from *string
		if r.IntN(2) == 0 {
			f := randomString(r)
			from = &f
		}
		tr := Transition{SegmentSet: randomString(r), Key: randomMap(r), Tenant: randomString(r), CustomerID: randomString(r),
			From: from, To: randomString(r), At: randomTime(r), EmittedAt: randomTime(r)}
		got, err = tr.AppendJSON(nil)
		require.NoError(t, err)
		require.Equal(t, string(stdJSON(t, &tr)), string(got), "transition %d", i)
	}
}

func TestAppendJSONRefuses(t *testing.T) {
	for _, a := range []Alert{{Value: math.NaN()}, {Threshold: math.Inf(1)}, {StartsAt: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}} {
		_, err := a.AppendJSON(nil)
		require.ErrorIs(t, err, ErrUnencodable)
		_, stdErr := json.Marshal(&a)
		require.Error(t, stdErr, "encoding/json refuses it too")
	}
}

func TestTransitionID(t *testing.T) {
	at := time.Date(2026, 11, 2, 9, 0, 0, 0, time.FixedZone("x", 8*3600))
	a := Transition{SegmentSet: "lifecycle", Key: map[string]string{"tenant": "acme", "customer_id": "c1"}, To: "loyal", At: at}
	b := a
	b.At, b.To, b.EmittedAt = at.UTC(), "churned", time.Now()
	require.Equal(t, a.ID(), b.ID(), "the id is (segment_set, key, at): not the classes, the zone or emitted_at")
	for _, c := range []Transition{
		{SegmentSet: "other", Key: a.Key, At: at},
		{SegmentSet: "lifecycle", Key: map[string]string{"tenant": "acme", "customer_id": "c2"}, At: at},
		{SegmentSet: "lifecycle", Key: a.Key, At: at.Add(time.Nanosecond)},
	} {
		require.NotEqual(t, a.ID(), c.ID())
	}
	_, err := (&Transition{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC)}).AppendJSON(nil)
	require.ErrorIs(t, err, ErrUnencodable)
}

func FuzzAppendJSON(f *testing.F) {
	for _, s := range oddStrings {
		f.Add(s, s, 1.5, int64(0))
	}
	f.Fuzz(func(t *testing.T, s1, s2 string, v float64, sec int64) {
		ts := time.Unix(sec%(1<<35), 0).UTC()
		a := Alert{Fingerprint: s1, Labels: map[string]string{s1: s2, s2: s1}, Value: v, StartsAt: ts, EndsAt: &ts}
		got, err := a.AppendJSON(nil)
		want, stdErr := json.Marshal(&a)
		if stdErr != nil {
			if err == nil {
				t.Fatalf("encoding/json refuses %+v (%v), AppendJSON does not", a, stdErr)
			}
			return
		}
		require.NoError(t, err)
		// json.Marshal escapes HTML; compare with the pipeline's encoder.
		require.Equal(t, string(stdJSON(t, &a)), string(got))
		_ = want
		var back Alert
		require.NoError(t, json.Unmarshal(got, &back), "valid JSON")
	})
}
