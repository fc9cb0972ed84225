-- Migration 5: scheduled digests (SPEC §3.4, §4), one row per digest_id.
--
-- Same rules as 0001 (see its header). digest_id is the record's own
-- deterministic id, so writing a digest again (a retry, a restart, a
-- replay over the same data) replaces its row. The group is the parallel
-- group_keys / group_values arrays, sorted by key; account_manager is the
-- group's account_manager value ('' when the digest does not group by
-- it), lifted out so dashboards and the per-manager list filter on a
-- column. Alerts are counted per list and their fingerprints kept (fired,
-- then resolved, then open, as the record lists them); metrics and
-- segment counts are parallel arrays sorted by name. body is the
-- record's JSON (SPEC §4) for whoever needs all of it.
CREATE TABLE IF NOT EXISTS digests (
    tenant             {{.Dim}},
    digest             {{.Dim}},
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
    emitted_at         DateTime{{.TimeCodec}},
    version            UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(period_end)
ORDER BY (tenant, digest, account_manager, period_end, digest_id);
