package dashboards

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/stretchr/testify/require"

	sink "github.com/crmpulse/crmpulse/sink/clickhouse"
	"github.com/crmpulse/crmpulse/sink/clickhouse/chdbtest"
	"github.com/crmpulse/crmpulse/sink/clickhouse/chtest"
)

// The dashboard range and interval the macros expand to in the test:
// 2026-11-29 00:00 to 2026-12-01 00:00 UTC, one-hour buckets.
var (
	rangeFrom = time.Date(2026, 11, 29, 0, 0, 0, 0, time.UTC)
	rangeTo   = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
)

const intervalSeconds = 3600

var (
	macroTimeFilter = regexp.MustCompile(`\$__timeFilter\(\s*(\w+)\s*\)`)
	macroVariable   = regexp.MustCompile(`\$\{(\w+):singlequote\}`)
)

// expandMacros does what grafana-clickhouse-datasource does to the macros
// the dashboards use (pkg/macros/macros.go of the plugin): the time range
// as toDateTime(unix seconds), the interval in seconds.
func expandMacros(sql string) string {
	from := fmt.Sprintf("toDateTime(%d)", rangeFrom.Unix())
	to := fmt.Sprintf("toDateTime(%d)", rangeTo.Unix())
	sql = macroTimeFilter.ReplaceAllString(sql, "$1 >= "+from+" AND $1 <= "+to)
	return strings.NewReplacer(
		"$__fromTime", from,
		"$__toTime", to,
		"$__interval_s", strconv.Itoa(intervalSeconds),
	).Replace(sql)
}

// selection is a value of each dashboard variable: nil means "All".
type selection map[string][]string

// expandVariables does Grafana's interpolation of ${name:singlequote}:
// the selected values quoted and comma-separated, or the variable's custom
// all value verbatim (Grafana does not format those).
func expandVariables(t *testing.T, sql string, vars []variable, sel selection) string {
	t.Helper()
	return macroVariable.ReplaceAllStringFunc(sql, func(m string) string {
		name := macroVariable.FindStringSubmatch(m)[1]
		var v *variable
		for i := range vars {
			if vars[i].Name == name {
				v = &vars[i]
			}
		}
		require.NotNil(t, v, "query uses undefined variable %s", name)
		values, ok := sel[name]
		require.True(t, ok, "the test selects no value of %s", name)
		if values == nil {
			require.True(t, v.IncludeAll, "%s: no All option", name)
			require.NotEmpty(t, v.AllValue, "%s: All needs a custom all value, or an empty option list yields IN ()", name)
			return v.AllValue
		}
		require.True(t, v.Multi || len(values) == 1, "%s is single-valued", name)
		quoted := make([]string, len(values))
		for i, s := range values {
			quoted[i] = "'" + strings.ReplaceAll(s, "'", "\\'") + "'"
		}
		return strings.Join(quoted, ",")
	})
}

