import { z } from 'zod';

// The `ship` section: which files to follow, where the checkpoint lives, and the bounds that
// keep a shipper's memory flat when Kafka is slow or away.

export const shipParserSchema = z
  .object({
    year: z
      .number()
      .int()
      .min(1970)
      .max(9999)
      .nullable()
      .default(null)
      .describe(
        'year for classic syslog timestamps without one ("Nov 27 21:08:16"); null: guess from the clock',
      ),
    timezone: z
      .string()
      .nullable()
      .default(null)
      .describe('IANA time zone of timestamps without an offset (e.g. Europe/Berlin); null: the local zone'),
    line_host: z
      .string()
      .nullable()
      .default(null)
      .describe('host name for lines that carry none (Exim main logs); null: the top-level `host`'),
  })
  .strict();

export const shipSchema = z
  .object({
    files: z
      .array(z.string().min(1))
      .default(['/var/log/mail.log'])
      .describe(
        'files to follow: paths or globs (`*`, `?`, `[...]` in any path component, no `**`); ' +
          'files that match later are picked up; compressed files (.gz .bz2 .xz .zst ...) are never read',
      ),
    start_at: z
      .enum(['end', 'beginning'])
      .default('end')
      .describe(
        'where to start in a file that has no checkpoint and exists when the shipper starts; ' +
          'files that appear later are always read from the beginning',
      ),
    checkpoint_path: z
      .string()
      .nullable()
      .default(null)
      .describe('checkpoint file (JSON, written atomically); null: <data_dir>/ship/checkpoint.json'),
    checkpoint_interval_ms: z
      .number()
      .int()
      .min(10)
      .default(250)
      .describe(
        'how often the checkpoint is written when acknowledged offsets moved (a crash re-sends at most ' +
          'what was acknowledged in this time plus what was in flight)',
      ),
    poll_interval_ms: z
      .number()
      .int()
      .min(10)
      .default(250)
      .describe(
        'how often every file is stat()ed for growth, truncation and rotation (fs.watch wakes it up sooner)',
      ),
    rescan_interval_ms: z
      .number()
      .int()
      .min(10)
      .default(2000)
      .describe('how often globs are expanded again to find new files'),
    rotate_wait_ms: z
      .number()
      .int()
      .min(0)
      .default(5000)
      .describe(
        'after a rename-and-create rotation, how long the old file is still watched for late writes ' +
          '(a daemon writes to it until it reopens its log)',
      ),
    read_chunk_bytes: z
      .number()
      .int()
      .min(4096)
      .default(256 * 1024)
      .describe('bytes read from a file per read() call'),
    max_line_bytes: z
      .number()
      .int()
      .min(1024)
      .max(900 * 1024)
      .default(64 * 1024)
      .describe(
        'a longer line is still one event (kind unknown, truncated: true, raw cut to this many bytes plus a ' +
          'marker, record header truncated_bytes = its full length); the offset advances past the whole line',
      ),
    fingerprint_bytes: z
      .number()
      .int()
      .min(16)
      .max(4096)
      .default(256)
      .describe(
        'file identity = device + inode + a hash of the first line, up to this many bytes ' +
          '(tells a reused inode or a truncated file from the old one)',
      ),
    batch_max_events: z.number().int().min(1).default(2000).describe('events per produce request at most'),
    batch_max_bytes: z
      .number()
      .int()
      .min(1024)
      .default(900 * 1024)
      .describe('encoded bytes per produce request at most (keep below the broker message.max.bytes)'),
    linger_ms: z
      .number()
      .int()
      .min(0)
      .default(20)
      .describe('how long a batch that is not full waits for more lines before it is sent'),
    compression: z
      .enum(['none', 'gzip', 'snappy', 'lz4', 'zstd'])
      .default('gzip')
      .describe('compression of produced batches (what the bus implementation supports)'),
    gzip_level: z
      .number()
      .int()
      .min(1)
      .max(9)
      .default(1)
      .describe(
        'gzip level with compression: gzip, 1 (fastest) to 9 (smallest); honoured by bus.kafka.producer_client platformatic',
      ),
    producer_thread: z
      .boolean()
      .default(true)
      .describe(
        'run the Kafka producer client in a worker thread, so compression and the protocol use another core than reading and parsing',
      ),
    max_in_flight_requests: z
      .number()
      .int()
      .min(1)
      .max(16)
      .default(4)
      .describe(
        'batches sent to the bus at once; 1 keeps the file order in Kafka even across produce failures ' +
          '(with more, a batch retried after a failure lands after newer ones; nothing is lost either way)',
      ),
    max_in_flight_events: z
      .number()
      .int()
      .min(1)
      .default(20_000)
      .describe('events read but not yet acknowledged by the bus; reading pauses above this'),
    max_in_flight_bytes: z
      .number()
      .int()
      .min(64 * 1024)
      .default(32 * 1024 * 1024)
      .describe(
        'bytes (raw lines + encoded events) read but not yet acknowledged; reading pauses above this',
      ),
    retry_initial_ms: z
      .number()
      .int()
      .min(1)
      .default(200)
      .describe('first wait before a failed produce is retried; doubles up to retry_max_ms'),
    retry_max_ms: z
      .number()
      .int()
      .min(1)
      .default(30_000)
      .describe('longest wait between produce retries (a failed batch is retried forever, never dropped)'),
    shutdown_grace_ms: z
      .number()
      .int()
      .min(0)
      .default(10_000)
      .describe('on SIGTERM, how long to wait for in-flight events to be acknowledged before exiting'),
    client_join_hold_ms: z
      .number()
      .int()
      .min(0)
      .default(2_000)
      .describe(
        'how long a Sendmail `<rcpt>... User unknown` line waits for the from= line of its queue id that names the client (lines after it wait too, keeping file order); 0 ships it at once without a client',
      ),
    client_join_max_held: z
      .number()
      .int()
      .positive()
      .default(10_000)
      .describe(
        'most lines of one file waiting for a client at once; beyond it the oldest goes on without one',
      ),
    parser: shipParserSchema.prefault({}),
  })
  .strict();

export type ShipConfig = z.infer<typeof shipSchema>;
