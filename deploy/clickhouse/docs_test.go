package clickhouse_test

import (
	"fmt"
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	sink "github.com/crmpulse/crmpulse/sink/clickhouse"
	"github.com/crmpulse/crmpulse/sink/clickhouse/chdbtest"
)

// docFile is the page whose SQL TestDocQueries runs.
var docFile = repoPath("docs", "clickhouse.md")

// docBlock is one ```sql block of the page; its first line is a comment
// naming it.
type docBlock struct{ title, sql string }

var (
	sqlBlock   = regexp.MustCompile("(?s)```sql\n(.*?)```")
	timeFilter = regexp.MustCompile(`\$__timeFilter\((\w+)\)`)
)

func docBlocks(t *testing.T) []docBlock {
	t.Helper()
	src, err := os.ReadFile(docFile)
	require.NoError(t, err)
	var blocks []docBlock
	seen := map[string]bool{}
	for _, m := range sqlBlock.FindAllStringSubmatch(string(src), -1) {
		first, rest, _ := strings.Cut(m[1], "\n")
		require.True(t, strings.HasPrefix(first, "-- "), "every sql block of %s starts with a -- title: %q", docFile, first)
		title := strings.TrimPrefix(first, "-- ")
		require.False(t, seen[title], "two sql blocks titled %q", title)
		seen[title] = true
		blocks = append(blocks, docBlock{title: title, sql: strings.TrimSpace(rest)})
	}
	require.NotEmpty(t, blocks)
	return blocks
}