// seed is the data the dashboards' queries run on: partial rows of two
// input partitions (shard 0 and 1), exact duplicates (a retried insert),
// stale copies (an older version of a row), another tenant and rows
// outside the range. A correct panel counts none of the duplicates, stale
// copies or other tenant's rows, and every shard.
var seed = []string{
	`INSERT INTO revenue (tenant, shard, segment, region, channel, window_start, window_end, amount, purchases, refunds, version) VALUES
  ('acme', 0, 'smb', 'eu', 'email', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 100.5, 3, 0, 2),
  ('acme', 0, 'smb', 'eu', 'email', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 999, 9, 0, 1),
  ('acme', 1, 'smb', 'eu', 'email', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 20, 1, 0, 2),
  ('acme', 1, 'smb', 'eu', 'email', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 20, 1, 0, 2),
  ('acme', 0, 'enterprise', 'us', 'sms', '2026-11-30 11:00:00', '2026-11-30 12:00:00', -5, 0, 1, 2),
  ('acme', 0, 'smb', 'eu', 'email', '2026-11-29 09:00:00', '2026-11-29 10:00:00', 40, 1, 0, 2),
  ('acme', 0, 'smb', 'eu', 'email', '2026-11-20 09:00:00', '2026-11-20 10:00:00', 1000, 10, 0, 2),
  ('other', 0, 'mid', 'eu', 'email', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 7, 1, 0, 2)`,
	`INSERT INTO activity_daily (tenant, shard, customer_id, window_start, window_end, events, last_activity, version) VALUES
  ('acme', 0, 'c1', '2026-11-30 00:00:00', '2026-12-01 00:00:00', 3, '2026-11-30 15:00:00', 1),
  ('acme', 1, 'c1', '2026-11-30 00:00:00', '2026-12-01 00:00:00', 2, '2026-11-30 16:00:00', 1),
  ('acme', 0, 'c2', '2026-11-30 00:00:00', '2026-12-01 00:00:00', 1, '2026-11-30 08:00:00', 1),
  ('acme', 0, 'c2', '2026-11-30 00:00:00', '2026-12-01 00:00:00', 1, '2026-11-30 08:00:00', 1),
  ('acme', 0, 'c1', '2026-11-29 00:00:00', '2026-11-30 00:00:00', 4, '2026-11-29 12:00:00', 1),
  ('other', 0, 'c9', '2026-11-29 00:00:00', '2026-11-30 00:00:00', 8, '2026-11-29 12:00:00', 1)`,
	`INSERT INTO complaints (tenant, shard, region, segment, window_start, window_end, complaints, tickets_opened, resolved, version) VALUES
  ('acme', 0, 'eu', 'smb', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 2, 1, 0, 1),
  ('acme', 1, 'eu', 'smb', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 1, 1, 1, 1),
  ('acme', 1, 'eu', 'smb', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 1, 1, 1, 1),
  ('acme', 0, 'us', 'enterprise', '2026-11-30 12:00:00', '2026-11-30 13:00:00', 1, 0, 0, 1),
  ('other', 0, 'eu', 'mid', '2026-11-30 12:00:00', '2026-11-30 13:00:00', 5, 0, 0, 1)`,
	`INSERT INTO delivery_status (tenant, shard, channel, provider, campaign_id, status, window_start, window_end, receipts, version) VALUES
  ('acme', 0, 'email', 'sendgrid', 'c1', 'sent', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 10, 1),
  ('acme', 0, 'email', 'sendgrid', 'c1', 'delivered', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 5, 1),
  ('acme', 1, 'email', 'sendgrid', 'c1', 'delivered', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 3, 1),
  ('acme', 1, 'email', 'sendgrid', 'c1', 'delivered', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 3, 1),
  ('acme', 1, 'email', 'sendgrid', 'c1', 'hard_bounce', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 1, 1),
  ('acme', 0, 'email', 'sendgrid', 'c1', 'failed', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 1, 1),
  ('acme', 0, 'email', 'sendgrid', 'c1', 'opened', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 4, 1),
  ('acme', 0, 'sms', 'twilio', 'c2', 'sent', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 5, 1),
  ('acme', 0, 'sms', 'twilio', 'c2', 'delivered', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 5, 1),
  ('acme', 0, 'sms', 'twilio', 'c2', 'sent', '2026-11-30 12:00:00', '2026-11-30 13:00:00', 2, 1),
  ('other', 0, 'sms', 'twilio', 'c3', 'failed', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 9, 1)`,
	`INSERT INTO resend_outcomes (trigger_id, outcome, policy, message_id, customer_id, tenant, channel, attempt, reason, not_before, at, latency_ms, version) VALUES
  ('t1', 'triggered', 'sms_fallback', 'm1', 'c1', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:00', 0, 1),
  ('t1', 'sent', 'sms_fallback', 'm1', 'c1', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:02', 2000, 1),
  ('t1', 'delivered', 'sms_fallback', 'm1', 'c1', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:05', 5000, 1),
  ('t1', 'delivered', 'sms_fallback', 'm1', 'c1', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:05', 5000, 1),
  ('t2', 'triggered', 'sms_fallback', 'm2', 'c2', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:00', 0, 1),
  ('t2', 'expired', 'sms_fallback', 'm2', 'c2', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 11:00:00', 3600000, 1),
  ('t3', 'triggered', 'sms_fallback', 'm3', 'c3', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:00', 0, 1),
  ('t3', 'cancelled', 'sms_fallback', 'm3', 'c3', 'acme', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:00', 0, 1),
  ('t4', 'triggered', 'email_retry', 'm4', 'c4', 'acme', 'email', 1, 'soft_bounce', '2026-11-30 11:00:00', '2026-11-30 11:00:00', 0, 1),
  ('t5', 'triggered', 'sms_fallback', 'm5', 'c5', 'other', 'sms', 1, 'bounced', '2026-11-30 10:00:00', '2026-11-30 10:00:00', 0, 1)`,
	`INSERT INTO alert_history (rule, starts_at, fingerprint, starts_at_nsec, state, kind, severity, tenant, customer_id, label_keys, label_values, annotation_keys, annotation_values, value, threshold, ends_at, window_start, window_end, emitted_at, version) VALUES
  ('revenue_drop', '2026-11-30 10:00:00', 'fpa', 0, 'firing', 'drop', 'critical', 'acme', '', ['segment', 'tenant'], ['smb', 'acme'], [], [], 0.4, 0.5, NULL, NULL, NULL, '2026-11-30 10:00:05', 1),
  ('revenue_drop', '2026-11-30 10:00:00', 'fpa', 0, 'resolved', 'drop', 'critical', 'acme', '', ['segment', 'tenant'], ['smb', 'acme'], [], [], 0.6, 0.5, '2026-11-30 12:00:00', NULL, NULL, '2026-11-30 12:00:05', 2),
  ('revenue_drop', '2026-11-30 11:00:00', 'fpb', 0, 'firing', 'drop', 'warning', 'acme', '', ['segment', 'tenant'], ['enterprise', 'acme'], ['summary'], ['revenue down'], 0.3, 0.5, NULL, NULL, NULL, '2026-11-30 11:00:05', 1),
  ('revenue_drop', '2026-11-30 11:00:00', 'fpb', 0, 'firing', 'drop', 'warning', 'acme', '', ['segment', 'tenant'], ['enterprise', 'acme'], ['summary'], ['revenue down'], 0.3, 0.5, NULL, NULL, NULL, '2026-11-30 11:00:05', 1),
  ('inactive_30d', '2026-11-09 00:00:00', 'fpc', 0, 'firing', 'inactivity', 'info', 'acme', 'c2', ['customer_id', 'tenant'], ['c2', 'acme'], [], [], 2592000, 2592000, NULL, NULL, NULL, '2026-11-09 00:00:01', 1),
  ('revenue_drop', '2026-11-30 11:00:00', 'fpo', 0, 'firing', 'drop', 'warning', 'other', '', ['tenant'], ['other'], [], [], 0.1, 0.5, NULL, NULL, NULL, '2026-11-30 11:00:05', 1)`,
	`INSERT INTO customer_state (tenant, customer_id, rule, churn_state, last_activity, changed_at, idle_for_seconds, fingerprint, version) VALUES
  ('acme', 'c1', 'inactive_30d', 'churned', '2026-10-01 00:00:00', '2026-10-31 00:00:00', 2592000, 'fp1', 100),
  ('acme', 'c1', 'inactive_30d', 'active', '2026-11-05 00:00:00', '2026-11-05 00:00:00', 2592000, 'fp1', 200),
  ('acme', 'c2', 'inactive_30d', 'churned', '2026-10-10 00:00:00', '2026-11-09 00:00:00', 2592000, 'fpc', 150),
  ('acme', 'c2', 'inactive_30d', 'churned', '2026-10-10 00:00:00', '2026-11-09 00:00:00', 2592000, 'fpc', 150),
  ('acme', 'c3', 'inactive_30d', 'active', '2026-11-20 00:00:00', '2026-11-20 00:00:00', 2592000, 'fp3', 300),
  ('other', 'c9', 'inactive_30d', 'churned', '2026-10-10 00:00:00', '2026-11-09 00:00:00', 2592000, 'fp9', 150)`,
	`INSERT INTO customers (tenant, customer_id, updated_at, account_manager, tier, segment, region, timezone, attribute_keys, attribute_values, deleted, version) VALUES
  ('acme', 'c1', '2026-11-01 00:00:00', 'am1@example.com', 'gold', 'smb', 'eu', 'UTC', ['birthday'], ['5d41402abc4b2a76'], 0, 100),
  ('acme', 'c1', '2026-11-01 00:00:00', 'am1@example.com', 'gold', 'smb', 'eu', 'UTC', ['birthday'], ['5d41402abc4b2a76'], 0, 100),
  ('acme', 'c3', '2026-11-01 00:00:00', 'am2@example.com', 'gold', 'enterprise', 'us', 'UTC', [], [], 0, 100),
  ('acme', 'c4', '2026-11-01 00:00:00', 'am3@example.com', 'gold', 'smb', 'eu', 'UTC', [], [], 0, 100),
  ('acme', 'c4', '2026-11-15 00:00:00', '', '', '', '', '', [], [], 1, 150),
  ('other', 'c9', '2026-11-01 00:00:00', 'am9@example.com', 'gold', 'smb', 'eu', 'UTC', [], [], 0, 100)`,
	`INSERT INTO account_manager_alerts (tenant, account_manager, starts_at, rule, fingerprint, starts_at_nsec, state, kind, severity, customer_id, ends_at, version) VALUES
  ('acme', 'am1@example.com', '2026-11-29 09:00:00', 'birthday', 'fpb1', 0, 'firing', 'calendar', 'info', 'c1', NULL, 1),
  ('acme', 'am1@example.com', '2026-11-29 09:00:00', 'birthday', 'fpb1', 0, 'firing', 'calendar', 'info', 'c1', NULL, 1),
  ('acme', 'am1@example.com', '2026-11-29 09:00:00', 'birthday', 'fpb1', 0, 'resolved', 'calendar', 'info', 'c1', '2026-11-29 21:00:00', 2),
  ('acme', 'am2@example.com', '2026-11-30 09:00:00', 'invoice_overdue', 'fpi3', 0, 'firing', 'deadline', 'warning', 'c3', NULL, 1),
  ('acme', 'am1@example.com', '2026-11-20 09:00:00', 'birthday', 'fpb2', 0, 'firing', 'calendar', 'info', 'c2', NULL, 1),
  ('other', 'am9@example.com', '2026-11-30 09:00:00', 'birthday', 'fpo', 0, 'firing', 'calendar', 'info', 'c9', NULL, 1)`,
	`INSERT INTO segment_transitions (tenant, segment_set, customer_id, key_id, at, at_nsec, from_class, to_class, key_keys, key_values, emitted_at, version) VALUES
  ('acme', 'lifecycle', 'c1', 'k1', '2026-11-29 10:00:00', 0, '', 'new', ['customer_id', 'tenant'], ['c1', 'acme'], '2026-11-29 10:00:01', 1),
  ('acme', 'lifecycle', 'c1', 'k1', '2026-11-29 10:00:00', 0, '', 'new', ['customer_id', 'tenant'], ['c1', 'acme'], '2026-11-29 10:00:01', 1),
  ('acme', 'lifecycle', 'c1', 'k1', '2026-11-30 10:00:00', 0, 'new', 'loyal', ['customer_id', 'tenant'], ['c1', 'acme'], '2026-11-30 10:00:01', 1),
  ('acme', 'lifecycle', 'c2', 'k2', '2026-11-29 12:00:00', 0, '', 'new', ['customer_id', 'tenant'], ['c2', 'acme'], '2026-11-29 12:00:01', 1),
  ('acme', 'lifecycle', 'c2', 'k2', '2026-11-30 12:00:00', 0, 'new', 'at_risk', ['customer_id', 'tenant'], ['c2', 'acme'], '2026-11-30 12:00:01', 1),
  ('acme', 'lifecycle', 'c3', 'k3', '2026-11-20 09:00:00', 0, '', 'new', ['customer_id', 'tenant'], ['c3', 'acme'], '2026-11-20 09:00:01', 1),
  ('acme', 'value', 'c1', 'k1', '2026-11-30 10:00:00', 0, '', 'high', ['customer_id', 'tenant'], ['c1', 'acme'], '2026-11-30 10:00:01', 1),
  ('other', 'lifecycle', 'c9', 'k9', '2026-11-30 10:00:00', 0, '', 'new', ['customer_id', 'tenant'], ['c9', 'other'], '2026-11-30 10:00:01', 1)`,
	`INSERT INTO segment_current (tenant, segment_set, customer_id, key_id, class, since, since_nsec, previous_class, key_keys, key_values, version) VALUES
  ('acme', 'lifecycle', 'c1', 'k1', 'new', '2026-11-29 10:00:00', 0, '', ['customer_id', 'tenant'], ['c1', 'acme'], 1764410400000000000),
  ('acme', 'lifecycle', 'c1', 'k1', 'loyal', '2026-11-30 10:00:00', 0, 'new', ['customer_id', 'tenant'], ['c1', 'acme'], 1764496800000000000),
  ('acme', 'lifecycle', 'c2', 'k2', 'at_risk', '2026-11-30 12:00:00', 0, 'new', ['customer_id', 'tenant'], ['c2', 'acme'], 1764504000000000000),
  ('acme', 'lifecycle', 'c3', 'k3', 'new', '2026-11-20 09:00:00', 0, '', ['customer_id', 'tenant'], ['c3', 'acme'], 1763629200000000000),
  ('acme', 'value', 'c1', 'k1', 'high', '2026-11-30 10:00:00', 0, '', ['customer_id', 'tenant'], ['c1', 'acme'], 1764496800000000000),
  ('other', 'lifecycle', 'c9', 'k9', 'new', '2026-11-30 10:00:00', 0, '', ['customer_id', 'tenant'], ['c9', 'other'], 1764496800000000000)`,
	`INSERT INTO digests (tenant, digest, account_manager, digest_id, period_start, period_end, group_keys, group_values, fired, resolved, open, alert_fingerprints, metric_names, metric_values, segment_classes, segment_counts, body, emitted_at, version) VALUES
  ('acme', 'account_manager_daily', 'am1@example.com', 'd1', '2026-11-29 01:00:00', '2026-11-30 01:00:00', ['account_manager', 'tenant'], ['am1@example.com', 'acme'], 2, 0, 1, ['f1', 'f2', 'f1'], ['complaints', 'revenue'], [0, 120.5], ['loyal', 'new'], [0, 1], '{}', '2026-11-30 01:00:05', 1),
  ('acme', 'account_manager_daily', 'am1@example.com', 'd1', '2026-11-29 01:00:00', '2026-11-30 01:00:00', ['account_manager', 'tenant'], ['am1@example.com', 'acme'], 2, 0, 1, ['f1', 'f2', 'f1'], ['complaints', 'revenue'], [0, 120.5], ['loyal', 'new'], [0, 1], '{}', '2026-11-30 01:00:05', 1),
  ('acme', 'account_manager_daily', 'am2@example.com', 'd2', '2026-11-29 01:00:00', '2026-11-30 01:00:00', ['account_manager', 'tenant'], ['am2@example.com', 'acme'], 0, 1, 0, ['f3'], ['complaints', 'revenue'], [1, 40], ['loyal', 'new'], [1, 0], '{}', '2026-11-30 01:00:05', 1),
  ('acme', 'account_manager_daily', 'am1@example.com', 'd0', '2026-11-27 01:00:00', '2026-11-28 01:00:00', ['account_manager', 'tenant'], ['am1@example.com', 'acme'], 1, 0, 0, ['f0'], ['complaints', 'revenue'], [0, 9], ['loyal', 'new'], [0, 1], '{}', '2026-11-28 01:00:05', 1),
  ('acme', 'month_end_receivables', '', 'd3', '2026-11-01 00:00:00', '2026-12-01 00:00:00', ['tenant'], ['acme'], 5, 3, 2, [], ['invoices_issued', 'revenue'], [7, 1000], [], [], '{}', '2026-12-01 00:00:05', 1),
  ('other', 'account_manager_daily', 'am9@example.com', 'd9', '2026-11-29 01:00:00', '2026-11-30 01:00:00', ['account_manager', 'tenant'], ['am9@example.com', 'other'], 1, 0, 0, ['f9'], ['revenue'], [5], [], [], '{}', '2026-11-30 01:00:05', 1)`,
	`INSERT INTO interactions_raw (tenant, shard, customer_id, occurred_at, event_id, occurred_at_nsec, type, segment, region, channel, amount, currency, attribute_keys, attribute_values, version) VALUES
  ('acme', 0, 'c2', '2026-11-30 10:00:00', 'e1', 0, 'purchase', 'smb', 'eu', 'email', 49.9, 'EUR', [], [], 1),
  ('acme', 0, 'c2', '2026-11-30 10:00:00', 'e1', 0, 'purchase', 'smb', 'eu', 'email', 49.9, 'EUR', [], [], 1),
  ('acme', 1, 'c2', '2026-11-29 08:00:00', 'e2', 0, 'login', 'smb', 'eu', 'web', 0, '', [], [], 1),
  ('acme', 0, 'c2', '2026-11-20 08:00:00', 'e0', 0, 'login', 'smb', 'eu', 'web', 0, '', [], [], 1),
  ('acme', 0, 'c1', '2026-11-30 11:00:00', 'e3', 0, 'visit', 'smb', 'eu', 'web', 0, '', [], [], 1),
  ('other', 0, 'c2', '2026-11-30 10:00:00', 'e9', 0, 'purchase', 'mid', 'eu', 'email', 7, 'EUR', [], [], 1)`,
}

