-- The audit trail of decisions: one row per state change as it went over mail.decisions
-- (created, extended, expired, lifted), with who did it (origin: a detector or operator:NAME).
-- changed_at is when the change took effect: created_at (or updated_at, an extension) while
-- active, expires_at once expired, updated_at or the bus time when lifted; recorded_at is the
-- bus time. A redelivered change has the same key and merges away.
-- target_low/target_high: the address range of the target (an IP is a range of one), so
-- "was this IP blocked at T" is a range test.
CREATE TABLE IF NOT EXISTS {db}.{t:decisions} {on_cluster}
(
    id          String,
    changed_at  DateTime64(3, 'UTC'),
    state       LowCardinality(String),
    target      String,
    target_low  IPv6,
    target_high IPv6,
    action      LowCardinality(String),
    reply       String,
    detector    LowCardinality(String),
    reason      String CODEC(ZSTD(3)),
    confidence  Float32,
    created_at  DateTime64(3, 'UTC'),
    expires_at  DateTime64(3, 'UTC'),
    detection_id String,
    offense     UInt32,
    recorded_at DateTime64(3, 'UTC'),
    origin      LowCardinality(String),
    evidence    String CODEC(ZSTD(3)),
    ingested_at DateTime DEFAULT now()
)
ENGINE = {replicated}ReplacingMergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY (id, changed_at, state, expires_at)
TTL toDateTime(created_at) + toIntervalDay({audit_retention_days})
SETTINGS non_replicated_deduplication_window = 1000;
-- distributed: decisions BY cityHash64(id)
