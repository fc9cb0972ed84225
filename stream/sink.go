package stream

import (
	"context"

	"github.com/crmpulse/crmpulse/processor"
)

// OutputSink receives every batch of engine output besides the Kafka topics,
// e.g. the ClickHouse sink. Write must not keep out after it returns (the
// engine reuses it) and may be called from several partitions' goroutines
// at once. Flush makes everything written so far durable: a partition's
// offsets are committed only after Flush returned nil, so a sink sees a
// batch again after a restart and must collapse repeats by the records'
// deterministic ids.
type OutputSink interface {
	Write(ctx context.Context, out *processor.Output) error
	Flush(ctx context.Context) error
}
