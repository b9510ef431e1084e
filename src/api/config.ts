import { z } from 'zod';
import { respondSafetySchema } from '../respond/config.js';
import { ruleReply } from '../respond/safety.js';

// The `api` section: the HTTP API (search, trace, decisions, whitelist, the mitigation feed,
// health, metrics). Writes always need a token; reads only when read_requires_token is set.

const listen = z
  .string()
  .regex(/^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/, 'expected HOST:PORT (IPv6 as [ADDR]:PORT)')
  .refine((s) => {
    const port = Number(s.slice(s.lastIndexOf(':') + 1));
    return port >= 0 && port <= 65535;
  }, 'port must be 0..65535');

export const apiTokenSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'letters, digits and _.@- only, at most 64')
      .describe('operator name: decisions made with this token carry origin operator:<name>'),
    token: z
      .string()
      .min(16, 'a token must be at least 16 characters')
      .max(256)
      .describe('the secret, sent as `Authorization: Bearer <token>`'),
    write: z
      .boolean()
      .default(true)
      .describe('may add and lift decisions and change the whitelist; false: read-only token'),
  })
  .strict();

export const apiFeedSchema = z
  .object({
    postfix_type: z
      .enum(['hash', 'lmdb', 'cidr'])
      .default('hash')
      .describe(
        'default table type of GET /feed/postfix (?type= overrides): hash/lmdb hold addresses and IPv4 /8,/16,/24 only; cidr holds any prefix',
      ),
    cache_ms: z
      .number()
      .int()
      .min(0)
      .max(60_000)
      .default(2000)
      .describe(
        'a built feed is served this long to every fetch (MTAs fetching on the same cron minute share one build); operator changes clear it; 0: build every time',
      ),
  })
  .strict();

export const apiSchema = z
  .object({
    listen: listen.default('127.0.0.1:8426').describe('HOST:PORT the API listens on (loopback by default)'),
    tokens: z
      .array(apiTokenSchema)
      .default([])
      .describe('operator tokens; without any, every write is refused (403)')
      .refine((ts) => new Set(ts.map((t) => t.name)).size === ts.length, 'token names must be unique')
      .refine((ts) => new Set(ts.map((t) => t.token)).size === ts.length, 'tokens must be distinct'),
    read_requires_token: z
      .boolean()
      .default(false)
      .describe('reads (search, trace, decisions, feeds) need a token too; /health and /metrics never do'),
    max_operator_ttl_s: z
      .number()
      .int()
      .min(60)
      .default(7 * 86400)
      .describe(
        'longest life of an operator decision; a longer ttl is clamped (each agent still clamps to its respond.safety.max_ttl_s)',
      ),
    default_reply: z
      .string()
      .refine((r) => ruleReply({ reply: r }, respondSafetySchema.parse({})) === null, {
        message:
          'must be a 4xx reply with its enhanced code and plain text, e.g. "450 4.7.1 text" (decisions never reject)',
      })
      .default('450 4.7.1 Service temporarily refused by the mail administrator; try later')
      .describe('reply of an operator decision that names none (must pass the respond safety rules)'),
    max_search_limit: z
      .number()
      .int()
      .min(1)
      .max(100_000)
      .default(10_000)
      .describe('most events one search returns (limit= is capped to it)'),
    max_scan_window_s: z
      .number()
      .int()
      .min(60)
      .default(86_400)
      .describe(
        'widest time window of a search without an indexed selector (host= alone, contains=): they scan every line of the window',
      ),
    whitelist_path: z
      .string()
      .nullable()
      .default(null)
      .describe(
        'file of the runtime whitelist (entries added over the API); null: <data_dir>/api/whitelist.json',
      ),
    whitelist_topic: z
      .string()
      .min(1)
      .default('mail.whitelist')
      .describe(
        'compacted topic the runtime whitelist is published on (key: target; tombstone: removed) for other components',
      ),
    migrate_on_start: z
      .boolean()
      .default(true)
      .describe('apply pending ClickHouse schema migrations when the API starts (idempotent)'),
    health_timeout_ms: z
      .number()
      .int()
      .min(100)
      .default(2000)
      .describe('GET /health: a ClickHouse or bus probe slower than this counts as down'),
    body_limit: z.number().int().min(1024).default(65536).describe('largest request body accepted, bytes'),
    feed: apiFeedSchema.prefault({}),
  })
  .strict();

export type ApiConfig = z.infer<typeof apiSchema>;
export type ApiToken = z.infer<typeof apiTokenSchema>;

/** HOST and PORT of a listen string ("127.0.0.1:8426", "[::1]:8426"). */
export function splitListen(s: string): { host: string; port: number } {
  const idx = s.lastIndexOf(':');
  return { host: s.slice(0, idx).replace(/^\[(.*)\]$/, '$1'), port: Number(s.slice(idx + 1)) };
}
