-- Which migrations ran, in which dialect, with which checksum. Created by the migrator before
-- anything else; kept here so `migrate --print` shows the whole schema.
CREATE TABLE IF NOT EXISTS {db}.{t:schema_migrations} {on_cluster}
(
    version    UInt32,
    name       String,
    checksum   String,
    dialect    LowCardinality(String),
    applied_at DateTime DEFAULT now()
)
ENGINE = {replicated}ReplacingMergeTree
ORDER BY version;
