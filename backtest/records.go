package backtest

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
)

// Records is a Source over records held in memory: a draft rule tried on
// a handful of hand-written events, or the API's tests. Open sorts a copy
// of each list by occurred_at (stably: equal times keep their order).
type Records struct {
	Interactions []ingest.Interaction
	Receipts     []ingest.Receipt
}

var _ Source = Records{}

// Open implements Source.
func (r Records) Open(_ context.Context, from, to time.Time) ([]Cursor, error) {
	ev := slices.DeleteFunc(slices.Clone(r.Interactions), func(e ingest.Interaction) bool { return !inRange(e.OccurredAt, from, to) })
	slices.SortStableFunc(ev, func(a, b ingest.Interaction) int {
		return cmp.Compare(a.OccurredAt.UnixNano(), b.OccurredAt.UnixNano())
	})
	rc := slices.DeleteFunc(slices.Clone(r.Receipts), func(e ingest.Receipt) bool { return !inRange(e.OccurredAt, from, to) })
	slices.SortStableFunc(rc, func(a, b ingest.Receipt) int { return cmp.Compare(a.OccurredAt.UnixNano(), b.OccurredAt.UnixNano()) })
	return []Cursor{
		&sliceCursor[ingest.Interaction]{items: ev, i: -1,
			at:   func(e *ingest.Interaction) time.Time { return e.OccurredAt },
			feed: func(eng *processor.Engine, e *ingest.Interaction) error { return eng.Interaction(e) }},
		&sliceCursor[ingest.Receipt]{items: rc, i: -1,
			at:   func(e *ingest.Receipt) time.Time { return e.OccurredAt },
			feed: func(eng *processor.Engine, e *ingest.Receipt) error { return eng.Receipt(e) }},
	}, nil
}

type sliceCursor[T any] struct {
	items []T
	i     int
	at    func(*T) time.Time
	feed  func(*processor.Engine, *T) error
}

func (c *sliceCursor[T]) Next() bool                     { c.i++; return c.i < len(c.items) }
func (c *sliceCursor[T]) At() time.Time                  { return c.at(&c.items[c.i]) }
func (c *sliceCursor[T]) Feed(e *processor.Engine) error { return c.feed(e, &c.items[c.i]) }
func (c *sliceCursor[T]) Err() error                     { return nil }
func (c *sliceCursor[T]) Close() error                   { return nil }