// allSegments is the selection every query runs with first; want holds
// what each query returns on seed with it (TabSeparated-like: columns
// joined by tabs, one line per row). Worked out by hand from the seed:
// e.g. revenue of smb on 2026-11-30 10:00 is 100.5 (shard 0's newest copy,
// not the stale 999) + 20 (shard 1, once).
var allSegments = selection{"tenant": {"acme"}, "segment": nil, "account_manager": nil, "segment_set": {"lifecycle"}, "customer": {"c2"}}

var want = map[string]string{
	"variable tenant":  "acme\nother\n",
	"variable segment": "enterprise\nsmb\n",
	// am3's only customer is deleted; am9 is another tenant's.
	"variable account_manager": "am1@example.com\nam2@example.com\n",
	"variable segment_set":     "lifecycle\nvalue\n",

	// fpa from its firing to its resolution, fpb (twice written, once
	// here) still firing; fpc is a customer's, fpo another tenant's.
	"annotation Alerts": "2026-11-30 10:00:00\t2026-11-30 12:00:00\trevenue_drop (critical) segment=smb tenant=acme\n" +
		"2026-11-30 11:00:00\t2026-11-30 11:00:00\trevenue_drop (warning) segment=enterprise tenant=acme\n",

	// c1's stale row collapses; c3 entered before the range but is
	// still there; the value set and the other tenant are not counted.
	"Customers per class now": "at_risk\t1\t2026-11-30 12:00:00\n" +
		"loyal\t1\t2026-11-30 10:00:00\n" +
		"new\t1\t2026-11-20 09:00:00\n",
	// c1's duplicated entry counts once; c3's entry is before the range.
	"Moves between classes": "\tnew\t2\n" +
		"new\tat_risk\t1\n" +
		"new\tloyal\t1\n",
	"Customers entering each class per day": "2026-11-29 00:00:00\tnew\t2\n" +
		"2026-11-30 00:00:00\tat_risk\t1\n" +
		"2026-11-30 00:00:00\tloyal\t1\n",
	// d1 once; d0 ended before the range, d9 is another tenant's; the
	// month-end report has no account manager.
	"Digests": "2026-12-01 00:00:00\tmonth_end_receivables\t\t5\t3\t2\t1000\n" +
		"2026-11-30 01:00:00\taccount_manager_daily\tam1@example.com\t2\t0\t1\t120.5\n" +
		"2026-11-30 01:00:00\taccount_manager_daily\tam2@example.com\t0\t1\t0\t40\n",
	// e1 once, e0 before the range, e9 another tenant's, e3 c1's.
	"Events of the customer": "2026-11-30 10:00:00\tpurchase\te1\t49.9\temail\tsmb\teu\n" +
		"2026-11-29 08:00:00\tlogin\te2\t0\tweb\tsmb\teu\n",
	// Whatever the range: c2's churn began on 9 November.
	"Alerts of the customer": "2026-11-09 00:00:00\tinactive_30d\tinfo\tinactivity\t0\n",

	// 100.5 + 20 - 5 + 40 (2026-11-20 is outside the range).
	"Revenue, purchases and refunds": "155.5\t5\t1\n",
	"Revenue per segment, region and channel": "smb\teu\temail\t160.5\t5\t0\n" +
		"enterprise\tus\tsms\t-5\t0\t1\n",
	"Revenue per segment": "2026-11-29 09:00:00\tsmb\t40\n" +
		"2026-11-30 10:00:00\tsmb\t120.5\n" +
		"2026-11-30 11:00:00\tenterprise\t-5\n",
	"Purchases and refunds": "2026-11-29 09:00:00\t1\t0\n" +
		"2026-11-30 10:00:00\t4\t0\n" +
		"2026-11-30 11:00:00\t0\t1\n",

	"Active customers per day": "2026-11-29 00:00:00\t1\t4\n" +
		"2026-11-30 00:00:00\t2\t6\n",
	"Churned customers now":       "1\n",
	"Churn per inactivity rule":   "inactive_30d\t1\t2\n",
	"Currently churned customers": "c2\tinactive_30d\t2026-10-10 00:00:00\t2026-11-09 00:00:00\t30\n",

	"Complaints per region": "2026-11-30 10:00:00\teu\t3\n" +
		"2026-11-30 12:00:00\tus\t1\n",
	"Complaint life cycle per region": "eu\t3\t2\t1\n" +
		"us\t1\t0\t0\n",

	"Receipts per status": "2026-11-30 10:00:00\tdelivered\t13\n" +
		"2026-11-30 10:00:00\tfailed\t1\n" +
		"2026-11-30 10:00:00\thard_bounce\t1\n" +
		"2026-11-30 10:00:00\topened\t4\n" +
		"2026-11-30 10:00:00\tsent\t15\n" +
		"2026-11-30 12:00:00\tsent\t2\n",
	// sendgrid: 2 failed (hard_bounce, failed) of 10 ended (8 delivered);
	// twilio at 12:00 had nothing end.
	"Failure rate per provider": "2026-11-30 10:00:00\tsendgrid\t0.2\n" +
		"2026-11-30 10:00:00\ttwilio\t0\n",
	"Delivery status per channel and provider": "email\tsendgrid\t10\t8\t4\t0\t0\t1\t1\t0\t0\t2\t10\t0.2\n" +
		"sms\ttwilio\t7\t5\t0\t0\t0\t0\t0\t0\t0\t0\t5\t0\n",

	"Resend outcomes": "2026-11-30 10:00:00\tcancelled\t1\n" +
		"2026-11-30 10:00:00\tdelivered\t1\n" +
		"2026-11-30 10:00:00\texpired\t1\n" +
		"2026-11-30 10:00:00\tsent\t1\n" +
		"2026-11-30 10:00:00\ttriggered\t3\n" +
		"2026-11-30 11:00:00\ttriggered\t1\n",
	"Resend outcomes per policy and channel": "email_retry\temail\t1\t0\t0\t0\t0\t0\t0\t0\t0\t0\n" +
		"sms_fallback\tsms\t3\t1\t1\t1\t0\t0\t0\t1\t0.3333333333333333\t5\n",

	// fpa is resolved; fpb fires (once, despite its two copies); so does
	// fpc, which started before the range.
	"Alerts firing now": "2\n",
	"Firing alerts": "inactive_30d\tinfo\tinactivity\t2026-11-09 00:00:00\tc2\t\t2592000\t2592000\t\n" +
		"revenue_drop\twarning\tdrop\t2026-11-30 11:00:00\t\tenterprise\t0.3\t0.5\trevenue down\n",
	// fpb1 once (its duplicate collapses) and resolved; fpb2 is before the
	// range, fpo another tenant's.
	"Alerts of account managers": "am2@example.com\tinvoice_overdue\tdeadline\tc3\t2026-11-30 09:00:00\t0\n" +
		"am1@example.com\tbirthday\tcalendar\tc1\t2026-11-29 09:00:00\t1\n",
	"Alerts fired per rule": "2026-11-30 10:00:00\trevenue_drop\t1\n" +
		"2026-11-30 11:00:00\trevenue_drop\t1\n",
	"Alert history": "2026-11-30 12:00:05\tresolved\trevenue_drop\tcritical\tdrop\t\tsmb\t0.6\t0.5\t2026-11-30 10:00:00\t2026-11-30 12:00:00\t\n" +
		"2026-11-30 11:00:05\tfiring\trevenue_drop\twarning\tdrop\t\tenterprise\t0.3\t0.5\t2026-11-30 11:00:00\tNULL\trevenue down\n" +
		"2026-11-30 10:00:05\tfiring\trevenue_drop\tcritical\tdrop\t\tsmb\t0.4\t0.5\t2026-11-30 10:00:00\tNULL\t\n",
}

