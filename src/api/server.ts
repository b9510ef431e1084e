import { join } from 'node:path';
import swagger from '@fastify/swagger';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyRequest,
  LogController,
} from 'fastify';
import type { Bus, Producer } from '../bus/bus.js';
import type { ClickHouse } from '../clickhouse/client.js';
import type { Config } from '../config/config.js';
import { type Logger, logger } from '../log/logger.js';
import { RecordError } from '../store/rows.js';
import { type Operator, TokenTable } from './auth.js';
import { InputError, UnavailableError } from './errors.js';
import { requestSeconds, requestsTotal } from './metrics.js';
import { OperatorError } from './operator.js';
import { registerDecisionRoutes } from './routes/decisions.js';
import { type BuiltFeed, FeedCache, registerFeedRoutes } from './routes/feed.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerSearchRoutes } from './routes/search.js';
import { registerSourceRoutes } from './routes/source.js';
import { registerWhitelistRoutes } from './routes/whitelist.js';
import { followWhitelist, Whitelist, WhitelistError } from './whitelist.js';

// The HTTP API: fastify with a JSON schema on every route (a malformed request is a 400 that
// says what is wrong, never a 500), operator tokens, and these routes:
//   GET  /health, /metrics
//   GET  /api/v1/events            search by ip, prefix, sender, recipient, queue_id, message_id
//   GET  /api/v1/trace/:message_id a message across hosts
//   GET  /api/v1/sources/:ip       one client address at a glance
//   GET  /api/v1/top/unknown-recipients
//   GET  /api/v1/decisions         in force at a time;  GET /api/v1/decisions/:id with its audit trail
//   POST /api/v1/decisions         operator add;  POST /api/v1/decisions/:ref/lift, DELETE /api/v1/decisions/:ref
//   GET|POST /api/v1/whitelist, DELETE /api/v1/whitelist/:target
//   GET  /api/v1/feed/postfix, /api/v1/feed/sendmail, /api/v1/feed.json
//   GET  /api/v1/openapi.json      the OpenAPI document of all of these

export const API_PREFIX = '/api/v1';

export type Access = 'none' | 'read' | 'write';

export interface ApiDeps {
  cfg: Config;
  ch: ClickHouse;
  /** Publishes operator changes; without it every write answers 503. */
  producer?: Producer;
  /** Probed by /health; absent: the bus is reported as not configured. */
  bus?: Bus;
  /** Defaults to the runtime whitelist file of the configuration. */
  whitelist?: Whitelist;
  log?: Logger;
  now?: () => number;
}

/** What every route handler gets. */
export interface ApiContext {
  cfg: Config;
  ch: ClickHouse;
  producer: Producer | undefined;
  bus: Bus | undefined;
  whitelist: Whitelist;
  log: Logger;
  now: () => number;
  /** The operator of a request that passed a write check. */
  operator(req: FastifyRequest): Operator;
  /** Built feeds; cleared on every operator change. */
  feedCache: FeedCache<BuiltFeed>;
}

declare module 'fastify' {
  interface FastifyContextConfig {
    access?: Access;
  }
  interface FastifySchema {
    /** One line on what the route does (also what @fastify/swagger would show). */
    summary?: string;
  }
}

export function whitelistPathOf(cfg: Config): string {
  return cfg.api.whitelist_path ?? join(cfg.data_dir, 'api', 'whitelist.json');
}

/** The configured whitelists (read-only over the API). */
export function configuredWhitelist(cfg: Config): Array<{ target: string; section: string }> {
  return [
    ...cfg.respond.safety.whitelist.map((target) => ({ target, section: 'respond.safety.whitelist' })),
    ...cfg.detect.policy.whitelist.map((target) => ({ target, section: 'detect.policy.whitelist' })),
  ];
}

