package stream

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestJudge walks the watchdog's verdict through sequences of looks, one
// second apart: what counts as progress, and what as a stall.
func TestJudge(t *testing.T) {
	idle := observation{parked: true}
	type look struct {
		o                 observation
		busy, stalledWant time.Duration
	}
	tests := []struct {
		name  string
		looks []look
	}{
		{
			name: "a caught-up worker waiting for input is neither busy nor stalled, however long",
			looks: []look{
				{idle, 0, 0}, {idle, 0, 0}, {idle, 0, 0}, {idle, 0, 0},
			},
		},
		{
			name: "a worker that keeps processing records is never busy on one step",
			looks: []look{
				{observation{records: 1}, 0, 0}, {observation{records: 900}, 0, 0},
				{observation{records: 5000, pending: true}, 0, 0}, {observation{records: 9000, pending: true}, 0, 0},
			},
		},
		{
			name: "a step that does not end makes the worker busy and stalled from the last progress on",
			looks: []look{
				{observation{records: 10, passes: 3}, 0, 0},
				{observation{records: 11, passes: 3}, 0, 0},
				{observation{records: 11, passes: 3}, time.Second, time.Second},
				{observation{records: 11, passes: 3}, 2 * time.Second, 2 * time.Second},
			},
		},
		{
			name: "a stuck step counts as a stall even with no more input pending",
			looks: []look{
				{idle, 0, 0},
				{observation{passes: 1}, 0, 0},
				{observation{passes: 1}, time.Second, time.Second},
			},
		},
		{
			name: "waking up on ticks while pending input never arrives is a stall, not busy",
			looks: []look{
				{observation{records: 5, passes: 1, parked: true}, 0, 0},
				{observation{records: 5, passes: 2, parked: true, pending: true}, 0, time.Second},
				{observation{records: 5, passes: 7, parked: true, pending: true}, 0, 2 * time.Second},
				{observation{records: 5, passes: 9, parked: true, pending: true}, 0, 3 * time.Second},
			},
		},
		{
			name: "a record going through ends the wait for pending input",
			looks: []look{
				{observation{records: 5, parked: true, pending: true}, 0, 0},
				{observation{records: 5, passes: 4, parked: true, pending: true}, 0, time.Second},
				{observation{records: 6, passes: 5, parked: true, pending: true}, 0, 0},
			},
		},
		{
			name: "catching up ends the stall",
			looks: []look{
				{observation{parked: true, pending: true}, 0, 0},
				{observation{passes: 3, parked: true, pending: true}, 0, time.Second},
				{observation{passes: 4, parked: true}, 0, 0},
			},
		},
		{
			name: "a step that ends and parks clears busy",
			looks: []look{
				{observation{passes: 1}, 0, 0},
				{observation{passes: 1}, time.Second, time.Second},
				{observation{passes: 2, parked: true}, 0, 0},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var s watchState
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			for i, l := range tc.looks {
				busy, stalled := s.judge(l.o, now)
				require.Equal(t, l.busy, busy, "busy at look %d", i)
				require.Equal(t, l.stalledWant, stalled, "stalled at look %d", i)
				now = now.Add(time.Second)
			}
		})
	}
}