// wantSMB is what the segment-filtered panels return with only smb
// selected (the other panels ignore the segment), and the account-manager
// panel with only am1 selected.
var wantSMB = map[string]string{
	"Digests":                                 "2026-11-30 01:00:00\taccount_manager_daily\tam1@example.com\t2\t0\t1\t120.5\n",
	"Alerts of account managers":              "am1@example.com\tbirthday\tcalendar\tc1\t2026-11-29 09:00:00\t1\n",
	"Revenue, purchases and refunds":          "160.5\t5\t0\n",
	"Revenue per segment, region and channel": "smb\teu\temail\t160.5\t5\t0\n",
	"Complaint life cycle per region":         "eu\t3\t2\t1\n",
}

// TestClickHouseQueries runs every ClickHouse query of the dashboards, its
// macros and variables expanded as Grafana and the plugin would, on the
// real server (ClickHouse 18.16 in make test) against a database migrated
// by sink/clickhouse and holding seed. With every segment selected each
// query must return its want; it must also run with one and with two
// segments selected.
func TestClickHouseQueries(t *testing.T) {
	_, conn := chtest.Database(t)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	require.NoError(t, sink.Migrate(ctx, conn))
	for _, stmt := range seed {
		stmt = insertSelect(t, stmt)
		require.NoError(t, conn.Exec(ctx, stmt), "seeding:\n%s", stmt)
	}
	for _, c := range panelCases(t) {
		t.Run(c.where+"/"+c.selection, func(t *testing.T) {
			got, firstType := runQuery(ctx, t, conn, c.sql)
			c.check(t, got, firstType)
		})
	}
}

