import type { FastifyInstance } from 'fastify';
import { parseTarget } from '../../respond/target.js';
import { type DecisionAt, decisionHistory, decisionsInForce, MAX_LIMIT } from '../../store/queries.js';
import { InputError, UnavailableError } from '../errors.js';
import { decisionsMade } from '../history.js';
import { operatorActionsTotal } from '../metrics.js';
import { type AddRequest, addDecision, liftDecisions, type OperatorContext } from '../operator.js';
import type { ApiContext } from '../server.js';
import { parseRange, parseTime } from '../time.js';

// Decisions: what is in force (at a time, for an address), one decision with its audit trail,
// and the operator's add and lift.

const ref = { type: 'string', minLength: 1, maxLength: 200 } as const;
const reason = { type: 'string', minLength: 1, maxLength: 500 } as const;

/** The operator context of a write: needs the bus producer. */
export function operatorContext(ctx: ApiContext): OperatorContext {
  if (!ctx.producer) {
    throw new UnavailableError('this API has no bus producer: operator changes cannot be published');
  }
  return {
    producer: ctx.producer,
    topic: ctx.cfg.bus.topics.decisions,
    safety: ctx.cfg.respond.safety,
    maxTtlS: ctx.cfg.api.max_operator_ttl_s,
    defaultReply: ctx.cfg.api.default_reply,
    whitelist: ctx.whitelist.targets(),
    now: ctx.now,
  };
}

/** Decisions in force now (all of them: bounded by the agents' max_entries in practice). */
export function inForceNow(ctx: ApiContext): Promise<DecisionAt[]> {
  return decisionsInForce(ctx.ch, ctx.now(), { limit: MAX_LIMIT });
}

export function registerDecisionRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{
    Querystring: {
      state?: 'active' | 'any';
      at?: string;
      from?: string;
      to?: string;
      ip?: string;
      limit?: number;
    };
  }>(
    '/decisions',
    {
      schema: {
        summary:
          'state=active (default): decisions in force at `at` (default now); state=any: every decision created between from and to (default the last 24 h) with how it ended',
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            state: { type: 'string', enum: ['active', 'any'] },
            at: { type: 'string', minLength: 1, maxLength: 64 },
            from: { type: 'string', minLength: 1, maxLength: 64 },
            to: { type: 'string', minLength: 1, maxLength: 64 },
            ip: { type: 'string', minLength: 2, maxLength: 64, pattern: '^[0-9A-Fa-f:.]+$' },
            limit: { type: 'integer', minimum: 1, maximum: MAX_LIMIT },
          },
        },
      },
    },
    async (req) => {
      const q = req.query;
      const now = ctx.now();
      let ip: string | undefined;
      if (q.ip !== undefined) {
        const t = parseTarget(q.ip);
        if (!t.ok || t.target.prefix !== (t.target.family === 4 ? 32 : 128)) {
          throw new InputError(`ip: ${t.ok ? 'an address, not a prefix' : t.error}`);
        }
        ip = t.target.text;
      }
      if ((q.state ?? 'active') === 'any') {
        if (q.at !== undefined)
          throw new InputError('at goes with state=active; state=any takes from and to');
        const range = parseRange(q, now, 86_400_000);
        const decisions = await decisionsMade(ctx.ch, {
          from: range.from!,
          to: range.to ?? new Date(now).toISOString(),
          ...(ip ? { ip } : {}),
          limit: q.limit ?? 1000,
          now,
        });
        return {
          from: range.from,
          to: range.to ?? new Date(now).toISOString(),
          count: decisions.length,
          decisions,
        };
      }
      if (q.from !== undefined || q.to !== undefined) {
        throw new InputError('from and to go with state=any; state=active takes at');
      }
      const at = q.at === undefined ? now : parseTime(q.at, 'at', now);
      const decisions = await decisionsInForce(ctx.ch, at, {
        ...(ip ? { ip } : {}),
        limit: q.limit ?? 1000,
      });
      return { at: new Date(at).toISOString(), count: decisions.length, decisions };
    },
  );

  app.get<{ Params: { id: string } }>(
    '/decisions/:id',
    {
      schema: {
        summary:
          'one decision: its state now and every change (created, extended, lifted, expired) with who made it',
        params: { type: 'object', required: ['id'], properties: { id: ref } },
      },
    },
    async (req, reply) => {
      const history = await decisionHistory(ctx.ch, req.params.id);
      if (history.length === 0) {
        return reply.code(404).send({ error: 'not_found', message: `no decision ${req.params.id}` });
      }
      const current = (await inForceNow(ctx)).find((d) => d.id === req.params.id) ?? null;
      return { id: req.params.id, in_force: current, history };
    },
  );

  app.post<{ Body: AddRequest }>(
    '/decisions',
    {
      config: { access: 'write' },
      schema: {
        summary: 'operator add: a tempfail for an address or prefix, with a 4xx reply and a required expiry',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['target', 'reason'],
          properties: {
            target: { type: 'string', minLength: 2, maxLength: 64 },
            reason,
            reply: { type: 'string', minLength: 5, maxLength: 400 },
            ttl_s: { type: 'integer', minimum: 60, maximum: 400 * 86400 },
            expires_at: { type: 'string', minLength: 10, maxLength: 40 },
          },
        },
      },
    },
    async (req, reply) => {
      const op = ctx.operator(req);
      const octx = operatorContext(ctx);
      try {
        const r = await addDecision(octx, req.body, op.name, await inForceNow(ctx));
        operatorActionsTotal.inc({ action: 'decision_add', outcome: 'published' });
        ctx.log.info(
          {
            operator: op.name,
            decision_id: r.decision.id,
            target: r.decision.target,
            expires_at: r.decision.expires_at,
            replaced: r.replaced?.id,
            reason: r.decision.reason,
          },
          'operator decision published',
        );
        return reply.code(201).send(r);
      } catch (err) {
        operatorActionsTotal.inc({ action: 'decision_add', outcome: 'refused' });
        throw err;
      }
    },
  );

  const lift = async (refText: string, why: string | undefined, operator: string) => {
    const octx = operatorContext(ctx);
    const lifted = await liftDecisions(
      octx,
      refText,
      why ?? 'lifted by operator',
      operator,
      await inForceNow(ctx),
    );
    operatorActionsTotal.inc({ action: 'decision_lift', outcome: 'published' }, lifted.length);
    ctx.log.info(
      { operator, ref: refText, decisions: lifted.map((d) => d.id), reason: why },
      'operator lift published',
    );
    return { lifted };
  };

  app.post<{ Params: { ref: string }; Body: { reason?: string } | undefined }>(
    '/decisions/:ref/lift',
    {
      config: { access: 'write' },
      schema: {
        summary: 'lift the decisions in force for a target (URL-encode the / of a prefix) or with an id',
        params: { type: 'object', required: ['ref'], properties: { ref } },
        body: {
          type: ['object', 'null'],
          additionalProperties: false,
          properties: { reason },
        },
      },
    },
    async (req) => lift(req.params.ref, req.body?.reason, ctx.operator(req).name),
  );

  app.delete<{ Params: { ref: string }; Querystring: { reason?: string } }>(
    '/decisions/:ref',
    {
      config: { access: 'write' },
      schema: {
        summary: 'the same as POST /decisions/:ref/lift',
        params: { type: 'object', required: ['ref'], properties: { ref } },
        querystring: { type: 'object', additionalProperties: false, properties: { reason } },
      },
    },
    async (req) => lift(req.params.ref, req.query.reason, ctx.operator(req).name),
  );
}
