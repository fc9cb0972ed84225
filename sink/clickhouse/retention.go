package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ErrUnsupported is returned (wrapped) for a feature the server lacks.
var ErrUnsupported = errors.New("not supported by this ClickHouse server")

// DropPartitionsOlderThan drops the monthly partitions of table whose whole
// month ends at or before before (UTC), and returns their names (YYYYMM),
// oldest first. This is retention that works on every server (18.16 has no
// TTL): a month is dropped at once, never a part of one, so a month is kept
// until all of it is older than before. customer_state and customers are
// not partitioned by time and are refused.
func DropPartitionsOlderThan(ctx context.Context, conn driver.Conn, table string, before time.Time) ([]string, error) {
	if _, ok := monthlyTables[table]; !ok {
		return nil, fmt.Errorf("dropping old partitions of %q: not a time-partitioned table of this schema", table)
	}
	rows, err := conn.Query(ctx, `SELECT DISTINCT partition FROM system.parts
		WHERE database = currentDatabase() AND table = ? AND active`, table)
	if err != nil {
		return nil, fmt.Errorf("listing the partitions of %s: %w", table, err)
	}
	var parts []string
	for rows.Next() {
		var p string
		if err := rows.Scan(&p); err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("listing the partitions of %s: %w", table, err)
		}
		parts = append(parts, p)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, fmt.Errorf("listing the partitions of %s: %w", table, err)
	}
	slices.Sort(parts)
	var dropped []string
	for _, p := range parts {
		month, err := partitionMonth(p)
		if err != nil {
			return dropped, fmt.Errorf("partition %q of %s: %w", p, table, err)
		}
		if month.AddDate(0, 1, 0).After(before) {
			continue
		}
		// p is six digits (checked), so it is safe to put in the statement.
		if err := conn.Exec(ctx, "ALTER TABLE "+table+" DROP PARTITION "+p); err != nil {
			return dropped, fmt.Errorf("dropping partition %s of %s: %w", p, table, err)
		}
		dropped = append(dropped, p)
	}
	return dropped, nil
}

// partitionMonth reads a toYYYYMM partition name.
func partitionMonth(p string) (time.Time, error) {
	if len(p) != 6 {
		return time.Time{}, errors.New("not a YYYYMM partition")
	}
	n, err := strconv.Atoi(p)
	if err != nil || n%100 < 1 || n%100 > 12 {
		return time.Time{}, errors.New("not a YYYYMM partition")
	}
	return time.Date(n/100, time.Month(n%100), 1, 0, 0, 0, 0, time.UTC), nil
}

// SetTTL makes the server delete table's rows keep after their time column
// (window_start, starts_at or not_before) by itself, on servers that have
// TTL (20.3+ here, see FeaturesOf); on older ones it returns an error
// wrapping ErrUnsupported, and DropPartitionsOlderThan is the way. keep
// is rounded up to whole days.
func SetTTL(ctx context.Context, conn driver.Conn, table string, keep time.Duration) error {
	stmt, err := ttlStatement(table, keep)
	if err != nil {
		return err
	}
	sv, err := DetectServer(ctx, conn)
	if err != nil {
		return err
	}
	if !FeaturesOf(sv).TTL {
		return fmt.Errorf("setting the TTL of %s: %w (ClickHouse %s; use DropPartitionsOlderThan)", table, ErrUnsupported, sv)
	}
	if err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("setting the TTL of %s: %w", table, err)
	}
	return nil
}

// ttlStatement is the ALTER that SetTTL runs.
func ttlStatement(table string, keep time.Duration) (string, error) {
	column, ok := monthlyTables[table]
	if keep <= 0 {
		return "", fmt.Errorf("setting the TTL of %s: keep must be positive, got %s", table, keep)
	}
	if !ok {
		return "", fmt.Errorf("setting the TTL of %q: not a time-partitioned table of this schema", table)
	}
	days := int64((keep + 24*time.Hour - 1) / (24 * time.Hour))
	return fmt.Sprintf("ALTER TABLE %s MODIFY TTL %s + INTERVAL %d DAY", table, column, days), nil
}
