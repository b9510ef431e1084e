import type { FastifyInstance } from 'fastify';
import { parseTarget } from '../../respond/target.js';
import { decisionsInForce } from '../../store/queries.js';
import { InputError } from '../errors.js';
import { decisionsMade } from '../history.js';
import type { ApiContext } from '../server.js';
import { sourceActivity, sourceDetections } from '../source.js';
import { parseRange, parseWindow } from '../time.js';

// GET /api/v1/sources/:ip: one client address at a glance: whitelisted or not, the decisions
// covering it now, the decisions about it in the window, its traffic and the detections.

export function registerSourceRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.get<{ Params: { ip: string }; Querystring: { window?: string; from?: string; to?: string } }>(
    '/sources/:ip',
    {
      schema: {
        summary:
          'one client address: whitelist, decisions in force and made, traffic and detections in a window (default 24 h)',
        params: {
          type: 'object',
          required: ['ip'],
          properties: { ip: { type: 'string', minLength: 2, maxLength: 64, pattern: '^[0-9A-Fa-f:.]+$' } },
        },
        querystring: {
          type: 'object',
          additionalProperties: false,
          properties: {
            window: { type: 'string', minLength: 2, maxLength: 10 },
            from: { type: 'string', minLength: 1, maxLength: 64 },
            to: { type: 'string', minLength: 1, maxLength: 64 },
          },
        },
      },
    },
    async (req) => {
      const t = parseTarget(req.params.ip);
      if (!t.ok || t.target.prefix !== (t.target.family === 4 ? 32 : 128)) {
        throw new InputError(`ip: ${t.ok ? 'an address, not a prefix' : t.error}`);
      }
      const ip = t.target.text;
      const q = req.query;
      if (q.window !== undefined && q.from !== undefined)
        throw new InputError('give window or from, not both');
      const now = ctx.now();
      const range = parseRange(q, now, parseWindow(q.window ?? '24h'));
      const from = range.from!;
      const to = range.to ?? new Date(now).toISOString();
      const [inForce, made, activity, detections] = await Promise.all([
        decisionsInForce(ctx.ch, now, { ip }),
        decisionsMade(ctx.ch, { from, to, ip, limit: 100, now }),
        sourceActivity(ctx.ch, ip, from, to),
        sourceDetections(ctx.ch, ip, from, to, 100),
      ]);
      return {
        ip,
        from,
        to,
        whitelisted: ctx.whitelist.covering(t.target) ?? null,
        in_force: inForce,
        decisions: made,
        activity,
        detections,
      };
    },
  );
}
