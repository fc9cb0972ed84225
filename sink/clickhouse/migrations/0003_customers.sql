-- Migration 3: who the customers are (SPEC §1.3) and the alerts that reach
-- their account managers.
--
-- Same rules as 0001 (see its header).

-- The current profile of each customer (processor/profilerows): one row per
-- (tenant, customer_id). Every profile version the engine reads is written
-- with version = its updated_at in Unix ns, so the newest version replaces
-- the older ones whatever the order of writes, and a version written again
-- (a replay, a restart) collapses with itself. A deleted version is a row
-- with deleted = 1 and empty fields: read with FINAL ... WHERE deleted = 0.
-- Not partitioned: a customer's row must replace itself whatever the month.
--
-- account_manager is stored in clear (an employee, not the customer's
-- contact data). Contact attributes (birthday by default; the setting of
-- the raw tables) arrive as an HMAC, or not at all without a hash key.
CREATE TABLE IF NOT EXISTS customers (
    tenant           {{.Dim}},
    customer_id      String,
    updated_at       DateTime,
    account_manager  {{.Dim}},
    tier             {{.Dim}},
    segment          {{.Dim}},
    region           {{.Dim}},
    timezone         {{.Dim}},
    attribute_keys   Array(String),
    attribute_values Array(String){{.TextCodec}},
    deleted          UInt8,
    version          UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, customer_id);

-- The alerts of alert_history that carry an account_manager label (rules
-- with customer_labels, SPEC §3): reminders, deadlines, churn... of the
-- customers an account manager looked after when the alert fired. A copy
-- of each such alert_history row's identity and summary, keyed by the
-- account manager so that a dashboard filtering on one reads only that
-- person's rows. (18.16 has no ADD COLUMN IF NOT EXISTS, which an
-- idempotent migration would need to put the column in alert_history.)
-- Filled from the time this migration ran; older alerts are found in
-- alert_history through label_keys / label_values.
CREATE TABLE IF NOT EXISTS account_manager_alerts (
    tenant          {{.Dim}},
    account_manager {{.Dim}},
    starts_at       DateTime,
    rule            {{.Dim}},
    fingerprint     String,
    starts_at_nsec  UInt32,
    state           {{.Dim}},
    kind            {{.Dim}},
    severity        {{.Dim}},
    customer_id     String,
    ends_at         Nullable(DateTime),
    version         UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(starts_at)
ORDER BY (tenant, account_manager, starts_at, rule, fingerprint, starts_at_nsec, state);
