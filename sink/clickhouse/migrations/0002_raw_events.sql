-- Migration 2: the optional raw-event tables (processor/rawevents), for
-- drill-down from an aggregate or an alert to the records behind it. They
-- stay empty unless the rawevents component is enabled.
--
-- Same rules as 0001 (see its header). The identity of a row is its
-- event_id / receipt_id; tenant, customer_id and occurred_at come with the
-- id (the engine deduplicates on it, so one id is one record), which lets
-- the ORDER BY lead with what drill-down filters on (a tenant's customer,
-- in time order) and still be the identity, and lets the month partition
-- come from it. occurred_at holds the seconds, occurred_at_nsec the rest.
-- shard is the input partition that saw the record, for information only:
-- a replay and a run store the same row.
--
-- Contact attributes (email, phone...) arrive here already replaced by an
-- HMAC (rawevents.Config.ContactAttributes); attributes are parallel
-- key/value arrays sorted by key, as in alert_history:
-- attribute_values[indexOf(attribute_keys, 'plan')].

-- Every accepted interaction (ingest.Interaction).
CREATE TABLE IF NOT EXISTS interactions_raw (
    tenant           {{.Dim}},
    shard            UInt16,
    customer_id      String,
    occurred_at      DateTime,
    event_id         String,
    occurred_at_nsec UInt32,
    type             {{.Dim}},
    segment          {{.Dim}},
    region           {{.Dim}},
    channel          {{.Dim}},
    amount           Float64,
    currency         {{.Dim}},
    attribute_keys   Array(String),
    attribute_values Array(String){{.TextCodec}},
    version          UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant, customer_id, occurred_at, event_id);

-- Every accepted delivery receipt (ingest.Receipt).
CREATE TABLE IF NOT EXISTS receipts_raw (
    tenant           {{.Dim}},
    shard            UInt16,
    customer_id      String,
    occurred_at      DateTime,
    receipt_id       String,
    occurred_at_nsec UInt32,
    message_id       String,
    channel          {{.Dim}},
    status           {{.Dim}},
    attempt          UInt16,
    campaign_id      String,
    template_id      String,
    provider         {{.Dim}},
    error_code       {{.Dim}},
    recipient_tz     {{.Dim}},
    version          UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(occurred_at)
ORDER BY (tenant, customer_id, occurred_at, receipt_id);
