-- Legacy dialect (ClickHouse before 23: Debian's 18.16). Only what the store needs to run over
-- the network path: no IPv6/LowCardinality/CODEC/TTL/skip indexes/rollups. The named queries
-- need the current dialect.
CREATE TABLE IF NOT EXISTS {db}.schema_migrations
(
    version    UInt32,
    name       String,
    checksum   String,
    dialect    String,
    applied_at DateTime DEFAULT now()
)
ENGINE = ReplacingMergeTree
ORDER BY version;
