-- Migration 4: customer segments (SPEC §3.3): every transition, and each
-- key's current class.
--
-- Same rules as 0001 (see its header). A transition's identity is
-- (segment_set, key, at), the id processor.Transition.ID prints: key_id is
-- processor.Fingerprint of the key (the hex string alert fingerprints use)
-- and the key's fields are the parallel key_keys / key_values arrays,
-- sorted by key. tenant and customer_id come with the key (a key holds
-- customer_id; tenant is the key's, or the tracked record's), which lets
-- the ORDER BY lead with what queries filter on and still be the
-- identity. at holds the seconds, at_nsec the rest. from_class is '' for a
-- key's first class (the JSON record's null).

-- Every segment transition.
CREATE TABLE IF NOT EXISTS segment_transitions (
    tenant      {{.Dim}},
    segment_set {{.Dim}},
    customer_id String,
    key_id      String,
    at          DateTime,
    at_nsec     UInt32,
    from_class  {{.Dim}},
    to_class    {{.Dim}},
    key_keys    Array(String),
    key_values  Array(String),
    emitted_at  DateTime{{.TimeCodec}},
    version     UInt64
) ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(at)
ORDER BY (tenant, segment_set, customer_id, key_id, at, at_nsec);

-- The current class of each key: one row per key, fed by every
-- transition. version is the transition's at in Unix ns (event time, not
-- write time), so the latest transition wins in whatever order rows
-- arrive, and writing a transition again changes nothing. Not
-- partitioned: a key's row must replace itself whatever the month.
CREATE TABLE IF NOT EXISTS segment_current (
    tenant         {{.Dim}},
    segment_set    {{.Dim}},
    customer_id    String,
    key_id         String,
    class          {{.Dim}},
    since          DateTime,
    since_nsec     UInt32,
    previous_class {{.Dim}},
    key_keys       Array(String),
    key_values     Array(String),
    version        UInt64
) ENGINE = ReplacingMergeTree(version)
ORDER BY (tenant, segment_set, customer_id, key_id);
