package record

import "context"

// The owner of an Output is the partition worker or group stage that
// produced it (stream.AlertStateSink); the streaming driver names it in the
// context of every Write, so that a notifier keeping alert state can file
// the alerts under it. It lives here, not in stream, so that notifiers can
// read it without linking the streaming driver.

type ownerKey struct{}

// WithOutputOwner returns ctx naming owner as the producer of the output
// written with it; see OutputOwner.
func WithOutputOwner(ctx context.Context, owner string) context.Context {
	return context.WithValue(ctx, ownerKey{}, owner)
}

// OutputOwner names the owner of the output a sink receives with ctx: ""
// when none is known, e.g. for output written by a test.
func OutputOwner(ctx context.Context) string {
	s, _ := ctx.Value(ownerKey{}).(string)
	return s
}
