-- What the detectors saw (Detection contract v1). The evidence is kept whole as JSON and its
-- most searched parts as columns.
CREATE TABLE IF NOT EXISTS {db}.{t:detections} {on_cluster}
(
    id               String,
    ts               DateTime64(3, 'UTC') CODEC(Delta, ZSTD(1)),
    detector         LowCardinality(String),
    subject          String,
    subject_kind     LowCardinality(String),
    reason           String CODEC(ZSTD(3)),
    confidence       Float32,
    decision_id      String,
    -- why no decision followed (whitelisted, dry_run, cap_active, ...), '' when one did
    no_decision      LowCardinality(String),
    window_s         UInt32,
    sample_event_ids Array(String) CODEC(ZSTD(3)),
    hosts            Array(LowCardinality(String)),
    evidence         String CODEC(ZSTD(3)),
    ingested_at      DateTime DEFAULT now(),

    INDEX idx_subject subject TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = {replicated}ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (detector, ts, id)
TTL toDateTime(ts) + toIntervalDay({audit_retention_days})
SETTINGS non_replicated_deduplication_window = 1000;
-- distributed: detections BY cityHash64(id)
