package backtest

import (
	"context"
	"fmt"
	"math"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rawevents"
)

// ClickHouse reads the raw-event tables that `--clickhouse-raw-events`
// (clickhouse.raw_events in run) fills: interactions_raw and receipts_raw
// (sink/clickhouse, migration 0002). Rows are streamed, never loaded whole:
// each cursor holds one row and clickhouse-go one block.
//
// What a stored row cannot give back: contact attributes are stored as
// their HMAC (processor/rawevents), so a rule matching or grouping on one
// sees the hash; and only records the pipeline accepted were stored, so
// the rejected and late ones of the time are absent, as they were for the
// engine.
type ClickHouse struct {
	conn driver.Conn
}

var _ Source = (*ClickHouse)(nil)

// NewClickHouse reads through conn, whose database holds the raw tables.
func NewClickHouse(conn driver.Conn) *ClickHouse { return &ClickHouse{conn: conn} }

// OpenClickHouse connects to dsn (native protocol; it dials on first use,
// so it may be built while the server is down).
func OpenClickHouse(dsn string) (*ClickHouse, error) {
	opts, err := ch.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("backtest: clickhouse dsn: %w", err)
	}
	conn, err := ch.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("backtest: opening clickhouse %s: %w", opts.Addr, err)
	}
	return &ClickHouse{conn: conn}, nil
}

// Close closes the connection.
func (c *ClickHouse) Close() error { return c.conn.Close() }

// The columns are read by name, so the table's column order (and the
// modern rendering's LowCardinality types, which scan as strings) do not
// matter. occurred_at holds whole seconds, occurred_at_nsec the rest: the
// WHERE selects whole seconds and the cursor drops what falls outside the
// exact range. ORDER BY the id last keeps duplicate rows (written twice
// before a merge) adjacent and the order deterministic.
const (
	interactionsSQL = `SELECT event_id, type, customer_id, occurred_at, occurred_at_nsec, tenant, segment, region,
	channel, amount, currency, attribute_keys, attribute_values
FROM ` + rawevents.TableInteractions + `
WHERE occurred_at >= toDateTime(?) AND occurred_at <= toDateTime(?)
ORDER BY occurred_at, occurred_at_nsec, event_id`
	receiptsSQL = `SELECT receipt_id, message_id, customer_id, channel, status, occurred_at, occurred_at_nsec, attempt,
	tenant, campaign_id, template_id, provider, error_code, recipient_tz
FROM ` + rawevents.TableReceipts + `
WHERE occurred_at >= toDateTime(?) AND occurred_at <= toDateTime(?)
ORDER BY occurred_at, occurred_at_nsec, receipt_id`
)

// Open implements Source: two queries, interactions first.
func (c *ClickHouse) Open(ctx context.Context, from, to time.Time) ([]Cursor, error) {
	// DateTime holds seconds in [0, 2^32); clamp so a far range does not
	// wrap around on the server.
	lo, hi := min(max(from.Unix(), 0), math.MaxUint32), min(max(to.Unix(), 0), math.MaxUint32)
	ri, err := c.conn.Query(ctx, interactionsSQL, lo, hi)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", rawevents.TableInteractions, err)
	}
	rr, err := c.conn.Query(ctx, receiptsSQL, lo, hi)
	if err != nil {
		ri.Close()
		return nil, fmt.Errorf("reading %s: %w", rawevents.TableReceipts, err)
	}
	return []Cursor{
		&interactionCursor{rows: ri, from: from, to: to},
		&receiptCursor{rows: rr, from: from, to: to},
	}, nil
}

// inRange reports whether t is in [from, to).
func inRange(t, from, to time.Time) bool { return !t.Before(from) && t.Before(to) }

func stamp(sec time.Time, nsec uint32) time.Time {
	return sec.UTC().Add(time.Duration(nsec))
}

type interactionCursor struct {
	rows     driver.Rows
	from, to time.Time
	ev       ingest.Interaction
	err      error
}

func (c *interactionCursor) Next() bool {
	for c.err == nil && c.rows.Next() {
		var sec time.Time
		var nsec uint32
		var keys, vals []string
		ev := ingest.Interaction{}
		if err := c.rows.Scan(&ev.EventID, &ev.Type, &ev.CustomerID, &sec, &nsec, &ev.Tenant, &ev.Segment, &ev.Region,
			&ev.Channel, &ev.Amount, &ev.Currency, &keys, &vals); err != nil {
			c.err = fmt.Errorf("reading a row of %s: %w", rawevents.TableInteractions, err)
			return false
		}
		ev.OccurredAt = stamp(sec, nsec)
		if !inRange(ev.OccurredAt, c.from, c.to) {
			continue
		}
		if len(keys) != len(vals) {
			c.err = fmt.Errorf("row %s of %s: %d attribute keys but %d values", ev.EventID, rawevents.TableInteractions, len(keys), len(vals))
			return false
		}
		if len(keys) > 0 {
			ev.Attributes = make(map[string]string, len(keys))
			for i, k := range keys {
				ev.Attributes[k] = vals[i]
			}
		}
		c.ev = ev
		return true
	}
	if c.err == nil {
		c.err = c.rows.Err()
	}
	return false
}

func (c *interactionCursor) At() time.Time                  { return c.ev.OccurredAt }
func (c *interactionCursor) Feed(e *processor.Engine) error { return e.Interaction(&c.ev) }
func (c *interactionCursor) Err() error                     { return c.err }
func (c *interactionCursor) Close() error                   { return c.rows.Close() }

type receiptCursor struct {
	rows     driver.Rows
	from, to time.Time
	rc       ingest.Receipt
	err      error
}

func (c *receiptCursor) Next() bool {
	for c.err == nil && c.rows.Next() {
		var sec time.Time
		var nsec uint32
		var attempt uint16
		rc := ingest.Receipt{}
		if err := c.rows.Scan(&rc.ReceiptID, &rc.MessageID, &rc.CustomerID, &rc.Channel, &rc.Status, &sec, &nsec, &attempt,
			&rc.Tenant, &rc.CampaignID, &rc.TemplateID, &rc.Provider, &rc.ErrorCode, &rc.RecipientTZ); err != nil {
			c.err = fmt.Errorf("reading a row of %s: %w", rawevents.TableReceipts, err)
			return false
		}
		rc.OccurredAt = stamp(sec, nsec)
		rc.Attempt = int(attempt)
		if !inRange(rc.OccurredAt, c.from, c.to) {
			continue
		}
		c.rc = rc
		return true
	}
	if c.err == nil {
		c.err = c.rows.Err()
	}
	return false
}

func (c *receiptCursor) At() time.Time                  { return c.rc.OccurredAt }
func (c *receiptCursor) Feed(e *processor.Engine) error { return e.Receipt(&c.rc) }
func (c *receiptCursor) Err() error                     { return c.err }
func (c *receiptCursor) Close() error                   { return c.rows.Close() }
