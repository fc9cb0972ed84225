package clickhouse

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rawevents"
)

// TestRawEventsIntoClickHouse: the rawevents component's rows land in
// interactions_raw and receipts_raw; written twice (a replay, a restart)
// they are stored once as far as FINAL is concerned; a contact value is
// never stored in clear, only its HMAC, by which it can be found.
func TestRawEventsIntoClickHouse(t *testing.T) {
	dsn, conn := migrated(t)
	ctx := context.Background()
	comp, err := rawevents.New(rawevents.Config{HashKey: "integration-secret-of-32-bytes-or-more", Shard: 2})
	require.NoError(t, err)

	const customers = 50
	email := func(i int) string { return fmt.Sprintf("person%02d@example.com", i) }
	out := &processor.Output{}
	for i := range customers {
		comp.Interaction(&ingest.Interaction{EventID: fmt.Sprint("e", i), Type: "purchase", CustomerID: fmt.Sprint("c", i),
			OccurredAt: t0.Add(time.Duration(i) * time.Minute), Tenant: "acme", Segment: "smb", Region: "emea", Channel: "web",
			Amount: float64(i), Currency: "EUR",
			Attributes: map[string]string{"Email": email(i), "phone": fmt.Sprintf("+3361234%04d", i), "plan": "gold"}}, out)
		comp.Receipt(&ingest.Receipt{ReceiptID: fmt.Sprint("r", i), MessageID: fmt.Sprint("m", i), CustomerID: fmt.Sprint("c", i),
			Channel: "email", Status: "delivered", OccurredAt: t0.Add(time.Duration(i) * time.Minute), Attempt: 1, Tenant: "acme"}, out)
	}

	s, _ := startSink(t, Config{DSN: dsn, FlushInterval: 50 * time.Millisecond})
	writeAndFlush(t, s, out)
	first := map[string][]string{TableInteractions: dump(t, conn, TableInteractions), TableReceipts: dump(t, conn, TableReceipts)}
	writeAndFlush(t, s, out)
	for table, rows := range first {
		require.Len(t, rows, customers, table)
		require.Equal(t, rows, dump(t, conn, table), "%s: a second write changes nothing under FINAL", table)
		var n uint64
		require.NoError(t, conn.QueryRow(ctx, "SELECT count() FROM "+table).Scan(&n))
		require.GreaterOrEqual(t, n, uint64(customers), "%s: both copies may be on disk until a merge", table)
	}

	// dump renders every column; no contact value appears in any of them.
	all := strings.Join(append(first[TableInteractions], first[TableReceipts]...), "\n")
	for i := range customers {
		require.NotContains(t, all, email(i))
		require.NotContains(t, all, fmt.Sprintf("+3361234%04d", i))
	}
	require.Contains(t, all, "'gold'", "other attributes are kept")

	// The hash of a known value finds its row, through the parallel arrays.
	var cust string
	require.NoError(t, conn.QueryRow(ctx,
		"SELECT customer_id FROM interactions_raw FINAL WHERE attribute_values[indexOf(attribute_keys, 'Email')] = ?",
		comp.Hash(email(7))).Scan(&cust))
	require.Equal(t, "c7", cust)
	var shard uint16
	require.NoError(t, conn.QueryRow(ctx, "SELECT any(shard) FROM receipts_raw").Scan(&shard))
	require.Equal(t, uint16(2), shard)
}