// docSeed is the data the page's queries run on: two input partitions'
// partial rows of a group (shard 0 and 1), exact duplicates (a retried
// insert) and stale copies (an older version of the same row), which a
// correct query must not count.
const docSeed = `
INSERT INTO revenue (tenant, shard, segment, region, channel, window_start, window_end, amount, purchases, refunds, version) VALUES
  ('acme', 0, 'smb', 'eu', 'email', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 100.5, 3, 0, 2),
  ('acme', 0, 'smb', 'eu', 'email', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 999, 9, 0, 1),
  ('acme', 1, 'smb', 'eu', 'email', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 20, 1, 0, 2),
  ('acme', 1, 'smb', 'eu', 'email', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 20, 1, 0, 2),
  ('acme', 0, 'enterprise', 'us', 'sms', '2026-11-30 11:00:00', '2026-11-30 12:00:00', -5, 0, 1, 2),
  ('acme', 0, 'smb', 'eu', 'email', '2026-11-29 09:00:00', '2026-11-29 10:00:00', 40, 1, 0, 2),
  ('other', 0, 'smb', 'eu', 'email', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 7, 1, 0, 2);
INSERT INTO activity_daily (tenant, shard, customer_id, window_start, window_end, events, last_activity, version) VALUES
  ('acme', 0, 'c1', '2026-11-30 00:00:00', '2026-12-01 00:00:00', 3, '2026-11-30 15:00:00', 1),
  ('acme', 1, 'c1', '2026-11-30 00:00:00', '2026-12-01 00:00:00', 2, '2026-11-30 16:00:00', 1),
  ('acme', 0, 'c2', '2026-11-30 00:00:00', '2026-12-01 00:00:00', 1, '2026-11-30 08:00:00', 1),
  ('acme', 0, 'c2', '2026-11-30 00:00:00', '2026-12-01 00:00:00', 1, '2026-11-30 08:00:00', 1),
  ('acme', 0, 'c1', '2026-11-29 00:00:00', '2026-11-30 00:00:00', 4, '2026-11-29 12:00:00', 1);
INSERT INTO complaints (tenant, shard, region, segment, window_start, window_end, complaints, tickets_opened, resolved, version) VALUES
  ('acme', 0, 'eu', 'smb', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 2, 1, 0, 1),
  ('acme', 1, 'eu', 'smb', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 1, 1, 1, 1),
  ('acme', 1, 'eu', 'smb', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 1, 1, 1, 1),
  ('acme', 0, 'us', 'enterprise', '2026-11-30 12:00:00', '2026-11-30 13:00:00', 1, 0, 0, 1);
INSERT INTO delivery_status (tenant, shard, channel, provider, campaign_id, status, window_start, window_end, receipts, version) VALUES
  ('acme', 0, 'email', 'sendgrid', 'c1', 'sent', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 10, 1),
  ('acme', 0, 'email', 'sendgrid', 'c1', 'delivered', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 5, 1),
  ('acme', 1, 'email', 'sendgrid', 'c1', 'delivered', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 3, 1),
  ('acme', 1, 'email', 'sendgrid', 'c1', 'delivered', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 3, 1),
  ('acme', 1, 'email', 'sendgrid', 'c1', 'hard_bounce', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 1, 1),
  ('acme', 0, 'email', 'sendgrid', 'c1', 'failed', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 1, 1),
  ('acme', 0, 'email', 'sendgrid', 'c1', 'opened', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 4, 1),
  ('acme', 0, 'sms', 'twilio', 'c2', 'sent', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 5, 1),
  ('acme', 0, 'sms', 'twilio', 'c2', 'delivered', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 5, 1);
INSERT INTO resend_outcomes (trigger_id, outcome, policy, message_id, customer_id, tenant, channel, attempt, reason, not_before, at, latency_ms, version) VALUES
  ('t1', 'triggered', 'sms_fallback', 'm1', 'c1', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:00', 0, 1),
  ('t1', 'sent', 'sms_fallback', 'm1', 'c1', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:02', 2000, 1),
  ('t1', 'delivered', 'sms_fallback', 'm1', 'c1', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:05', 5000, 1),
  ('t1', 'delivered', 'sms_fallback', 'm1', 'c1', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:05', 5000, 1),
  ('t2', 'triggered', 'sms_fallback', 'm2', 'c2', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:00', 0, 1),
  ('t2', 'expired', 'sms_fallback', 'm2', 'c2', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 3600000, 1),
  ('t3', 'triggered', 'sms_fallback', 'm3', 'c3', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:00', 0, 1),
  ('t3', 'cancelled', 'sms_fallback', 'm3', 'c3', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:00', 0, 1),
  ('t4', 'triggered', 'email_retry', 'm4', 'c4', 'acme', 'email', 1, 'soft_bounce', '2026-11-30 10:00:00', '2026-11-30 10:00:00', 0, 1);
INSERT INTO alert_history (rule, starts_at, fingerprint, starts_at_nsec, state, kind, severity, tenant, customer_id, label_keys, label_values, annotation_keys, annotation_values, value, threshold, ends_at, window_start, window_end, emitted_at, version) VALUES
  ('revenue_drop', '2026-11-30 10:00:00', 'fpa', 0, 'firing', 'drop', 'critical', 'acme', '', ['segment', 'tenant'], ['smb', 'acme'], [], [], 0.4, 0.5, NULL, NULL, NULL, '2026-11-30 10:00:05', 1),
  ('revenue_drop', '2026-11-30 10:00:00', 'fpa', 0, 'resolved', 'drop', 'critical', 'acme', '', ['segment', 'tenant'], ['smb', 'acme'], [], [], 0.6, 0.5, '2026-11-30 12:00:00', NULL, NULL, '2026-11-30 12:00:05', 2),
  ('revenue_drop', '2026-11-30 11:00:00', 'fpb', 0, 'firing', 'drop', 'warning', 'acme', '', ['segment', 'tenant'], ['enterprise', 'acme'], [], [], 0.3, 0.5, NULL, NULL, NULL, '2026-11-30 11:00:05', 1),
  ('revenue_drop', '2026-11-30 11:00:00', 'fpb', 0, 'firing', 'drop', 'warning', 'acme', '', ['segment', 'tenant'], ['enterprise', 'acme'], [], [], 0.3, 0.5, NULL, NULL, NULL, '2026-11-30 11:00:05', 1),
  ('birthday', '2026-11-25 08:00:00', 'fpc1', 0, 'firing', 'calendar', 'info', 'acme', 'c1', ['account_manager', 'customer_id', 'tenant'], ['am1@example.com', 'c1', 'acme'], [], [], 0, 0, NULL, NULL, NULL, '2026-11-25 08:00:00', 1),
  ('birthday', '2026-11-25 08:00:00', 'fpc1', 0, 'firing', 'calendar', 'info', 'acme', 'c1', ['account_manager', 'customer_id', 'tenant'], ['am1@example.com', 'c1', 'acme'], [], [], 0, 0, NULL, NULL, NULL, '2026-11-25 08:00:00', 1),
  ('birthday', '2026-11-25 08:00:00', 'fpc1', 0, 'resolved', 'calendar', 'info', 'acme', 'c1', ['account_manager', 'customer_id', 'tenant'], ['am1@example.com', 'c1', 'acme'], [], [], 0, 0, '2026-11-25 20:00:00', NULL, NULL, '2026-11-25 08:00:00', 2),
  ('invoice_overdue', '2026-11-28 09:00:00', 'fpd2', 0, 'firing', 'deadline', 'warning', 'acme', 'c2', ['account_manager', 'customer_id', 'tenant'], ['am1@example.com', 'c2', 'acme'], [], [], 0, 0, NULL, NULL, NULL, '2026-11-28 09:00:00', 1),
  ('invoice_overdue', '2026-11-28 09:00:00', 'fpd2', 0, 'resolved', 'deadline', 'warning', 'acme', 'c2', ['account_manager', 'customer_id', 'tenant'], ['am1@example.com', 'c2', 'acme'], [], [], 0, 0, '2026-11-29 09:00:00', NULL, NULL, '2026-11-28 09:00:00', 2),
  ('invoice_overdue', '2026-11-28 10:00:00', 'fpd3', 0, 'firing', 'deadline', 'warning', 'acme', 'c3', ['account_manager', 'customer_id', 'tenant'], ['am2@example.com', 'c3', 'acme'], [], [], 0, 0, NULL, NULL, NULL, '2026-11-28 10:00:00', 1),
  ('invoice_overdue', '2026-11-28 10:00:00', 'fpd3', 0, 'resolved', 'deadline', 'warning', 'acme', 'c3', ['account_manager', 'customer_id', 'tenant'], ['am2@example.com', 'c3', 'acme'], [], [], 0, 0, '2026-11-29 10:00:00', NULL, NULL, '2026-11-28 10:00:00', 2),
  ('birthday', '2026-11-10 08:00:00', 'fpc4', 0, 'firing', 'calendar', 'info', 'acme', 'c4', ['account_manager', 'customer_id', 'tenant'], ['am1@example.com', 'c4', 'acme'], [], [], 0, 0, NULL, NULL, NULL, '2026-11-10 08:00:00', 1),
  ('birthday', '2026-11-10 08:00:00', 'fpc4', 0, 'resolved', 'calendar', 'info', 'acme', 'c4', ['account_manager', 'customer_id', 'tenant'], ['am1@example.com', 'c4', 'acme'], [], [], 0, 0, '2026-11-10 20:00:00', NULL, NULL, '2026-11-10 08:00:00', 2),
  ('contract_renewal', '2026-11-05 09:00:00', 'fpc5', 0, 'firing', 'calendar', 'info', 'acme', 'c5', ['account_manager', 'customer_id', 'tenant'], ['am1@example.com', 'c5', 'acme'], [], [], 0, 0, NULL, NULL, NULL, '2026-11-05 09:00:00', 1),
  ('contract_renewal', '2026-11-05 09:00:00', 'fpc5', 0, 'resolved', 'calendar', 'info', 'acme', 'c5', ['account_manager', 'customer_id', 'tenant'], ['am1@example.com', 'c5', 'acme'], [], [], 0, 0, '2026-11-06 09:00:00', NULL, NULL, '2026-11-05 09:00:00', 2);
INSERT INTO resend_triggers (tenant, trigger_id, action, policy, message_id, customer_id, channel, attempt, reason, not_before, created_at, version) VALUES
  ('acme', 't1', 'resend', 'sms_fallback', 'm1', 'c1', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 09:59:00', 1),
  ('acme', 't1', 'resend', 'sms_fallback', 'm1', 'c1', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 09:59:00', 1),
  ('acme', 't2', 'resend', 'sms_fallback', 'm2', 'c2', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 09:59:00', 1),
  ('acme', 't3', 'resend', 'sms_fallback', 'm3', 'c3', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 09:59:00', 1),
  ('acme', 't3', 'cancel', 'sms_fallback', 'm3', 'c3', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 09:59:30', 1);
INSERT INTO customer_state (tenant, customer_id, rule, churn_state, last_activity, changed_at, idle_for_seconds, fingerprint, version) VALUES
  ('acme', 'c1', 'inactive_30d', 'churned', '2026-10-01 00:00:00', '2026-10-31 00:00:00', 2592000, 'fp1', 100),
  ('acme', 'c1', 'inactive_30d', 'active', '2026-11-05 00:00:00', '2026-11-05 00:00:00', 2592000, 'fp1', 200),
  ('acme', 'c2', 'inactive_30d', 'churned', '2026-10-10 00:00:00', '2026-11-09 00:00:00', 2592000, 'fp2', 150),
  ('acme', 'c2', 'inactive_30d', 'churned', '2026-10-10 00:00:00', '2026-11-09 00:00:00', 2592000, 'fp2', 150),
  ('acme', 'c3', 'inactive_30d', 'active', '2026-11-20 00:00:00', '2026-11-20 00:00:00', 2592000, 'fp3', 300);
INSERT INTO customers (tenant, customer_id, updated_at, account_manager, tier, segment, region, timezone, attribute_keys, attribute_values, deleted, version) VALUES
  ('acme', 'c1', '2026-11-01 00:00:00', 'am1@example.com', 'gold', 'smb', 'eu', 'Europe/Paris', ['birthday', 'contract_end'], ['5d41402abc4b2a76', '2027-06-30'], 0, 100),
  ('acme', 'c1', '2026-11-20 00:00:00', 'am1@example.com', 'platinum', 'smb', 'eu', 'Europe/Paris', ['birthday', 'contract_end'], ['5d41402abc4b2a76', '2027-06-30'], 0, 200),
  ('acme', 'c2', '2026-11-01 00:00:00', 'am1@example.com', 'gold', 'smb', 'eu', 'UTC', [], [], 0, 100),
  ('acme', 'c2', '2026-11-01 00:00:00', 'am1@example.com', 'gold', 'smb', 'eu', 'UTC', [], [], 0, 100),
  ('acme', 'c3', '2026-11-01 00:00:00', 'am2@example.com', 'gold', 'enterprise', 'us', 'America/New_York', [], [], 0, 100),
  ('acme', 'c4', '2026-11-01 00:00:00', 'am1@example.com', 'gold', 'smb', 'eu', 'UTC', [], [], 0, 100),
  ('acme', 'c4', '2026-11-15 00:00:00', '', '', '', '', '', [], [], 1, 150),
  ('acme', 'c5', '2026-11-01 00:00:00', 'am1@example.com', 'silver', 'smb', 'eu', 'UTC', [], [], 0, 100),
  ('acme', 'c5', '2026-11-10 00:00:00', 'am2@example.com', 'silver', 'smb', 'eu', 'UTC', [], [], 0, 120),
  ('other', 'c9', '2026-11-01 00:00:00', 'am1@example.com', 'gold', 'smb', 'eu', 'UTC', [], [], 0, 100);
INSERT INTO account_manager_alerts (tenant, account_manager, starts_at, rule, fingerprint, starts_at_nsec, state, kind, severity, customer_id, ends_at, version) VALUES
  ('acme', 'am1@example.com', '2026-11-25 08:00:00', 'birthday', 'fpc1', 0, 'firing', 'calendar', 'info', 'c1', NULL, 1),
  ('acme', 'am1@example.com', '2026-11-25 08:00:00', 'birthday', 'fpc1', 0, 'firing', 'calendar', 'info', 'c1', NULL, 1),
  ('acme', 'am1@example.com', '2026-11-25 08:00:00', 'birthday', 'fpc1', 0, 'resolved', 'calendar', 'info', 'c1', '2026-11-25 20:00:00', 2),
  ('acme', 'am1@example.com', '2026-11-28 09:00:00', 'invoice_overdue', 'fpd2', 0, 'firing', 'deadline', 'warning', 'c2', NULL, 1),
  ('acme', 'am1@example.com', '2026-11-28 09:00:00', 'invoice_overdue', 'fpd2', 0, 'resolved', 'deadline', 'warning', 'c2', '2026-11-29 09:00:00', 2),
  ('acme', 'am2@example.com', '2026-11-28 10:00:00', 'invoice_overdue', 'fpd3', 0, 'firing', 'deadline', 'warning', 'c3', NULL, 1),
  ('acme', 'am2@example.com', '2026-11-28 10:00:00', 'invoice_overdue', 'fpd3', 0, 'resolved', 'deadline', 'warning', 'c3', '2026-11-29 10:00:00', 2),
  ('acme', 'am1@example.com', '2026-11-10 08:00:00', 'birthday', 'fpc4', 0, 'firing', 'calendar', 'info', 'c4', NULL, 1),
  ('acme', 'am1@example.com', '2026-11-10 08:00:00', 'birthday', 'fpc4', 0, 'resolved', 'calendar', 'info', 'c4', '2026-11-10 20:00:00', 2),
  ('acme', 'am1@example.com', '2026-11-05 09:00:00', 'contract_renewal', 'fpc5', 0, 'firing', 'calendar', 'info', 'c5', NULL, 1),
  ('acme', 'am1@example.com', '2026-11-05 09:00:00', 'contract_renewal', 'fpc5', 0, 'resolved', 'calendar', 'info', 'c5', '2026-11-06 09:00:00', 2);
INSERT INTO interactions_raw (tenant, shard, customer_id, occurred_at, event_id, occurred_at_nsec, type, segment, region, channel, amount, currency, attribute_keys, attribute_values, version) VALUES
  ('acme', 0, 'c1', '2026-11-30 09:00:00', 'e1', 0, 'purchase', 'smb', 'eu', 'web', 12.5, 'EUR', [], [], 1),
  ('acme', 0, 'c1', '2026-11-30 09:00:00', 'e1', 0, 'purchase', 'smb', 'eu', 'web', 12.5, 'EUR', [], [], 2),
  ('acme', 0, 'c1', '2026-11-30 10:00:00', 'e2', 0, 'login', 'smb', 'eu', 'app', 0, '', [], [], 1),
  ('acme', 1, 'c2', '2026-11-30 11:00:00', 'e3', 0, 'login', 'smb', 'eu', 'app', 0, '', [], [], 1),
  ('acme', 1, 'c2', '2026-11-30 12:00:00', 'e4', 0, 'purchase', 'smb', 'eu', 'web', 30, 'EUR', [], [], 1),
  ('acme', 1, 'c2', '2026-11-30 13:00:00', 'e5', 0, 'refund', 'smb', 'eu', 'web', 5, 'EUR', [], [], 1),
  ('acme', 1, 'c2', '2026-10-15 12:00:00', 'e6', 0, 'purchase', 'smb', 'eu', 'web', 50, 'EUR', [], [], 1),
  ('other', 0, 'c9', '2026-11-30 12:00:00', 'e7', 0, 'purchase', 'smb', 'eu', 'web', 100, 'EUR', [], [], 1);
INSERT INTO segment_transitions (tenant, segment_set, customer_id, key_id, at, at_nsec, from_class, to_class, key_keys, key_values, emitted_at, version) VALUES
  ('acme', 'lifecycle', 'c1', 'k1', '2026-11-28 10:00:00', 0, '', 'new', ['customer_id', 'tenant'], ['c1', 'acme'], '2026-11-28 10:00:00', 1),
  ('acme', 'lifecycle', 'c1', 'k1', '2026-11-29 12:00:00', 0, 'new', 'loyal', ['customer_id', 'tenant'], ['c1', 'acme'], '2026-11-29 12:00:00', 1),
  ('acme', 'lifecycle', 'c1', 'k1', '2026-11-30 08:00:00', 0, 'loyal', 'at_risk', ['customer_id', 'tenant'], ['c1', 'acme'], '2026-11-30 08:00:00', 1),
  ('acme', 'lifecycle', 'c1', 'k1', '2026-11-30 08:00:00', 0, 'loyal', 'at_risk', ['customer_id', 'tenant'], ['c1', 'acme'], '2026-11-30 08:00:00', 2),
  ('acme', 'lifecycle', 'c2', 'k2', '2026-11-29 09:00:00', 0, '', 'new', ['customer_id', 'tenant'], ['c2', 'acme'], '2026-11-29 09:00:00', 1),
  ('acme', 'lifecycle', 'c2', 'k2', '2026-11-30 20:00:00', 0, 'new', 'active', ['customer_id', 'tenant'], ['c2', 'acme'], '2026-11-30 20:00:00', 1),
  ('acme', 'lifecycle', 'c3', 'k3', '2026-11-27 23:00:00', 0, '', 'potential', ['customer_id', 'tenant'], ['c3', 'acme'], '2026-11-27 23:00:00', 1),
  ('other', 'lifecycle', 'c9', 'k9', '2026-11-29 10:00:00', 0, '', 'new', ['customer_id', 'tenant'], ['c9', 'other'], '2026-11-29 10:00:00', 1);
INSERT INTO segment_current (tenant, segment_set, customer_id, key_id, class, since, since_nsec, previous_class, key_keys, key_values, version) VALUES
  ('acme', 'lifecycle', 'c1', 'k1', 'new', '2026-11-28 10:00:00', 0, '', ['customer_id', 'tenant'], ['c1', 'acme'], 100),
  ('acme', 'lifecycle', 'c1', 'k1', 'at_risk', '2026-11-30 08:00:00', 0, 'loyal', ['customer_id', 'tenant'], ['c1', 'acme'], 300),
  ('acme', 'lifecycle', 'c1', 'k1', 'loyal', '2026-11-29 12:00:00', 0, 'new', ['customer_id', 'tenant'], ['c1', 'acme'], 200),
  ('acme', 'lifecycle', 'c1', 'k1', 'at_risk', '2026-11-30 08:00:00', 0, 'loyal', ['customer_id', 'tenant'], ['c1', 'acme'], 300),
  ('acme', 'lifecycle', 'c2', 'k2', 'active', '2026-11-30 20:00:00', 0, 'new', ['customer_id', 'tenant'], ['c2', 'acme'], 250),
  ('acme', 'lifecycle', 'c2', 'k2', 'new', '2026-11-29 09:00:00', 0, '', ['customer_id', 'tenant'], ['c2', 'acme'], 150),
  ('acme', 'lifecycle', 'c3', 'k3', 'potential', '2026-11-27 23:00:00', 0, '', ['customer_id', 'tenant'], ['c3', 'acme'], 50),
  ('other', 'lifecycle', 'c9', 'k9', 'new', '2026-11-29 10:00:00', 0, '', ['customer_id', 'tenant'], ['c9', 'other'], 120);
INSERT INTO digests (tenant, digest, account_manager, digest_id, period_start, period_end, group_keys, group_values, fired, resolved, open, alert_fingerprints, metric_names, metric_values, segment_classes, segment_counts, body, emitted_at, version) VALUES
  ('acme', 'account_manager_daily', 'am1@example.com', 'd1', '2026-11-29 01:00:00', '2026-11-30 01:00:00', ['account_manager', 'tenant'], ['am1@example.com', 'acme'], 1, 0, 1, ['f1', 'f1'], ['complaints', 'revenue'], [0, 40], ['at_risk', 'loyal'], [0, 1], '{}', '2026-11-30 01:00:05', 1),
  ('acme', 'account_manager_daily', 'am1@example.com', 'd1', '2026-11-29 01:00:00', '2026-11-30 01:00:00', ['account_manager', 'tenant'], ['am1@example.com', 'acme'], 1, 0, 1, ['f1', 'f1'], ['complaints', 'revenue'], [0, 40], ['at_risk', 'loyal'], [0, 1], '{}', '2026-11-30 02:00:00', 2),
  ('acme', 'account_manager_daily', 'am1@example.com', 'd2', '2026-11-30 01:00:00', '2026-12-01 01:00:00', ['account_manager', 'tenant'], ['am1@example.com', 'acme'], 0, 1, 0, ['f1'], ['complaints', 'revenue'], [2, 12.5], ['at_risk', 'loyal'], [1, 0], '{}', '2026-12-01 01:00:05', 1),
  ('acme', 'account_manager_daily', 'am2@example.com', 'd3', '2026-11-30 01:00:00', '2026-12-01 01:00:00', ['account_manager', 'tenant'], ['am2@example.com', 'acme'], 0, 0, 0, [], ['complaints', 'revenue'], [0, 25], ['at_risk', 'loyal'], [0, 0], '{}', '2026-12-01 01:00:05', 1),
  ('acme', 'tenant_weekly', '', 'd4', '2026-11-23 01:00:00', '2026-11-30 01:00:00', ['tenant'], ['acme'], 3, 1, 2, ['f1', 'f2', 'f3', 'f2', 'f1', 'f3'], ['revenue'], [77.5], [], [], '{}', '2026-11-30 01:00:05', 1),
  ('other', 'account_manager_daily', 'am1@example.com', 'd9', '2026-11-30 01:00:00', '2026-12-01 01:00:00', ['account_manager', 'tenant'], ['am1@example.com', 'other'], 5, 0, 0, [], ['complaints', 'revenue'], [0, 999], ['at_risk', 'loyal'], [0, 0], '{}', '2026-12-01 01:00:05', 1);
`

