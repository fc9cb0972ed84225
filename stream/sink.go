package stream

import (
	"context"

	"github.com/crmpulse/crmpulse/record"
)

// OutputSink receives every batch of engine output besides the Kafka topics,
// e.g. the ClickHouse sink. Write must not keep out after it returns (the
// engine reuses it) and may be called from several partitions' goroutines
// at once. Flush makes everything written so far durable: a partition's
// offsets are committed only after Flush returned nil, so a sink sees a
// batch again after a restart and must collapse repeats by the records'
// deterministic ids.
type OutputSink interface {
	Write(ctx context.Context, out *record.Output) error
	Flush(ctx context.Context) error
}

// AlertStateSink is an optional interface of an OutputSink that keeps alert
// state per owner of engine state, such as the Alertmanager notifier.
//
// An owner is a partition worker ("0", "1", … as in the snapshot keys) or
// the group stage ("groups"); within a process a partition has at most one
// worker at a time, and Revoked(owner) comes before the next Assigned(owner).
// Different owners call from their own goroutines, at once. Every sink is
// handed the same firing slice, which it must not modify.
type AlertStateSink interface {
	// Assigned says that owner restored its state, in which firing are the
	// alerts it holds as firing (the last firing record of each). The sink
	// announces them again at once: the instance that held them before may
	// have stopped re-announcing them. Output written later with a context
	// naming owner (OutputOwner) is owner's.
	Assigned(owner string, firing []record.Alert)
	// Revoked says that owner stopped: its partition moved, or the process
	// is stopping. The sink stops re-announcing owner's firing alerts, but
	// does not resolve them, since the next owner announces them again.
	Revoked(owner string)
}

// WithOutputOwner returns ctx naming owner as the producer of the output
// written with it; see OutputOwner.
func WithOutputOwner(ctx context.Context, owner string) context.Context {
	return record.WithOutputOwner(ctx, owner)
}

// OutputOwner names the owner (see AlertStateSink) of the output an
// OutputSink receives with ctx: "" when none is known, e.g. for output
// written by a test. It is record.OutputOwner, which notifiers read
// without importing stream.
func OutputOwner(ctx context.Context) string { return record.OutputOwner(ctx) }
