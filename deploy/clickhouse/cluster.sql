-- CRM Pulse on a ClickHouse cluster: the schema of sink/clickhouse/migrations
-- (rendered for 18.16: plain String, no codecs, no TTL) as replicated local
-- tables plus Distributed tables named like the single-node ones. See
-- README.md in this folder for the macros, remote_servers and how to apply it:
--
--   clickhouse-client --multiquery < deploy/clickhouse/cluster.sql
--
-- Every statement runs ON CLUSTER '{cluster}' (the cluster macro of each
-- host) and is idempotent, so the file can be applied again, e.g. after a
-- host was added. It runs unchanged on ClickHouse 18.16 and 23.8+.
--
-- Layout, for each table <t> of the single-node schema:
-- - crmpulse.<t>_local: ReplicatedReplacingMergeTree(version) with the
--   single-node columns, PARTITION BY and ORDER BY; the replicas of a shard
--   share the ZooKeeper path /clickhouse/tables/{shard}/crmpulse/<t>.
-- - crmpulse.<t>: Distributed over <t>_local with the same columns
--   (CREATE ... AS). crmpulse reads and writes these.
--
-- Sharding keys. A ReplacingMergeTree collapses duplicates only within one
-- shard: the two copies of a row written twice (a retried insert, a replay,
-- a restart that re-reads uncommitted input) merge, and FINAL hides the
-- older one, only if both copies landed on the same shard. So each sharding
-- key is a deterministic function of columns of the table's ORDER BY key
-- (never rand(), never a non-key column, never the insert time): the same
-- row always goes to the same shard. Within that rule each key keeps
-- together the rows that are read together.
--
-- Apply deploy/clickhouse/cluster.sql of the same crmpulse release as the
-- binary: it records the schema versions it contains in schema_migrations,
-- so `crmpulse run` with clickhouse.migrate=false (or true) finds the schema
-- current. deploy/clickhouse/cluster_test.go keeps this file in step with
-- the migrations.

CREATE DATABASE IF NOT EXISTS crmpulse ON CLUSTER '{cluster}';