// docWant is what each query of the page returns on docSeed
// (TabSeparated). Worked out by hand from the seed, not copied from a run:
// e.g. revenue on 2026-11-30 for smb is 100.5 (shard 0's newest copy, not
// the stale 999) + 20 (shard 1, once).
var docWant = map[string]string{
	"the records behind a churn alert": "2026-11-30 10:00:00\tlogin\tapp\t0\n" +
		"2026-11-30 09:00:00\tpurchase\tweb\t12.5\n",
	"revenue per segment per day (FINAL)": "2026-11-29\tsmb\t40.0000\t1\n" +
		"2026-11-30\tenterprise\t-5.0000\t0\n" +
		"2026-11-30\tsmb\t120.5000\t4\n",
	"revenue per segment per day (argMax)": "2026-11-29\tsmb\t40.0000\t1\n" +
		"2026-11-30\tenterprise\t-5.0000\t0\n" +
		"2026-11-30\tsmb\t120.5000\t4\n",
	// sendgrid: delivered 5 + 3, failed 1 + 1 (sent and opened are not ends).
	"delivery failure rate per provider": "sendgrid\t2\t10\t0.2\n" +
		"twilio\t0\t5\t0\n",
	"active customers per day": "2026-11-29\t1\t4\n" +
		"2026-11-30\t2\t6\n",
	"complaints per region per day": "2026-11-30\teu\t3\t2\t1\n" +
		"2026-11-30\tus\t1\t0\t0\n",
	"churned customers now":               "acme\tinactive_30d\tc2\t2026-10-10 00:00:00\t2026-11-09 00:00:00\n",
	"churned customers per rule (argMax)": "acme\tinactive_30d\t1\t2\n",
	"alerts firing now":                   "revenue_drop\tfpb\t2026-11-30 11:00:00\twarning\tenterprise\n",
	"resend recovery rate per policy": "email_retry\t1\t0\t0\n" +
		"sms_fallback\t3\t1\t0.3333\n",
	"resends and cancels per day": "2026-11-30\t3\t1\n",
	// c1's newer version (platinum) wins, c2's duplicate counts once, c4 is
	// deleted, c5 moved to am2, c9 is another tenant's.
	"customers per account manager and tier": "am1@example.com\tgold\t1\n" +
		"am1@example.com\tplatinum\t1\n" +
		"am2@example.com\tgold\t1\n" +
		"am2@example.com\tsilver\t1\n",
	// am1's customers now are c1 and c2 (c4 deleted, c5 handed to am2);
	// c1's duplicate firing row counts once.
	"alerts and reminders of one account manager's customers": "2026-11-25 08:00:00\tbirthday\tcalendar\tc1\tfiring\n" +
		"2026-11-25 08:00:00\tbirthday\tcalendar\tc1\tresolved\n" +
		"2026-11-28 09:00:00\tinvoice_overdue\tdeadline\tc2\tfiring\n" +
		"2026-11-28 09:00:00\tinvoice_overdue\tdeadline\tc2\tresolved\n",
	// Owner when each fired: c5's renewal and c4's birthday were am1's.
	"alerts that went to one account manager": "2026-11-05 09:00:00\tcontract_renewal\tcalendar\tc5\t1\n" +
		"2026-11-10 08:00:00\tbirthday\tcalendar\tc4\t1\n" +
		"2026-11-25 08:00:00\tbirthday\tcalendar\tc1\t1\n" +
		"2026-11-28 09:00:00\tinvoice_overdue\tdeadline\tc2\t1\n",
	// Segments: c1's at_risk row is there twice (a replay), its older
	// classes have lower versions; c3 has no revenue, c2's October
	// purchase is before the range and its refund subtracts.
	"customers per class now": "active\t1\t2026-11-30 20:00:00\n" +
		"at_risk\t1\t2026-11-30 08:00:00\n" +
		"potential\t1\t2026-11-27 23:00:00\n",
	"customers per class at the end of each day": "2026-11-28\tnew\t1\n" +
		"2026-11-28\tpotential\t1\n" +
		"2026-11-29\tloyal\t1\n" +
		"2026-11-29\tnew\t1\n" +
		"2026-11-29\tpotential\t1\n" +
		"2026-11-30\tactive\t1\n" +
		"2026-11-30\tat_risk\t1\n" +
		"2026-11-30\tpotential\t1\n" +
		"2026-12-01\tactive\t1\n" +
		"2026-12-01\tat_risk\t1\n" +
		"2026-12-01\tpotential\t1\n",
	"flows between classes per week": "2026-11-23\t\tnew\t2\n" +
		"2026-11-23\t\tpotential\t1\n" +
		"2026-11-23\tnew\tloyal\t1\n" +
		"2026-11-30\tloyal\tat_risk\t1\n" +
		"2026-11-30\tnew\tactive\t1\n",
	"revenue of each class": "active\t1\t25\n" +
		"at_risk\t1\t12.5\n",
	// Digests: d1 written twice (a replay) counts once; d3 is am2's, d4
	// has no account manager, d9 is another tenant's.
	"one account manager's digests": "2026-11-30 01:00:00\taccount_manager_daily\t1\t0\t1\t40\n" +
		"2026-12-01 01:00:00\taccount_manager_daily\t0\t1\t0\t12.5\n",
	"a digest metric per day and account manager": "2026-11-30\tam1@example.com\t40\t0\n" +
		"2026-12-01\tam1@example.com\t12.5\t1\n" +
		"2026-12-01\tam2@example.com\t25\t0\n",
	"the months a table holds": "202611\n",
	"schema version":           fmt.Sprintf("%d\n", sink.LatestVersion()),
	// Grafana's $__timeFilter over 2026-11-29 00:00 .. 2026-12-01 00:00.
	"grafana: revenue per window": "2026-11-29 09:00:00\t40.0000\n" +
		"2026-11-30 10:00:00\t120.5000\n" +
		"2026-11-30 11:00:00\t-5.0000\n",
}

