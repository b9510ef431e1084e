import type { FastifyInstance, FastifyReply } from 'fastify';
import type { PostfixMapType } from '../../respond/postfix/access-map.js';
import { buildFeed, type Feed, type FeedFormat, renderFeed } from '../feed.js';
import type { ApiContext } from '../server.js';
import { inForceNow } from './decisions.js';

// The mitigation feed: the active, unexpired, non-whitelisted tempfail entries, through the
// agents' safety rules, as a Postfix table, a Sendmail access source, or JSON. Sent with
// cache-control: no-store; inside the API a build is shared for api.feed.cache_ms.

/**
 * Built feeds, per format, for api.feed.cache_ms: MTAs whose cron fires on the same minute share
 * one build (and one in-flight build: a burst of fetches does not start a query each). Operator
 * changes clear it.
 */
export class FeedCache<T = Feed> {
  private readonly built = new Map<string, { at: number; feed: Promise<T> }>();

  constructor(private readonly ttlMs: number) {}

  get(key: string, now: number, build: () => Promise<T>): Promise<T> {
    const hit = this.built.get(key);
    if (hit && now - hit.at < this.ttlMs) return hit.feed;
    const feed = build();
    if (this.ttlMs > 0) {
      const entry = { at: now, feed };
      this.built.set(key, entry);
      feed.catch(() => {
        if (this.built.get(key) === entry) this.built.delete(key);
      });
    }
    return feed;
  }

  clear(): void {
    this.built.clear();
  }
}

/** A built feed and, for the text formats, its text (a cache hit renders nothing). */
export interface BuiltFeed {
  feed: Feed;
  text: string | null;
}

function feedOf(ctx: ApiContext, format: FeedFormat): Promise<BuiltFeed> {
  const key = format.kind === 'postfix' ? `postfix:${format.type}` : format.kind;
  return ctx.feedCache.get(key, ctx.now(), async () => {
    const feed = buildFeed(
      await inForceNow(ctx),
      format,
      { cfg: ctx.cfg.respond.safety, whitelist: ctx.whitelist.targets() },
      ctx.now(),
    );
    return { feed, text: format.kind === 'json' ? null : renderFeed(feed, format) };
  });
}

/** A text feed (Postfix table, Sendmail access source) with its entry count in a header. */
async function sendText(reply: FastifyReply, ctx: ApiContext, format: FeedFormat): Promise<FastifyReply> {
  const { feed, text } = await feedOf(ctx, format);
  return reply
    .header('cache-control', 'no-store')
    .header('x-mizugiwa-entries', String(feed.entries.length))
    .type('text/plain; charset=utf-8')
    .send(text);
}

export function registerFeedRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: { type?: PostfixMapType } }>(
    '/feed/postfix',
    {
      schema: {
        summary: 'Postfix check_client_access table of the entries in force',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { type: { type: 'string', enum: ['hash', 'lmdb', 'cidr'] } },
        },
      },
    },
    (req, reply) =>
      sendText(reply, ctx, { kind: 'postfix', type: req.query.type ?? ctx.cfg.api.feed.postfix_type }),
  );

  app.get(
    '/feed/sendmail',
    {
      schema: {
        summary: 'Sendmail access db source (Connect: keys, ERROR:4.x.x values) of the entries in force',
        querystring: { type: 'object', additionalProperties: false, properties: {} },
      },
    },
    (_req, reply) => sendText(reply, ctx, { kind: 'sendmail' }),
  );

  app.get(
    '/feed.json',
    {
      schema: {
        summary:
          'the entries in force as JSON (target, reply, expiry, decision), plus what was skipped and why',
        querystring: { type: 'object', additionalProperties: false, properties: {} },
      },
    },
    async (_req, reply) =>
      reply.header('cache-control', 'no-store').send((await feedOf(ctx, { kind: 'json' })).feed),
  );
}
