import type { FastifyInstance } from 'fastify';
import type { Decision } from '../../decision/decision.js';
import { parseTarget } from '../../respond/target.js';
import { InputError } from '../errors.js';
import { operatorActionsTotal } from '../metrics.js';
import { liftOverlapping } from '../operator.js';
import type { ApiContext } from '../server.js';
import { inForceNow, operatorContext } from './decisions.js';

// The whitelist: configured entries (read-only here) and runtime ones. Adding an entry lifts the
// decisions in force that overlap it, and from then on operator adds overlapping it are refused
// (409), as are feed entries.

const target = { type: 'string', minLength: 2, maxLength: 64 } as const;

export function registerWhitelistRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get('/whitelist', { schema: { summary: 'configured and runtime whitelist entries' } }, async () => ({
    entries: ctx.whitelist.list(),
  }));

  app.post<{ Body: { target: string; reason: string } }>(
    '/whitelist',
    {
      config: { access: 'write' },
      schema: {
        summary: 'whitelist an address or prefix: lifts the decisions in force that overlap it',
        body: {
          type: 'object',
          additionalProperties: false,
          required: ['target', 'reason'],
          properties: { target, reason: { type: 'string', minLength: 1, maxLength: 500 } },
        },
      },
    },
    async (req, reply) => {
      const op = ctx.operator(req);
      const octx = operatorContext(ctx);
      const t = parseTarget(req.body.target);
      if (!t.ok) throw new InputError(`target: ${t.error}`);
      const entry = await ctx.whitelist.add(t.target.text, req.body.reason, op.name, new Date(ctx.now()));
      operatorActionsTotal.inc({ action: 'whitelist_add', outcome: 'published' });
      // The entry stands even when the decisions in force cannot be read now (ClickHouse away):
      // the answer says so, and the same POST again lifts them once it is back.
      let lifted: Decision[] = [];
      let liftError: string | undefined;
      try {
        lifted = await liftOverlapping(
          octx,
          t.target,
          `whitelisted ${entry.target}: ${req.body.reason}`,
          op.name,
          await inForceNow(ctx),
        );
      } catch (err) {
        liftError = `the entry is in force, but decisions overlapping it were not lifted: ${(err as Error).message.split('\n')[0]}; POST again to retry`;
        ctx.log.error({ err, target: entry.target }, 'whitelist: lifting overlapping decisions failed');
      }
      ctx.log.info(
        { operator: op.name, target: entry.target, lifted: lifted.map((d) => d.id), reason: entry.reason },
        'whitelist entry added',
      );
      return reply.code(201).send({ entry, lifted, ...(liftError ? { lift_error: liftError } : {}) });
    },
  );

  app.delete<{ Params: { target: string } }>(
    '/whitelist/:target',
    {
      config: { access: 'write' },
      schema: {
        summary: 'remove a runtime whitelist entry (URL-encode the / of a prefix)',
        params: { type: 'object', required: ['target'], properties: { target } },
      },
    },
    async (req) => {
      const op = ctx.operator(req);
      operatorContext(ctx);
      const entry = await ctx.whitelist.remove(req.params.target);
      operatorActionsTotal.inc({ action: 'whitelist_remove', outcome: 'published' });
      ctx.log.info({ operator: op.name, target: entry.target }, 'whitelist entry removed');
      return { removed: entry };
    },
  );
}
