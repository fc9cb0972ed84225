-- Migration 1: every table of CRM Pulse.
--
-- This file is a Go text/template rendered for the server it runs on (see
-- migrate.go): the placeholder .Dim is String on ClickHouse 18.16 and
-- LowCardinality(String) on 20.3+; .TimeCodec and .TextCodec add
-- compression codecs on 20.3+ and nothing before. Everything else is SQL
-- that runs unchanged on 18.16 and on 23.8+.
--
-- Rules for every migration:
-- - statements end with ';' at the end of a line; comment lines are dropped;
-- - each statement is idempotent (IF NOT EXISTS), because a migrator that
--   dies between a statement and its schema_migrations row runs it again;
-- - a table is a ReplacingMergeTree(version) whose ORDER BY is the row's
--   identity and whose PARTITION BY is computed from that identity, so the
--   same row written twice (a retry, a replay, a restart) collapses into
--   one. Until a background merge has run, both copies are on disk: read
--   with FINAL, or with argMax(column, version) GROUP BY the key (see
--   docs/clickhouse.md). version is the sink's write time in Unix ns, so
--   the newest write of a row wins.
-- - the window aggregates carry shard, the input partition that computed
--   them (0 in a replay): in `crmpulse run` each partition's engine emits
--   a partial row for the groups it saw, and readers sum the shards.

-- Revenue per window (aggregate.Revenue): purchases add, refunds subtract.
CREATE TABLE IF NOT EXISTS revenue (
    tenant       {{.Dim}},
    shard        UInt16,
    segment      {{.Dim}},
    region       {{.Dim}},
    channel      {{.Dim}},
    window_start DateTime,
    window_end   DateTime,
    amount       Decimal(18, 4),
    purchases    UInt64,
    refunds      UInt64,
    version      UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant, window_start, window_end, segment, region, channel, shard);

-- Interactions per customer per day (aggregate.Activity).
CREATE TABLE IF NOT EXISTS activity_daily (
    tenant        {{.Dim}},
    shard         UInt16,
    customer_id   String,
    window_start  DateTime,
    window_end    DateTime,
    events        UInt64,
    last_activity DateTime{{.TimeCodec}},
    version       UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant, customer_id, window_start, window_end, shard);

-- The complaint life cycle per window (aggregate.Complaints).
CREATE TABLE IF NOT EXISTS complaints (
    tenant         {{.Dim}},
    shard          UInt16,
    region         {{.Dim}},
    segment        {{.Dim}},
    window_start   DateTime,
    window_end     DateTime,
    complaints     UInt64,
    tickets_opened UInt64,
    resolved       UInt64,
    version        UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant, window_start, window_end, region, segment, shard);

-- Receipts per status per window (aggregate.Delivery).
CREATE TABLE IF NOT EXISTS delivery_status (
    tenant       {{.Dim}},
    shard        UInt16,
    channel      {{.Dim}},
    provider     {{.Dim}},
    campaign_id  String,
    status       {{.Dim}},
    window_start DateTime,
    window_end   DateTime,
    receipts     UInt64,
    version      UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant, window_start, window_end, channel, provider, campaign_id, status, shard);

-- How far each resent attempt went (followup.Event), one row per trigger
-- and outcome. not_before is the trigger's, so every row of a trigger is
-- in the same partition.
CREATE TABLE IF NOT EXISTS resend_outcomes (
    trigger_id  String,
    outcome     {{.Dim}},
    policy      {{.Dim}},
    message_id  String,
    customer_id String,
    tenant      {{.Dim}},
    channel     {{.Dim}},
    attempt     UInt16,
    reason      {{.Dim}},
    not_before  DateTime,
    at          DateTime{{.TimeCodec}},
    latency_ms  UInt64,
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(not_before)
ORDER BY (tenant, trigger_id, outcome);

-- Every alert state change of SPEC §4, keyed like processor.Alert.ID():
-- fingerprint + state + starts_at (to the nanosecond: starts_at holds the
-- seconds, starts_at_nsec the rest). Labels and annotations are parallel
-- key/value arrays sorted by key (18.16 has no Map type):
-- label_values[indexOf(label_keys, 'segment')].
CREATE TABLE IF NOT EXISTS alert_history (
    rule              {{.Dim}},
    starts_at         DateTime,
    fingerprint       String,
    starts_at_nsec    UInt32,
    state             {{.Dim}},
    kind              {{.Dim}},
    severity          {{.Dim}},
    tenant            {{.Dim}},
    customer_id       String,
    label_keys        Array(String),
    label_values      Array(String){{.TextCodec}},
    annotation_keys   Array(String),
    annotation_values Array(String){{.TextCodec}},
    value             Float64,
    threshold         Float64,
    ends_at           Nullable(DateTime),
    window_start      Nullable(DateTime),
    window_end        Nullable(DateTime),
    emitted_at        DateTime{{.TimeCodec}},
    version           UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(starts_at)
ORDER BY (rule, starts_at, fingerprint, starts_at_nsec, state);

-- Resend triggers and their cancels (SPEC §4), keyed by trigger_id + action.
CREATE TABLE IF NOT EXISTS resend_triggers (
    tenant      {{.Dim}},
    trigger_id  String,
    action      {{.Dim}},
    policy      {{.Dim}},
    message_id  String,
    customer_id String,
    channel     {{.Dim}},
    attempt     UInt16,
    reason      {{.Dim}},
    not_before  DateTime,
    created_at  DateTime{{.TimeCodec}},
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(not_before)
ORDER BY (tenant, trigger_id, action);

-- The churn state of each customer per inactivity rule, for drill-down:
-- fed by inactivity alerts (firing: churned since starts_at, last activity
-- starts_at - idle_for_seconds; resolved: active again at ends_at).
-- version is event time, not write time, so the latest state wins whatever
-- order the rows arrive in. Not partitioned: a customer's row must replace itself
-- whatever the month.
CREATE TABLE IF NOT EXISTS customer_state (
    tenant           {{.Dim}},
    customer_id      String,
    rule             {{.Dim}},
    churn_state      {{.Dim}},
    last_activity    DateTime,
    changed_at       DateTime,
    idle_for_seconds Float64,
    fingerprint      String,
    version          UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, customer_id, rule);