-- The applied schema versions (sink/clickhouse/migrate.go creates it on a
-- single node). Sharded by version.
CREATE TABLE IF NOT EXISTS crmpulse.schema_migrations_local ON CLUSTER '{cluster}' (
    version    UInt32,
    name       String,
    applied_at DateTime
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/schema_migrations', '{replica}')
ORDER BY version;

CREATE TABLE IF NOT EXISTS crmpulse.schema_migrations ON CLUSTER '{cluster}' AS crmpulse.schema_migrations_local
ENGINE = Distributed('{cluster}', crmpulse, schema_migrations_local, version);

-- Migration 1 (init).
-- Revenue per window. Every input partition's partial row of one group
-- (tenant, window, segment, region, channel) on the same shard.
CREATE TABLE IF NOT EXISTS crmpulse.revenue_local ON CLUSTER '{cluster}' (
    tenant       String,
    shard        UInt16,
    segment      String,
    region       String,
    channel      String,
    window_start DateTime,
    window_end   DateTime,
    amount       Decimal(18, 4),
    purchases    UInt64,
    refunds      UInt64,
    version      UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/revenue', '{replica}', version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant, window_start, window_end, segment, region, channel, shard);

CREATE TABLE IF NOT EXISTS crmpulse.revenue ON CLUSTER '{cluster}' AS crmpulse.revenue_local
ENGINE = Distributed('{cluster}', crmpulse, revenue_local, cityHash64(tenant, window_start, segment, region, channel));

-- Interactions per customer per day. A customer's days on one shard, the
-- shard of their customer_state rows.
CREATE TABLE IF NOT EXISTS crmpulse.activity_daily_local ON CLUSTER '{cluster}' (
    tenant        String,
    shard         UInt16,
    customer_id   String,
    window_start  DateTime,
    window_end    DateTime,
    events        UInt64,
    last_activity DateTime,
    version       UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/activity_daily', '{replica}', version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant, customer_id, window_start, window_end, shard);

CREATE TABLE IF NOT EXISTS crmpulse.activity_daily ON CLUSTER '{cluster}' AS crmpulse.activity_daily_local
ENGINE = Distributed('{cluster}', crmpulse, activity_daily_local, cityHash64(tenant, customer_id));

-- The complaint life cycle per window: a group's partial rows together.
CREATE TABLE IF NOT EXISTS crmpulse.complaints_local ON CLUSTER '{cluster}' (
    tenant         String,
    shard          UInt16,
    region         String,
    segment        String,
    window_start   DateTime,
    window_end     DateTime,
    complaints     UInt64,
    tickets_opened UInt64,
    resolved       UInt64,
    version        UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/complaints', '{replica}', version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant, window_start, window_end, region, segment, shard);

CREATE TABLE IF NOT EXISTS crmpulse.complaints ON CLUSTER '{cluster}' AS crmpulse.complaints_local
ENGINE = Distributed('{cluster}', crmpulse, complaints_local, cityHash64(tenant, window_start, region, segment));

-- Receipts per status per window: every status of one campaign, channel
-- and provider in one window on one shard, so a failure rate's numerator
-- and denominator are local.
CREATE TABLE IF NOT EXISTS crmpulse.delivery_status_local ON CLUSTER '{cluster}' (
    tenant       String,
    shard        UInt16,
    channel      String,
    provider     String,
    campaign_id  String,
    status       String,
    window_start DateTime,
    window_end   DateTime,
    receipts     UInt64,
    version      UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/delivery_status', '{replica}', version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (tenant, window_start, window_end, channel, provider, campaign_id, status, shard);

CREATE TABLE IF NOT EXISTS crmpulse.delivery_status ON CLUSTER '{cluster}' AS crmpulse.delivery_status_local
ENGINE = Distributed('{cluster}', crmpulse, delivery_status_local, cityHash64(tenant, window_start, channel, provider, campaign_id));

-- How far each resent attempt went: all outcomes of a trigger on the shard
-- of the trigger itself (resend_triggers has the same key).
CREATE TABLE IF NOT EXISTS crmpulse.resend_outcomes_local ON CLUSTER '{cluster}' (
    trigger_id  String,
    outcome     String,
    policy      String,
    message_id  String,
    customer_id String,
    tenant      String,
    channel     String,
    attempt     UInt16,
    reason      String,
    not_before  DateTime,
    at          DateTime,
    latency_ms  UInt64,
    version     UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/resend_outcomes', '{replica}', version)
PARTITION BY toYYYYMM(not_before)
ORDER BY (tenant, trigger_id, outcome);

CREATE TABLE IF NOT EXISTS crmpulse.resend_outcomes ON CLUSTER '{cluster}' AS crmpulse.resend_outcomes_local
ENGINE = Distributed('{cluster}', crmpulse, resend_outcomes_local, cityHash64(tenant, trigger_id));

-- Every alert state change: the whole history of one alert (one
-- fingerprint) on one shard.
CREATE TABLE IF NOT EXISTS crmpulse.alert_history_local ON CLUSTER '{cluster}' (
    rule              String,
    starts_at         DateTime,
    fingerprint       String,
    starts_at_nsec    UInt32,
    state             String,
    kind              String,
    severity          String,
    tenant            String,
    customer_id       String,
    label_keys        Array(String),
    label_values      Array(String),
    annotation_keys   Array(String),
    annotation_values Array(String),
    value             Float64,
    threshold         Float64,
    ends_at           Nullable(DateTime),
    window_start      Nullable(DateTime),
    window_end        Nullable(DateTime),
    emitted_at        DateTime,
    version           UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/alert_history', '{replica}', version)
PARTITION BY toYYYYMM(starts_at)
ORDER BY (rule, starts_at, fingerprint, starts_at_nsec, state);

CREATE TABLE IF NOT EXISTS crmpulse.alert_history ON CLUSTER '{cluster}' AS crmpulse.alert_history_local
ENGINE = Distributed('{cluster}', crmpulse, alert_history_local, cityHash64(fingerprint));

-- Resend triggers and their cancels: a trigger and its cancel together,
-- with the trigger's outcomes.
CREATE TABLE IF NOT EXISTS crmpulse.resend_triggers_local ON CLUSTER '{cluster}' (
    tenant      String,
    trigger_id  String,
    action      String,
    policy      String,
    message_id  String,
    customer_id String,
    channel     String,
    attempt     UInt16,
    reason      String,
    not_before  DateTime,
    created_at  DateTime,
    version     UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/resend_triggers', '{replica}', version)
PARTITION BY toYYYYMM(not_before)
ORDER BY (tenant, trigger_id, action);

CREATE TABLE IF NOT EXISTS crmpulse.resend_triggers ON CLUSTER '{cluster}' AS crmpulse.resend_triggers_local
ENGINE = Distributed('{cluster}', crmpulse, resend_triggers_local, cityHash64(tenant, trigger_id));

-- The churn state of each customer per inactivity rule. Not partitioned
-- (as on a single node); a customer's rows on the shard of their activity.
CREATE TABLE IF NOT EXISTS crmpulse.customer_state_local ON CLUSTER '{cluster}' (
    tenant           String,
    customer_id      String,
    rule             String,
    churn_state      String,
    last_activity    DateTime,
    changed_at       DateTime,
    idle_for_seconds Float64,
    fingerprint      String,
    version          UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/customer_state', '{replica}', version)
ORDER BY (tenant, customer_id, rule);

CREATE TABLE IF NOT EXISTS crmpulse.customer_state ON CLUSTER '{cluster}' AS crmpulse.customer_state_local
ENGINE = Distributed('{cluster}', crmpulse, customer_state_local, cityHash64(tenant, customer_id));

-- Migration 2 (raw_events): the optional raw-event tables, empty unless
-- clickhouse.raw_events is on. A customer's records on the shard of their
-- activity and churn state.
CREATE TABLE IF NOT EXISTS crmpulse.interactions_raw_local ON CLUSTER '{cluster}' (
    tenant           String,
    shard            UInt16,
    customer_id      String,
    occurred_at      DateTime,
    event_id         String,
    occurred_at_nsec UInt32,
    type             String,
    segment          String,
    region           String,
    channel          String,
    amount           Float64,
    currency         String,
    attribute_keys   Array(String),
    attribute_values Array(String),
    version          UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/interactions_raw', '{replica}', version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant, customer_id, occurred_at, event_id);

CREATE TABLE IF NOT EXISTS crmpulse.interactions_raw ON CLUSTER '{cluster}' AS crmpulse.interactions_raw_local
ENGINE = Distributed('{cluster}', crmpulse, interactions_raw_local, cityHash64(tenant, customer_id));

CREATE TABLE IF NOT EXISTS crmpulse.receipts_raw_local ON CLUSTER '{cluster}' (
    tenant           String,
    shard            UInt16,
    customer_id      String,
    occurred_at      DateTime,
    receipt_id       String,
    occurred_at_nsec UInt32,
    message_id       String,
    channel          String,
    status           String,
    attempt          UInt16,
    campaign_id      String,
    template_id      String,
    provider         String,
    error_code       String,
    recipient_tz     String,
    version          UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/receipts_raw', '{replica}', version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant, customer_id, occurred_at, receipt_id);

CREATE TABLE IF NOT EXISTS crmpulse.receipts_raw ON CLUSTER '{cluster}' AS crmpulse.receipts_raw_local
ENGINE = Distributed('{cluster}', crmpulse, receipts_raw_local, cityHash64(tenant, customer_id));

-- Migration 3 (customers): the current profile of each customer, on the
-- shard of their activity and churn state; and the alerts that carry an
-- account_manager label, one account manager's on one shard.
CREATE TABLE IF NOT EXISTS crmpulse.customers_local ON CLUSTER '{cluster}' (
    tenant           String,
    customer_id      String,
    updated_at       DateTime,
    account_manager  String,
    tier             String,
    segment          String,
    region           String,
    timezone         String,
    attribute_keys   Array(String),
    attribute_values Array(String),
    deleted          UInt8,
    version          UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/customers', '{replica}', version)
ORDER BY (tenant, customer_id);

CREATE TABLE IF NOT EXISTS crmpulse.customers ON CLUSTER '{cluster}' AS crmpulse.customers_local
ENGINE = Distributed('{cluster}', crmpulse, customers_local, cityHash64(tenant, customer_id));

CREATE TABLE IF NOT EXISTS crmpulse.account_manager_alerts_local ON CLUSTER '{cluster}' (
    tenant          String,
    account_manager String,
    starts_at       DateTime,
    rule            String,
    fingerprint     String,
    starts_at_nsec  UInt32,
    state           String,
    kind            String,
    severity        String,
    customer_id     String,
    ends_at         Nullable(DateTime),
    version         UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/account_manager_alerts', '{replica}', version)
PARTITION BY toYYYYMM(starts_at)
ORDER BY (tenant, account_manager, starts_at, rule, fingerprint, starts_at_nsec, state);

CREATE TABLE IF NOT EXISTS crmpulse.account_manager_alerts ON CLUSTER '{cluster}' AS crmpulse.account_manager_alerts_local
ENGINE = Distributed('{cluster}', crmpulse, account_manager_alerts_local, cityHash64(tenant, account_manager));

-- Migration 4 (segments): segment transitions and each key's current
-- class. A customer's rows on the shard of their activity and churn state,
-- so the revenue of a class joins on one shard.
CREATE TABLE IF NOT EXISTS crmpulse.segment_transitions_local ON CLUSTER '{cluster}' (
    tenant      String,
    segment_set String,
    customer_id String,
    key_id      String,
    at          DateTime,
    at_nsec     UInt32,
    from_class  String,
    to_class    String,
    key_keys    Array(String),
    key_values  Array(String),
    emitted_at  DateTime,
    version     UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/segment_transitions', '{replica}', version)
PARTITION BY toYYYYMM(at)
ORDER BY (tenant, segment_set, customer_id, key_id, at, at_nsec);

CREATE TABLE IF NOT EXISTS crmpulse.segment_transitions ON CLUSTER '{cluster}' AS crmpulse.segment_transitions_local
ENGINE = Distributed('{cluster}', crmpulse, segment_transitions_local, cityHash64(tenant, customer_id));

CREATE TABLE IF NOT EXISTS crmpulse.segment_current_local ON CLUSTER '{cluster}' (
    tenant         String,
    segment_set    String,
    customer_id    String,
    key_id         String,
    class          String,
    since          DateTime,
    since_nsec     UInt32,
    previous_class String,
    key_keys       Array(String),
    key_values     Array(String),
    version        UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/segment_current', '{replica}', version)
ORDER BY (tenant, segment_set, customer_id, key_id);

CREATE TABLE IF NOT EXISTS crmpulse.segment_current ON CLUSTER '{cluster}' AS crmpulse.segment_current_local
ENGINE = Distributed('{cluster}', crmpulse, segment_current_local, cityHash64(tenant, customer_id));

-- Migration 5 (digests): one row per digest_id. One account manager's
-- digests on one shard, like their alerts (every copy of a digest has the
-- same account_manager: it is part of its group, hence of its id).
CREATE TABLE IF NOT EXISTS crmpulse.digests_local ON CLUSTER '{cluster}' (
    tenant             String,
    digest             String,
    account_manager    String,
    digest_id          String,
    period_start       DateTime,
    period_end         DateTime,
    group_keys         Array(String),
    group_values       Array(String),
    fired              UInt32,
    resolved           UInt32,
    open               UInt32,
    alert_fingerprints Array(String),
    metric_names       Array(String),
    metric_values      Array(Float64),
    segment_classes    Array(String),
    segment_counts     Array(UInt64),
    body               String,
    emitted_at         DateTime,
    version            UInt64
) ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/crmpulse/digests', '{replica}', version)
PARTITION BY toYYYYMM(period_end)
ORDER BY (tenant, digest, account_manager, period_end, digest_id);

CREATE TABLE IF NOT EXISTS crmpulse.digests ON CLUSTER '{cluster}' AS crmpulse.digests_local
ENGINE = Distributed('{cluster}', crmpulse, digests_local, cityHash64(tenant, account_manager));

-- The versions above, recorded so that crmpulse (Migrate, SchemaVersion)
-- sees the schema as current. A synchronous insert: the rows are on their
-- shard when the script ends. Applying the file again adds nothing new:
-- the same version lands on the same shard and collapses.
SET insert_distributed_sync = 1;

INSERT INTO crmpulse.schema_migrations (version, name, applied_at) VALUES (1, 'init', now()), (2, 'raw_events', now()), (3, 'customers', now()), (4, 'segments', now()), (5, 'digests', now());