// TestClickHouseQueriesModern runs the same queries, with the same
// expected results, on chDB (a current ClickHouse engine) over the modern
// rendering of the migrations (LowCardinality, codecs), which users on
// 23.8+ get.
func TestClickHouseQueriesModern(t *testing.T) {
	schema, err := sink.Script(sink.FeaturesOf(sink.ServerVersion{Major: 26, Minor: 9}))
	require.NoError(t, err)
	setup := schema
	setup = append(setup, seed...)
	cases := panelCases(t)
	sqls := make([]string, len(cases))
	for i, c := range cases {
		sqls[i] = c.sql
	}
	version, res := chdbtest.Run(t, setup, sqls)
	t.Logf("chDB %s", version)
	for i, c := range cases {
		t.Run(c.where+"/"+c.selection, func(t *testing.T) {
			r := res[i]
			require.Empty(t, r.Error, "\n%s", c.sql)
			require.NotEmpty(t, r.Types)
			var b strings.Builder
			for _, row := range r.Rows {
				for j, v := range row {
					if j > 0 {
						b.WriteByte('\t')
					}
					b.WriteString(chdbValue(v))
				}
				b.WriteByte('\n')
			}
			c.check(t, b.String(), r.Types[0])
		})
	}
}

// chdbValue prints a TSV value as formatValue prints the scanned one:
// \N is NULL, numbers shortest.
func chdbValue(v string) string {
	if v == `\N` {
		return "NULL"
	}
	if f, err := strconv.ParseFloat(v, 64); err == nil && strings.ContainsAny(v, ".eE") {
		return strconv.FormatFloat(f, 'f', -1, 64)
	}
	return v
}

