import type { FastifyInstance } from 'fastify';
import { parseTarget, parseTargetLoose } from '../../respond/target.js';
import {
  searchByIp,
  searchByMessageId,
  searchByQueueId,
  searchByRecipient,
  searchBySender,
  topUnknownRecipientSources,
  traceMessage,
} from '../../store/queries.js';
import { browseEvents } from '../browse.js';
import { InputError } from '../errors.js';
import type { ApiContext } from '../server.js';
import { parseRange, parseWindow } from '../time.js';

// Centralized log search, message trace and the top unknown-recipient sources.

/** A single address, strictly (no "127.1", no zone ids): what an MTA logs. */
function addressOf(s: string): string {
  if (s.includes('/')) throw new InputError('ip takes an address; use prefix= for a CIDR');
  const t = parseTarget(s);
  if (!t.ok) throw new InputError(`ip: ${t.error}`);
  return t.target.text;
}

/** A CIDR prefix; host bits are cleared (198.51.100.7/24 searches 198.51.100.0/24). */
function prefixOf(s: string): string {
  const t = parseTargetLoose(s);
  if (!t.ok) throw new InputError(`prefix: ${t.error}`);
  return t.target.text;
}

const time = { type: 'string', minLength: 1, maxLength: 64 } as const;

const SELECTORS = ['ip', 'prefix', 'sender', 'recipient', 'queue_id', 'message_id'] as const;

interface EventsQuery {
  contains?: string;
  ip?: string;
  prefix?: string;
  sender?: string;
  recipient?: string;
  queue_id?: string;
  message_id?: string;
  host?: string;
  from?: string;
  to?: string;
  limit?: number;
}

