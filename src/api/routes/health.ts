import type { FastifyInstance } from 'fastify';
import { registry } from '../../metrics/registry.js';
import type { ApiContext } from '../server.js';

// GET /health: ClickHouse answers a query and the bus answers a metadata request, each within
// api.health_timeout_ms (200, or 503 naming what is down). GET /metrics: the process registry.

interface Probe {
  ok: boolean;
  ms: number;
  error?: string;
}

async function probe(fn: () => Promise<unknown>, timeoutMs: number): Promise<Probe> {
  const start = performance.now();
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      fn(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
      }),
    ]);
    return { ok: true, ms: Math.round(performance.now() - start) };
  } catch (err) {
    return {
      ok: false,
      ms: Math.round(performance.now() - start),
      error: (err as Error).message.split('\n')[0]!,
    };
  } finally {
    clearTimeout(timer);
  }
}

export function registerHealthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get(
    '/health',
    { config: { access: 'none' }, schema: { summary: 'ClickHouse reachable, bus connected' } },
    async (_req, reply) => {
      const timeout = ctx.cfg.api.health_timeout_ms;
      const [clickhouse, bus] = await Promise.all([
        probe(async () => {
          const rs = await ctx.ch.client.query({ query: 'SELECT 1 AS ok', format: 'JSONEachRow' });
          await rs.json();
        }, timeout),
        ctx.bus
          ? probe(
              // A metadata round trip; the topic exists already (operators publish to it).
              () => ctx.bus!.ensureTopics([{ topic: ctx.cfg.bus.topics.decisions, compacted: true }]),
              timeout,
            )
          : Promise.resolve(null),
      ]);
      const ok = clickhouse.ok && (bus === null || bus.ok);
      return reply.code(ok ? 200 : 503).send({
        status: ok ? 'ok' : 'degraded',
        clickhouse: { backend: ctx.ch.backend, ...clickhouse },
        bus: bus === null ? { configured: false } : { configured: true, kind: ctx.bus!.kind, ...bus },
        writes: ctx.producer !== undefined && ctx.cfg.api.tokens.some((t) => t.write),
      });
    },
  );

  app.get(
    '/metrics',
    { config: { access: 'none' }, schema: { summary: 'Prometheus metrics' } },
    async (_req, reply) => reply.type(registry.contentType).send(await registry.metrics()),
  );
}
