-- Which migrations ran, in which dialect, with which checksum. Created by the migrator before
-- anything else; kept here so `migrate --print` shows the whole schema. On a cluster it is
-- replicated under its plain name (no Distributed table): every node sees what ran.
CREATE TABLE IF NOT EXISTS {db}.schema_migrations {on_cluster}
(
    version    UInt32,
    name       String,
    checksum   String,
    dialect    LowCardinality(String),
    applied_at DateTime DEFAULT now()
)
ENGINE = {replicated}ReplacingMergeTree
ORDER BY version;
