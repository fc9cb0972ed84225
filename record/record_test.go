package record

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// TestFingerprintIsStable: alert ids, Alertmanager and webhook dedup rest
// on the fingerprint, so it is pinned: it does not depend on map order and
// does not change between versions.
func TestFingerprintIsStable(t *testing.T) {
	labels := map[string]string{"alertname": "churn", "customer_id": "c1", "tenant": "acme"}
	require.Equal(t, "e508a83cd73964b6", Fingerprint(labels))
	require.Equal(t, "cbf29ce484222325", Fingerprint(nil), "the empty set")
	require.NotEqual(t, Fingerprint(map[string]string{"a": "bc"}), Fingerprint(map[string]string{"ab": "c"}),
		"names and values are separated")
}

func TestRecordIDs(t *testing.T) {
	at := time.Date(2026, 11, 2, 10, 0, 0, 5, time.FixedZone("x", 3600))
	a := Alert{Fingerprint: "f1", State: StateFiring, StartsAt: at}
	require.Equal(t, "f1:firing:2026-11-02T09:00:00.000000005Z", a.ID(), "starts_at in UTC, to the nanosecond")
	r := Resend{TriggerID: "t1", Action: ActionCancel}
	require.Equal(t, "t1:cancel", r.ID())
}

func TestOutputReset(t *testing.T) {
	o := Output{Alerts: make([]Alert, 2, 8), Resends: make([]Resend, 1), Saturated: 3}
	require.Equal(t, 3, o.Len())
	o.Reset()
	require.Zero(t, o.Len())
	require.Zero(t, o.Saturated)
	require.Equal(t, 8, cap(o.Alerts), "capacity is kept")
}

func TestOutputOwner(t *testing.T) {
	require.Empty(t, OutputOwner(context.Background()), "none named")
	require.Equal(t, "partition 3", OutputOwner(WithOutputOwner(context.Background(), "partition 3")))
}