// panelCase is one dashboard query with its macros and variables expanded
// for one selection, and what it must return.
type panelCase struct {
	where, selection, sql string
	check                 func(t *testing.T, got, firstType string)
}

// panelCases expands every ClickHouse query of the dashboards for three
// selections: every segment (each query must return its want), smb only
// (wantSMB) and two segments (it must run).
func panelCases(t *testing.T) []panelCase {
	t.Helper()
	ds := loadDashboards(t)
	qs := queries(t, ds, clickhouseType)
	varsOf := map[string][]variable{}
	for _, d := range ds {
		varsOf[d.Title] = d.Templating.List
	}
	seen := map[string]bool{}
	var out []panelCase
	for _, q := range qs {
		key := q.panel
		if q.variable != nil {
			key = "variable " + q.variable.Name
		}
		if q.refID != "" && q.refID != "A" {
			key += " / " + q.refID
		}
		require.False(t, seen[key], "two queries named %q: the test tells them apart by panel title", key)
		seen[key] = true
		raw := q.text(t)
		for _, tc := range []struct {
			name string
			sel  selection
			want map[string]string
		}{
			{"all segments", allSegments, want},
			{"smb", selection{"tenant": {"acme"}, "segment": {"smb"}, "account_manager": {"am1@example.com"},
				"segment_set": {"lifecycle"}, "customer": {"c2"}}, wantSMB},
			{"two segments", selection{"tenant": {"acme"}, "segment": {"smb", "enterprise"},
				"account_manager": {"am1@example.com", "am2@example.com"}, "segment_set": {"value"}, "customer": {"c1"}}, nil},
		} {
			sql := expandVariables(t, expandMacros(raw), varsOf[q.dashboard], tc.sel)
			require.NotContains(t, sql, "$", "%s: a macro or variable the test does not expand:\n%s", tc.name, sql)
			timeSeries := q.target.QueryType == "timeSeries"
			out = append(out, panelCase{where: q.where, selection: tc.name, sql: sql, check: func(t *testing.T, got, firstType string) {
				if timeSeries {
					require.True(t, strings.HasPrefix(firstType, "DateTime"),
						"time series: the first column is the time, not %s", firstType)
				}
				if w, ok := tc.want[key]; ok {
					require.Equal(t, w, got, "%s:\n%s", tc.name, sql)
				} else if tc.want != nil && tc.name == "all segments" {
					t.Errorf("no expected result for %q: add it to want\ngot:\n%s", key, got)
				}
			}})
		}
	}
	for k := range want {
		require.True(t, seen[k], "want names %q, which no dashboard has", k)
	}
	return out
}

