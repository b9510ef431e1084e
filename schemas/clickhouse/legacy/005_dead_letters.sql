-- Legacy dialect.
CREATE TABLE IF NOT EXISTS {db}.dead_letters
(
    ts          DateTime DEFAULT now(),
    source      String,
    topic       String,
    partition   Int32,
    offset      String,
    error       String,
    record      String,
    record_hash UInt64 MATERIALIZED cityHash64(record)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (source, topic, partition, offset, record_hash);
