-- Legacy dialect: the target range as text.
CREATE TABLE IF NOT EXISTS {db}.decisions
(
    id          String,
    changed_at  DateTime,
    state       String,
    target      String,
    target_low  String,
    target_high String,
    action      String,
    reply       String,
    detector    String,
    reason      String,
    confidence  Float32,
    created_at  DateTime,
    expires_at  DateTime,
    detection_id String,
    offense     UInt32,
    recorded_at DateTime,
    origin      String,
    evidence    String,
    ingested_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY (id, changed_at, state, expires_at);