// docStatements are the blocks that change the database (checked to run,
// after every query); docModernOnly need a newer server than 18.16.
var (
	docStatements = map[string]bool{"drop a month": true, "forget a tenant's customers": true}
	docModernOnly = map[string]bool{"keep 400 days of revenue (20.3+ only)": true}
	// docSingleNode read system.parts or ALTER tables, which on a cluster
	// are the _local tables (deploy/clickhouse/README.md).
	docSingleNode = map[string]bool{"the months a table holds": true, "drop a month": true,
		"forget a tenant's customers": true, "keep 400 days of revenue (20.3+ only)": true}
)

// grafanaFrom and grafanaTo are the dashboard range $__timeFilter expands
// to in the test: 2026-11-29 00:00 and 2026-12-01 00:00 UTC.
const grafanaFrom, grafanaTo = 1795910400, 1796083200

// TestDocQueries runs every SQL block of docs/clickhouse.md on the real
// server, against a database migrated by sink/clickhouse and holding
// docSeed, and compares each query's result with docWant. It runs them
// again on the cluster layout of cluster.sql (Merge tables standing in for
// the Distributed ones, seeded through the _local tables), where they
// must return the same.
func TestDocQueries(t *testing.T) {
	s := realServer(t)
	blocks := docBlocks(t)
	for _, b := range blocks {
		known := docWant[b.title] != "" || docStatements[b.title] || docModernOnly[b.title]
		require.True(t, known, "%s: block %q has no expected result in docWant", docFile, b.title)
	}
	require.Len(t, blocks, len(docWant)+len(docStatements)+len(docModernOnly), "docWant names a block the page lacks")

	layouts := []struct {
		name    string
		cluster bool
	}{{"single node", false}, {"cluster layout", true}}
	for _, layout := range layouts {
		t.Run(layout.name, func(t *testing.T) {
			db, conn := s.database(t)
			seed := docSeed
			if layout.cluster {
				applyLocally(t, s, db, sink.SplitStatements(renamed(loadCluster(t).src, db)))
				seed = regexp.MustCompile(`INSERT INTO (\w+) `).ReplaceAllString(seed, "INSERT INTO ${1}_local ")
			} else {
				require.NoError(t, sink.Migrate(t.Context(), conn))
			}
			// 18.16's clickhouse-client --multiquery ends INSERT data at
			// the end of the line: one line per INSERT.
			for stmt := range strings.SplitSeq(strings.TrimSpace(seed), ";\n") {
				_, err := s.run(t, db, strings.ReplaceAll(stmt, "\n", " ")+";")
				require.NoError(t, err)
			}

			for _, b := range blocks {
				want, ok := docWant[b.title]
				if !ok || layout.cluster && docSingleNode[b.title] {
					continue
				}
				q := timeFilter.ReplaceAllString(b.sql,
					fmt.Sprintf("$1 >= toDateTime(%d) AND $1 <= toDateTime(%d)", grafanaFrom, grafanaTo))
				got, err := s.run(t, db, q)
				require.NoError(t, err, "%q:\n%s", b.title, q)
				require.Equal(t, want, got, "%q:\n%s", b.title, q)
			}
			for _, b := range blocks {
				if !docStatements[b.title] || layout.cluster && docSingleNode[b.title] {
					continue
				}
				_, err := s.run(t, db, b.sql)
				require.NoError(t, err, "%q", b.title)
			}
			for _, b := range blocks {
				if docModernOnly[b.title] {
					t.Logf("not run on 18.16: %q", b.title)
				}
			}
		})
	}
}