export function registerSearchRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Querystring: EventsQuery }>(
    '/events',
    {
      schema: {
        summary:
          'events of one source, sender, recipient, queue or message, newest first; or a time window of one host (host=) and/or lines holding a text (contains=)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            ip: { type: 'string', minLength: 2, maxLength: 64, pattern: '^[0-9A-Fa-f:.]+$' },
            prefix: { type: 'string', minLength: 4, maxLength: 64, pattern: '^[0-9A-Fa-f:.]+/[0-9]{1,3}$' },
            sender: { type: 'string', maxLength: 512 },
            recipient: { type: 'string', minLength: 1, maxLength: 512 },
            queue_id: { type: 'string', minLength: 1, maxLength: 64, pattern: '^[0-9A-Za-z]+$' },
            message_id: { type: 'string', minLength: 1, maxLength: 998 },
            host: { type: 'string', minLength: 1, maxLength: 255 },
            contains: { type: 'string', minLength: 3, maxLength: 200 },
            from: time,
            to: time,
            limit: { type: 'integer', minimum: 1, maximum: 100_000 },
          },
        },
      },
    },
    async (req) => {
      const q = req.query;
      const given = SELECTORS.filter((k) => q[k] !== undefined);
      const now = ctx.now();
      if (given.length === 0 && (q.host !== undefined || q.contains !== undefined)) {
        // Reading a window of one server's log, or grepping every server's: no index to go by.
        const span = Math.min(3_600_000, ctx.cfg.api.max_scan_window_s * 1000);
        const range = parseRange(q, now, span);
        const to = range.to ?? new Date(now).toISOString();
        if (Date.parse(to) - Date.parse(range.from!) > ctx.cfg.api.max_scan_window_s * 1000) {
          throw new InputError(
            `host= alone or contains= scan every line: the window may be at most ${ctx.cfg.api.max_scan_window_s} s (api.max_scan_window_s)`,
          );
        }
        const limit = Math.min(q.limit ?? 1000, ctx.cfg.api.max_search_limit);
        const events = await browseEvents(ctx.ch, {
          from: range.from!,
          to,
          ...(q.host !== undefined ? { host: q.host } : {}),
          ...(q.contains !== undefined ? { contains: q.contains } : {}),
          limit,
        });
        return {
          count: events.length,
          limit,
          truncated: events.length >= limit,
          from: range.from,
          to,
          events,
        };
      }
      if (given.length !== 1) {
        throw new InputError(
          given.length === 0
            ? `name what to search: one of ${SELECTORS.join(', ')}, or host= / contains= for a time window`
            : `search by one of ${SELECTORS.join(', ')} at a time, not ${given.join(' and ')}`,
        );
      }
      if (q.host !== undefined && given[0] !== 'queue_id') {
        throw new InputError(
          'host narrows a queue_id search only (queue ids are per host); alone it reads a window',
        );
      }
      if (q.contains !== undefined) {
        throw new InputError(
          'contains= goes with host= or alone (a time window), not with an indexed selector',
        );
      }
      const opts = {
        ...parseRange(q, now),
        limit: Math.min(q.limit ?? 1000, ctx.cfg.api.max_search_limit),
      };
      const events =
        q.ip !== undefined
          ? await searchByIp(ctx.ch, addressOf(q.ip), opts)
          : q.prefix !== undefined
            ? await searchByIp(ctx.ch, prefixOf(q.prefix), opts)
            : q.sender !== undefined
              ? await searchBySender(ctx.ch, q.sender, opts)
              : q.recipient !== undefined
                ? await searchByRecipient(ctx.ch, q.recipient, opts)
                : q.queue_id !== undefined
                  ? await searchByQueueId(ctx.ch, q.queue_id, {
                      ...opts,
                      ...(q.host !== undefined ? { host: q.host } : {}),
                    })
                  : await searchByMessageId(ctx.ch, q.message_id!, opts);
      return { count: events.length, limit: opts.limit, truncated: events.length >= opts.limit, events };
    },
  );

  app.get<{ Params: { message_id: string }; Querystring: { from?: string; to?: string } }>(
    '/trace/:message_id',
    {
      schema: {
        summary: 'a message across hosts (MX -> filter -> mailbox), with its bounces',
        params: {
          type: 'object',
          required: ['message_id'],
          properties: { message_id: { type: 'string', minLength: 1, maxLength: 998 } },
        },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: { from: time, to: time },
        },
      },
    },
    async (req, reply) => {
      const trace = await traceMessage(ctx.ch, req.params.message_id, parseRange(req.query, ctx.now()));
      if (trace.hops.length === 0) {
        return reply.code(404).send({
          error: 'not_found',
          message: `no queue logged Message-ID ${trace.message_id}${req.query.from || req.query.to ? ' in that time range' : ''}`,
        });
      }
      return trace;
    },
  );

  app.get<{
    Querystring: {
      window?: string;
      from?: string;
      to?: string;
      limit?: number;
      v4_prefix?: number;
      v6_prefix?: number;
    };
  }>(
    '/top/unknown-recipients',
    {
      schema: {
        summary: 'sources with the most unknown-recipient rejections (per address or per prefix)',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            window: { type: 'string', minLength: 2, maxLength: 10 },
            from: time,
            to: time,
            limit: { type: 'integer', minimum: 1, maximum: 10_000 },
            v4_prefix: { type: 'integer', minimum: 8, maximum: 32 },
            v6_prefix: { type: 'integer', minimum: 16, maximum: 128 },
          },
        },
      },
    },
    async (req) => {
      const q = req.query;
      if (q.window !== undefined && q.from !== undefined)
        throw new InputError('give window or from, not both');
      const span = parseWindow(q.window ?? '1h');
      const range = parseRange(q, ctx.now(), span);
      const sources = await topUnknownRecipientSources(ctx.ch, {
        ...range,
        limit: q.limit ?? 20,
        ...(q.v4_prefix !== undefined ? { v4_prefix: q.v4_prefix } : {}),
        ...(q.v6_prefix !== undefined ? { v6_prefix: q.v6_prefix } : {}),
      });
      return { from: range.from, to: range.to ?? new Date(ctx.now()).toISOString(), sources };
    },
  );
}