/** Builds the API (not listening): tests call `app.inject`, startApi() calls `app.listen`. */
export async function buildApi(deps: ApiDeps): Promise<FastifyInstance> {
  const { cfg } = deps;
  const log = deps.log ?? logger('api');
  const closers: Array<() => Promise<void>> = [];
  const whitelist =
    deps.whitelist ??
    (await Whitelist.open({
      path: whitelistPathOf(cfg),
      configured: configuredWhitelist(cfg),
      topic: cfg.api.whitelist_topic,
      ...(deps.producer ? { producer: deps.producer } : {}),
    }));
  // On a shared bus every instance follows the whitelist topic: an entry added on one is in force on all.
  if (deps.bus && !deps.whitelist) {
    const follower = await followWhitelist(deps.bus, whitelist, cfg.api.whitelist_topic, log);
    closers.push(() => follower.close());
  }
  const tokens = new TokenTable(cfg.api.tokens);
  const operators = new WeakMap<FastifyRequest, Operator>();

  const app = Fastify({
    loggerInstance: log as FastifyBaseLogger,
    // Feeds are fetched every minute by every MTA: requests are counted in metrics, not logged.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: cfg.api.body_limit,
    // Unknown query parameters are an error (a typo must not widen a search), not dropped.
    ajv: { customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false } },
    return503OnClosing: true,
  });

  app.addHook('onClose', async () => {
    for (const close of closers) await close();
  });

  // JSON bodies only: anything else is a 415 rather than a string that fails validation.
  app.removeContentTypeParser('text/plain');

  const ctx: ApiContext = {
    cfg,
    ch: deps.ch,
    producer: deps.producer,
    bus: deps.bus,
    whitelist,
    log,
    now: deps.now ?? Date.now,
    feedCache: new FeedCache(cfg.api.feed.cache_ms),
    operator(req) {
      const op = operators.get(req);
      if (!op) throw new Error('route without write access asked for an operator');
      return op;
    },
  };

  app.addHook('onRequest', async (req, reply) => {
    const access = req.routeOptions.config.access ?? 'read';
    const need = access === 'read' && !cfg.api.read_requires_token ? 'none' : access;
    const r = tokens.check(req.headers.authorization, need);
    if (!r.ok) {
      return reply
        .code(r.status)
        .send({ error: r.status === 401 ? 'unauthorized' : 'forbidden', message: r.message });
    }
    if (r.operator) operators.set(req, r.operator);
  });

  app.addHook('onResponse', async (req, reply) => {
    if (req.method !== 'GET' && req.method !== 'HEAD' && reply.statusCode < 300) ctx.feedCache.clear();
    const route = req.routeOptions.url ?? 'unmatched';
    requestsTotal.inc({ route, method: req.method, status: String(reply.statusCode) });
    requestSeconds.observe({ route }, reply.elapsedTime / 1000);
  });

  app.setErrorHandler((err: FastifyError, req, reply) => {
    if (err.validation) {
      return reply.code(400).send({
        error: 'bad_request',
        message:
          `${err.validationContext ?? 'request'} ${err.message.replace(/^(querystring|body|params|headers)\/?/, '')}`.trim(),
      });
    }
    // fastify's own client errors (body too large: 413, bad content type: 415) carry their status.
    if (err.code?.startsWith('FST_') && typeof err.statusCode === 'number' && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: 'bad_request', message: err.message });
    }
    if (err instanceof InputError || err instanceof RangeError || err instanceof RecordError) {
      return reply.code(400).send({ error: 'bad_request', message: err.message });
    }
    if (err instanceof OperatorError || err instanceof WhitelistError) {
      return reply.code(err.status).send({
        error: err.status === 404 ? 'not_found' : err.status === 409 ? 'conflict' : 'bad_request',
        message: err.message,
        ...('rule' in err && err.rule ? { rule: err.rule } : {}),
      });
    }
    if (typeof err.statusCode === 'number' && err.statusCode >= 400 && err.statusCode < 500) {
      return reply.code(err.statusCode).send({ error: 'bad_request', message: err.message });
    }
    if (err instanceof UnavailableError) {
      return reply.code(503).send({ error: 'unavailable', message: err.message });
    }
    const code = (err as NodeJS.ErrnoException).code;
    // Connection failures, and @clickhouse/client's request timeout ("Timeout error."): 503.
    if (
      code === 'ECONNREFUSED' ||
      code === 'ECONNRESET' ||
      code === 'ETIMEDOUT' ||
      code === 'EHOSTUNREACH' ||
      /^Timeout error/.test(err.message)
    ) {
      req.log.error({ err, route: req.routeOptions.url }, 'backend unavailable');
      return reply.code(503).send({
        error: 'unavailable',
        message: `a backend is unavailable (${code ?? err.message}); see /health`,
      });
    }
    if (err.name?.startsWith('KafkaJS')) {
      req.log.error({ err, route: req.routeOptions.url }, 'bus unavailable');
      return reply.code(503).send({
        error: 'unavailable',
        message: `the bus is unavailable (${err.name}); see /health`,
      });
    }
    req.log.error({ err, route: req.routeOptions.url, method: req.method }, 'request failed');
    return reply
      .code(500)
      .send({ error: 'internal', message: 'internal error; the API log has the details' });
  });

  app.setNotFoundHandler((req, reply) =>
    reply.code(404).send({
      error: 'not_found',
      message: `no route ${req.method} ${req.url.split('?')[0]}; the API lives under ${API_PREFIX} (plus /health and /metrics)`,
    }),
  );

  // OpenAPI document of every route (their JSON schemas and summaries) at /api/v1/openapi.json.
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'mizugiwa API',
        version: '1',
        description:
          'Log search, message trace, decisions, operator add/lift and whitelist, and the mitigation feed. ' +
          'Writes need `Authorization: Bearer <token>` (api.tokens).',
      },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
    },
  });
  app.get('/api/v1/openapi.json', { schema: { hide: true } as never, config: { access: 'none' } }, async () =>
    app.swagger(),
  );

  registerHealthRoutes(app, ctx);
  await app.register(
    async (v1) => {
      registerSearchRoutes(v1, ctx);
      registerSourceRoutes(v1, ctx);
      registerDecisionRoutes(v1, ctx);
      registerWhitelistRoutes(v1, ctx);
      registerFeedRoutes(v1, ctx);
    },
    { prefix: API_PREFIX },
  );
  return app;
}
