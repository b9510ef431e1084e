-- Records the store could not write: not valid JSON, not a valid record, or refused by
-- ClickHouse (the error says why). Keyed by where the record came from, so a redelivered bad
-- record is kept once.
CREATE TABLE IF NOT EXISTS {db}.{t:dead_letters} {on_cluster}
(
    ts          DateTime64(3, 'UTC') DEFAULT now64(3),
    source      LowCardinality(String),
    topic       String,
    partition   Int32,
    offset      String,
    error       String CODEC(ZSTD(3)),
    record      String CODEC(ZSTD(3)),
    record_hash UInt64 MATERIALIZED cityHash64(record)
)
ENGINE = {replicated}ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (source, topic, partition, offset, record_hash)
TTL toDateTime(ts) + toIntervalDay({retention_days});
-- distributed: dead_letters BY rand()
