package datagen

import (
	"encoding/json"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestAppendTime checks the hand-written RFC 3339 formatter against the
// standard library over instants from 1970 to 2400, leap days included.
func TestAppendTime(t *testing.T) {
	shanghai := time.FixedZone("", shiftedOffset)
	r := rand.New(rand.NewPCG(1, 2))
	instants := []int64{0, 951782400000, 951868799999, 4107542400000, 1793577600123}
	for range 20000 {
		instants = append(instants, r.Int64N(13_569_465_600_000)) // up to 2400-01-01
	}
	for _, ms := range instants {
		tm := time.UnixMilli(ms)
		tests := []struct {
			name   string
			style  int
			millis bool
			want   string
		}{
			{"utc", tsUTC, false, tm.UTC().Format("2006-01-02T15:04:05Z07:00")},
			{"utc millis", tsUTC, true, tm.UTC().Format("2006-01-02T15:04:05.000Z07:00")},
			{"shifted", tsShifted, false, tm.In(shanghai).Format("2006-01-02T15:04:05-07:00")},
			{"shifted millis", tsShifted, true, tm.In(shanghai).Format("2006-01-02T15:04:05.000-07:00")},
			{"no zone", tsNoZone, false, tm.UTC().Format("2006-01-02T15:04:05")},
			{"space", tsSpace, false, tm.UTC().Format("2006-01-02 15:04:05")},
		}
		for _, tt := range tests {
			require.Equal(t, tt.want, string(appendTime(nil, ms, tt.style, tt.millis)), "%s at %d", tt.name, ms)
		}
	}
}

func TestAppendJSONString(t *testing.T) {
	tests := []struct {
		name, in string
	}{
		{"plain", "acme"},
		{"quote and backslash", `we"ird\name`},
		{"control", "tab\there\x01"},
		{"unicode", "生鲜-ü"},
		{"invalid utf-8", "bad\xffbyte"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got string
			require.NoError(t, json.Unmarshal(appendJSONString(nil, tt.in), &got))
			want, _ := json.Marshal(tt.in) // encoding/json's view, U+FFFD for bad bytes
			var wantStr string
			require.NoError(t, json.Unmarshal(want, &wantStr))
			require.Equal(t, wantStr, got)
		})
	}
}

func TestAppendPadded(t *testing.T) {
	tests := []struct {
		n     uint64
		width int
		want  string
	}{
		{0, 7, "0000000"}, {1234, 7, "0001234"}, {12345678, 7, "12345678"}, {0, 0, ""}, {5, 1, "5"},
	}
	for _, tt := range tests {
		require.Equal(t, tt.want, string(appendPadded(nil, tt.n, tt.width)))
	}
}
