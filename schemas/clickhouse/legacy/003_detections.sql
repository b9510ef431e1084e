-- Legacy dialect.
CREATE TABLE IF NOT EXISTS {db}.detections
(
    id               String,
    ts               DateTime,
    detector         String,
    subject          String,
    subject_kind     String,
    reason           String,
    confidence       Float32,
    decision_id      String,
    no_decision      String,
    window_s         UInt32,
    sample_event_ids Array(String),
    hosts            Array(String),
    evidence         String,
    ingested_at      DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (detector, ts, id);
