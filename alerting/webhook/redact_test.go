package webhook

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/processor"
)

// TestDeliveryErrorsHideURLSecrets: a webhook URL carrying a token (in
// its query) or a password: the dead letter's error names the target
// without either.
func TestDeliveryErrorsHideURLSecrets(t *testing.T) {
	dead := make(chan DeadLetter, 1)
	n, err := New(Config{Name: "alerts", URL: "http://hook:pw-secret-1@127.0.0.1:1/h?token=tok-secret-2", MaxAttempts: 1,
		OnDeadLetter: func(d DeadLetter) { dead <- d }}, nil, prometheus.NewRegistry())
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	require.NoError(t, n.Send(ctx, &processor.Alert{Fingerprint: "f", State: processor.StateFiring}))
	d := <-dead
	require.ErrorContains(t, d.Err, "http://hook:xxxxx@127.0.0.1:1/h?token=xxxxx")
	require.NotContains(t, d.Err.Error(), "pw-secret-1")
	require.NotContains(t, d.Err.Error(), "tok-secret-2")
	cancel()
	require.NoError(t, <-done)
}
