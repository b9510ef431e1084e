-- Per-minute rollups for dashboards that must stay fast over months. Each is a
-- SummingMergeTree fed by a materialized view on mail_events, so it costs one small insert
-- per batch. Counts are of inserted rows: a batch resent with the same deduplication token is
-- dropped before the views see it, but an event redelivered inside a different batch
-- (after a consumer crash) is counted again. Exact per-event counts come from mail_events.

-- By source (client IP): the unknown-user and flow-control view of a source.
CREATE TABLE IF NOT EXISTS {db}.{t:rollup_source_1m} {on_cluster}
(
    minute        DateTime CODEC(Delta, ZSTD(1)),
    client_ip     IPv6,
    events        UInt64,
    connects      UInt64,
    messages      UInt64,
    rejects       UInt64,
    user_unknown  UInt64,
    auth_failures UInt64,
    null_sender   UInt64
)
ENGINE = {replicated}SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, client_ip)
TTL minute + toIntervalDay({rollup_retention_days})
SETTINGS non_replicated_deduplication_window = 1000;
-- distributed: rollup_source_1m BY rand()

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{t:rollup_source_1m_mv} {on_cluster}
TO {db}.{t:rollup_source_1m} AS
SELECT
    toStartOfMinute(ts) AS minute,
    client_ip,
    count() AS events,
    countIf(kind = 'connect') AS connects,
    countIf(kind IN ('client', 'queued')) AS messages,
    countIf(kind = 'reject') AS rejects,
    countIf(reason = 'user_unknown') AS user_unknown,
    countIf(kind = 'auth_failure') AS auth_failures,
    countIf(sender = '') AS null_sender
FROM {db}.{t:mail_events}
GROUP BY minute, client_ip;

-- By recipient domain: harvests against a domain, bounce volume towards it.
CREATE TABLE IF NOT EXISTS {db}.{t:rollup_recipient_domain_1m} {on_cluster}
(
    minute           DateTime CODEC(Delta, ZSTD(1)),
    recipient_domain LowCardinality(String),
    events           UInt64,
    rejects          UInt64,
    user_unknown     UInt64,
    sent             UInt64,
    deferred         UInt64,
    bounced          UInt64
)
ENGINE = {replicated}SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, recipient_domain)
TTL minute + toIntervalDay({rollup_retention_days})
SETTINGS non_replicated_deduplication_window = 1000;
-- distributed: rollup_recipient_domain_1m BY rand()

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{t:rollup_recipient_domain_1m_mv} {on_cluster}
TO {db}.{t:rollup_recipient_domain_1m} AS
SELECT
    toStartOfMinute(ts) AS minute,
    recipient_domain,
    count() AS events,
    countIf(kind = 'reject') AS rejects,
    countIf(reason = 'user_unknown') AS user_unknown,
    countIf(status = 'sent') AS sent,
    countIf(status = 'deferred') AS deferred,
    countIf(status = 'bounced') AS bounced
FROM {db}.{t:mail_events}
WHERE recipient_domain != ''
GROUP BY minute, recipient_domain;

-- By host (MTA server): per-server health and volume.
CREATE TABLE IF NOT EXISTS {db}.{t:rollup_host_1m} {on_cluster}
(
    minute DateTime CODEC(Delta, ZSTD(1)),
    host   LowCardinality(String),
    mta    LowCardinality(String),
    kind   LowCardinality(String),
    events UInt64
)
ENGINE = {replicated}SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, host, mta, kind)
TTL minute + toIntervalDay({rollup_retention_days})
SETTINGS non_replicated_deduplication_window = 1000;
-- distributed: rollup_host_1m BY rand()

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{t:rollup_host_1m_mv} {on_cluster}
TO {db}.{t:rollup_host_1m} AS
SELECT toStartOfMinute(ts) AS minute, host, mta, kind, count() AS events
FROM {db}.{t:mail_events}
GROUP BY minute, host, mta, kind;

-- By kind and reason, fleet-wide: unknown-user rate, bounce storms, rejects.
CREATE TABLE IF NOT EXISTS {db}.{t:rollup_kind_1m} {on_cluster}
(
    minute      DateTime CODEC(Delta, ZSTD(1)),
    kind        LowCardinality(String),
    reason      LowCardinality(String),
    events      UInt64,
    null_sender UInt64
)
ENGINE = {replicated}SummingMergeTree
PARTITION BY toYYYYMM(minute)
ORDER BY (minute, kind, reason)
TTL minute + toIntervalDay({rollup_retention_days})
SETTINGS non_replicated_deduplication_window = 1000;
-- distributed: rollup_kind_1m BY rand()

CREATE MATERIALIZED VIEW IF NOT EXISTS {db}.{t:rollup_kind_1m_mv} {on_cluster}
TO {db}.{t:rollup_kind_1m} AS
SELECT toStartOfMinute(ts) AS minute, kind, reason, count() AS events, countIf(sender = '') AS null_sender
FROM {db}.{t:mail_events}
GROUP BY minute, kind, reason;