// insertSelect rewrites INSERT ... VALUES as INSERT ... SELECT ... UNION
// ALL ...: over the native protocol the server expects the VALUES of an
// INSERT as data blocks, which the driver sends only from a batch.
func insertSelect(t *testing.T, stmt string) string {
	t.Helper()
	head, values, ok := strings.Cut(stmt, " VALUES\n")
	require.True(t, ok, "seed statement: INSERT INTO t (columns) VALUES, then one row a line:\n%s", stmt)
	var selects []string
	for line := range strings.SplitSeq(values, "\n") {
		row := strings.TrimSuffix(strings.TrimSpace(line), ",")
		require.True(t, strings.HasPrefix(row, "(") && strings.HasSuffix(row, ")"), "seed row %q", row)
		selects = append(selects, "SELECT "+row[1:len(row)-1])
	}
	return head + " " + strings.Join(selects, " UNION ALL ")
}

// runQuery runs sql and returns its rows (columns joined by tabs, one line
// per row) and the type of its first column.
func runQuery(ctx context.Context, t *testing.T, conn driver.Conn, sql string) (string, string) {
	t.Helper()
	rows, err := conn.Query(ctx, sql)
	require.NoError(t, err, "\n%s", sql)
	defer rows.Close()
	types := rows.ColumnTypes()
	require.NotEmpty(t, types)
	var b strings.Builder
	for rows.Next() {
		dest := make([]any, len(types))
		for i, ct := range types {
			dest[i] = reflect.New(ct.ScanType()).Interface()
		}
		require.NoError(t, rows.Scan(dest...))
		for i, d := range dest {
			if i > 0 {
				b.WriteByte('\t')
			}
			b.WriteString(formatValue(reflect.ValueOf(d)))
		}
		b.WriteByte('\n')
	}
	require.NoError(t, rows.Err(), "\n%s", sql)
	return b.String(), types[0].DatabaseTypeName()
}

// formatValue prints a scanned value: times in UTC, floats shortest,
// NULL for a nil pointer.
func formatValue(v reflect.Value) string {
	for v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return "NULL"
		}
		v = v.Elem()
	}
	switch x := v.Interface().(type) {
	case time.Time:
		return x.UTC().Format(time.DateTime)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case float32:
		return strconv.FormatFloat(float64(x), 'f', -1, 32)
	case fmt.Stringer:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}
