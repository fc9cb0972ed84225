package processor

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// digestJSON mirrors Digest with the SPEC §4 field names, for
// encoding/json.
type digestJSON struct {
	DigestID    string             `json:"digest_id"`
	Digest      string             `json:"digest"`
	Group       map[string]string  `json:"group"`
	PeriodStart time.Time          `json:"period_start"`
	PeriodEnd   time.Time          `json:"period_end"`
	Alerts      digestAlertsJSON   `json:"alerts"`
	Metrics     map[string]float64 `json:"metrics"`
	Segments    map[string]int     `json:"segments"`
	EmittedAt   time.Time          `json:"emitted_at"`
}

type digestAlertsJSON struct {
	Fired    []digestAlertJSON `json:"fired"`
	Resolved []digestAlertJSON `json:"resolved"`
	Open     []digestAlertJSON `json:"open"`
}

type digestAlertJSON struct {
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Labels      map[string]string `json:"labels"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      *time.Time        `json:"ends_at"`
	Value       float64           `json:"value"`
}

func mirrorAlerts(as []DigestAlert) []digestAlertJSON {
	if as == nil {
		return nil
	}
	out := []digestAlertJSON{}
	for _, a := range as {
		out = append(out, digestAlertJSON(a))
	}
	return out
}

// TestDigestAppendJSONIsEncodingJSON holds the hand-written encoder to
// encoding/json byte for byte on random digests with odd strings and
// numbers.
func TestDigestAppendJSONIsEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(13, 1))
	tm := func() time.Time {
		return time.Unix(r.Int64N(4e9), r.Int64N(1e9)).In(time.FixedZone("x", 3600*(r.IntN(25)-12)))
	}
	alerts := func() []DigestAlert {
		n := r.IntN(3)
		if n == 0 {
			return []DigestAlert{}
		}
		var as []DigestAlert
		for range n {
			a := DigestAlert{Fingerprint: randomString(r), Rule: randomString(r), Labels: map[string]string{randomString(r): randomString(r)},
				StartsAt: tm(), Value: oddFloats[r.IntN(len(oddFloats))]}
			if r.IntN(2) == 0 {
				e := tm()
				a.EndsAt = &e
			}
			as = append(as, a)
		}
		return as
	}
	for range 500 {
		d := Digest{DigestID: randomString(r), Digest: randomString(r), Group: map[string]string{},
			PeriodStart: tm(), PeriodEnd: tm(), Fired: alerts(), Resolved: alerts(), Open: alerts(),
			Metrics: map[string]float64{}, Segments: map[string]int{}, EmittedAt: tm()}
		for range r.IntN(4) {
			d.Group[randomString(r)] = randomString(r)
			d.Metrics[randomString(r)] = oddFloats[r.IntN(len(oddFloats))]
			d.Segments[randomString(r)] = r.IntN(1000)
		}
		got, err := d.AppendJSON(nil)
		require.NoError(t, err)
		want := stdJSON(t, digestJSON{DigestID: d.DigestID, Digest: d.Digest, Group: d.Group, PeriodStart: d.PeriodStart,
			PeriodEnd: d.PeriodEnd, Alerts: digestAlertsJSON{mirrorAlerts(d.Fired), mirrorAlerts(d.Resolved), mirrorAlerts(d.Open)},
			Metrics: d.Metrics, Segments: d.Segments, EmittedAt: d.EmittedAt})
		require.Equal(t, string(want), string(got))
	}
}
