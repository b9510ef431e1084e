-- One row per log line (MailEvent contract v1) plus the raw line.
-- Sort key: client IP then time, the search administrators make most; the other searches
-- (queue id, message id, sender, recipient) go through bloom-filter skip indexes.
-- ReplacingMergeTree: the shipper is at-least-once and every event has a deterministic id; a
-- redelivered event has the same (client_ip, ts, id) key and merges away. Queries do not wait
-- for merges: they read with `LIMIT 1 BY id` (see src/store/README.md).
-- client_ip is IPv6 (IPv4 as ::ffff:a.b.c.d) so a /24 or /64 is a key range
-- (IPv6CIDRToRange); '::' means "no client address on this line".
-- sender: NULL = the line names no sender; '' = the null sender <> (bounces).
CREATE TABLE IF NOT EXISTS {db}.{t:mail_events} {on_cluster}
(
    id               String CODEC(ZSTD(1)),
    ts               DateTime64(6, 'UTC') CODEC(Delta, ZSTD(1)),
    host             LowCardinality(String),
    program          LowCardinality(String),
    pid              UInt32 CODEC(T64, ZSTD(1)),
    mta              LowCardinality(String),
    kind             LowCardinality(String),
    reason           LowCardinality(String),
    command          LowCardinality(String),
    client_ip        IPv6,
    client_host      String CODEC(ZSTD(1)),
    client_port      UInt16 CODEC(T64, ZSTD(1)),
    queue_id         String CODEC(ZSTD(1)),
    sender           Nullable(String) CODEC(ZSTD(1)),
    recipient        String CODEC(ZSTD(1)),
    -- every recipient when one line names several (recipient is the first)
    recipients       Array(String) CODEC(ZSTD(1)),
    recipient_domain LowCardinality(String) MATERIALIZED
                         if(position(recipient, '@') > 0, lower(splitByChar('@', recipient)[-1]), ''),
    orig_to          String CODEC(ZSTD(1)),
    dsn              LowCardinality(String),
    reply_code       UInt16,
    status           LowCardinality(String),
    relay            String CODEC(ZSTD(1)),
    message_id       String CODEC(ZSTD(1)),
    helo             String CODEC(ZSTD(1)),
    size             UInt64 CODEC(T64, ZSTD(1)),
    nrcpt            UInt32 CODEC(T64, ZSTD(1)),
    delay            Float32 CODEC(ZSTD(1)),
    delays           String CODEC(ZSTD(1)),
    text             String CODEC(ZSTD(3)),
    sasl_username    String CODEC(ZSTD(1)),
    sasl_method      LowCardinality(String),
    proto            LowCardinality(String),
    -- queue id of the notification a bounce/delay notice created: the trace follows it
    bounce_queue_id  String CODEC(ZSTD(1)),
    -- SMTP command counts at disconnect, as JSON: {"rcpt":{"ok":0,"total":1},...}
    command_counts   String CODEC(ZSTD(3)),
    filter_action    LowCardinality(String),
    count            Float64 CODEC(ZSTD(1)),
    truncated        Bool,
    -- MailEvent fields this schema version has no column for, as a JSON object.
    extra            String CODEC(ZSTD(3)),
    raw              String CODEC(ZSTD(3)),
    ingested_at      DateTime DEFAULT now() CODEC(Delta, ZSTD(1)),

    INDEX idx_queue_id   queue_id                  TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_bounce_qid bounce_queue_id           TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_message_id message_id                TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_sender     lower(ifNull(sender, '')) TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_recipient  lower(recipient)          TYPE bloom_filter(0.001) GRANULARITY 1,
    INDEX idx_recipients arrayMap(r -> lower(r), recipients) TYPE bloom_filter(0.001) GRANULARITY 1
)
ENGINE = {replicated}ReplacingMergeTree
PARTITION BY toDate(ts)
PRIMARY KEY (client_ip, ts)
ORDER BY (client_ip, ts, id)
TTL toDateTime(ts) + toIntervalDay({retention_days})
SETTINGS ttl_only_drop_parts = 1, non_replicated_deduplication_window = 1000;
-- distributed: mail_events BY cityHash64(id)