// TestDocQueriesModern runs the page on chDB (a current ClickHouse engine)
// over the modern rendering of the migrations: every query returns the
// same as on 18.16, and the statements run, including those 18.16 lacks.
func TestDocQueriesModern(t *testing.T) {
	schema, err := sink.Script(sink.FeaturesOf(sink.ServerVersion{Major: 26, Minor: 9}))
	require.NoError(t, err)
	// Since 21.x ClickHouse prints Decimal 40.0000 as 40 unless told
	// otherwise; the values are the same, docWant has 18.16's text.
	setup := []string{"SET output_format_decimal_trailing_zeros = 1"}
	setup = append(setup, schema...)
	for stmt := range strings.SplitSeq(strings.TrimSpace(docSeed), ";\n") {
		setup = append(setup, strings.TrimSuffix(stmt, ";"))
	}
	blocks := docBlocks(t)
	var titles, queries, statements []string
	for _, b := range blocks {
		if docStatements[b.title] || docModernOnly[b.title] {
			statements = append(statements, b.sql)
			continue
		}
		titles = append(titles, b.title)
		queries = append(queries, timeFilter.ReplaceAllString(b.sql,
			fmt.Sprintf("$1 >= toDateTime(%d) AND $1 <= toDateTime(%d)", grafanaFrom, grafanaTo)))
	}
	require.NotEmpty(t, statements)
	version, res := chdbtest.Run(t, setup, queries)
	t.Logf("chDB %s", version)
	for i, r := range res {
		require.Empty(t, r.Error, "%q:\n%s", titles[i], queries[i])
		var b strings.Builder
		for _, row := range r.Rows {
			b.WriteString(strings.Join(row, "\t"))
			b.WriteByte('\n')
		}
		require.Equal(t, docWant[titles[i]], b.String(), "%q:\n%s", titles[i], queries[i])
	}
	// The statements, the 20.3+ ones included, run after the queries.
	chdbtest.Run(t, append(append(setup, queries...), statements...), nil)
}
