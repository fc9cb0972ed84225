package stream

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

func parseRules(t *testing.T, text string) *rules.File {
	t.Helper()
	f, err := rules.Parse([]byte(text))
	require.NoError(t, err)
	return f
}

func TestProfileEncoder(t *testing.T) {
	const head = "version: 1\nrules:\n"
	tests := []struct {
		name  string
		rules string
		// nil says no encoder: nothing is forwarded with the records.
		attrs []string
	}{
		{"group rules without customer.* forward no profile",
			head + "  - {name: g, kind: threshold, source: interactions, group_by: [tenant], window: 1h, value: count, op: '>=', threshold: 1}\n", nil},
		{"customer.* in group_by forwards the profile",
			head + "  - {name: g, kind: threshold, source: interactions, group_by: [tenant, customer.tier], window: 1h, value: count, op: '>=', threshold: 1}\n", []string{}},
		{"customer.* in match forwards the profile",
			head + "  - {name: g, kind: threshold, source: interactions, match: {customer.region: [emea]}, group_by: [tenant], window: 1h, value: count, op: '>=', threshold: 1}\n", []string{}},
		{"only the attributes the rules name are forwarded",
			head + "  - {name: g, kind: threshold, source: interactions, match: {customer.attributes.vip: ['yes']}, group_by: [tenant, customer.attributes.branch], window: 1h, value: count, op: '>=', threshold: 1}\n",
			[]string{"branch", "vip"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, groups := splitRules(parseRules(t, tc.rules))
			require.NotNil(t, groups)
			e := newProfileEncoder(groups)
			if tc.attrs == nil {
				require.Nil(t, e)
				return
			}
			require.NotNil(t, e)
			require.ElementsMatch(t, tc.attrs, e.attrs)
		})
	}
	require.Nil(t, newProfileEncoder(nil))
}

// TestProfileRoundTrip: the group stage reads the fields the partition
// engine read, and of the attributes those the group rules name.
func TestProfileRoundTrip(t *testing.T) {
	e := &profileEncoder{attrs: []string{"branch", "vip"}}
	p := &ingest.Profile{Tenant: "acme", AccountManager: "am1@example.com", Tier: "gold", Segment: "smb", Region: "emea",
		Timezone: "Europe/Paris", Attrs: []string{"birthday", "11-05", "branch", "lyon", "credit", "10"}, UpdatedAt: 1234567890}
	b := e.encode(p)
	got, err := decodeProfile(b)
	require.NoError(t, err)
	require.Equal(t, &ingest.Profile{Tenant: "acme", AccountManager: "am1@example.com", Tier: "gold", Segment: "smb", Region: "emea",
		Timezone: "Europe/Paris", Attrs: []string{"branch", "lyon"}, UpdatedAt: 1234567890}, got)
	require.Same(t, &b[0], &e.encode(p)[0], "the same version is encoded once")
	require.Nil(t, e.encode(nil))

	for _, bad := range [][]byte{nil, {}, {9}, b[:len(b)-1], append(append([]byte{}, b...), 0)} {
		_, err := decodeProfile(bad)
		require.Error(t, err, "%q", bad)
	}
}

func FuzzDecodeProfile(f *testing.F) {
	e := &profileEncoder{attrs: []string{"a"}}
	f.Add(e.encode(&ingest.Profile{Tenant: "t", Tier: "x", Attrs: []string{"a", "1"}, UpdatedAt: -5}))
	f.Add([]byte{1, 0, 0, 0, 0, 0, 0, 0, 2})
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := decodeProfile(b)
		if err != nil {
			return
		}
		require.Zero(t, len(p.Attrs)%2)
		// What decodes encodes back to the same profile, by an encoder
		// forwarding exactly its attributes (distinct names, values set).
		seen := map[string]bool{}
		var names []string
		for i := 0; i < len(p.Attrs); i += 2 {
			if seen[p.Attrs[i]] || p.Attrs[i+1] == "" {
				return
			}
			seen[p.Attrs[i]] = true
			names = append(names, p.Attrs[i])
		}
		again, err := decodeProfile((&profileEncoder{attrs: names}).encode(p))
		require.NoError(t, err)
		require.Equal(t, p, again)
	})
}

// BenchmarkProfileEncode is the per-record cost of the crmpulse-profile
// header: a run of one customer's records shares an encoding (hit), a
// record of another customer than the previous one encodes its version
// (miss).
func BenchmarkProfileEncode(b *testing.B) {
	e := &profileEncoder{attrs: []string{"branch"}}
	ps := []*ingest.Profile{
		{Tenant: "acme", AccountManager: "am1@example.com", Tier: "gold", Segment: "smb", Region: "emea", Timezone: "Europe/Paris",
			Attrs: []string{"birthday", "11-05", "branch", "lyon"}, UpdatedAt: 1},
		{Tenant: "acme", AccountManager: "am2@example.com", Tier: "platinum", Segment: "smb", Region: "apac", UpdatedAt: 2},
	}
	for _, miss := range []bool{false, true} {
		b.Run(map[bool]string{false: "hit", true: "miss"}[miss], func(b *testing.B) {
			b.ReportAllocs()
			n := 0
			for i := 0; i < b.N; i++ {
				p := ps[0]
				if miss {
					p = ps[i%2]
				}
				n += len(e.encode(p))
			}
			b.ReportMetric(float64(n)/float64(b.N), "bytes/record")
		})
	}
}
