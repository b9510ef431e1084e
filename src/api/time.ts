// Times in query strings: ISO 8601 (with an offset; none means UTC), ms since epoch, or relative
// to now: `-15m`, `now-2h`, `now`. Windows: `30s`, `15m`, `1h`, `7d`.

import { InputError } from './errors.js';

export { InputError };

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const ISO = /^\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?)?\s*(Z|[+-]\d{2}(:?\d{2})?)?$/i;

/** Milliseconds of a window such as `15m`; at most 400 days. */
export function parseWindow(s: string, field = 'window'): number {
  const m = /^([0-9]{1,6})\s*([smhdw])$/.exec(s.trim());
  if (!m)
    throw new InputError(
      `${field}: expected a duration like 30s, 15m, 1h, 7d; got ${JSON.stringify(s.slice(0, 40))}`,
    );
  const ms = Number(m[1]) * UNIT_MS[m[2]!]!;
  if (ms <= 0 || ms > 400 * 86_400_000) throw new InputError(`${field}: must be between 1s and 400d`);
  return ms;
}

/** A point in time as ms since epoch. */
export function parseTime(s: string, field: string, now: number): number {
  const v = s.trim();
  if (v === 'now') return now;
  const rel = /^(?:now)?-(.+)$/.exec(v);
  if (rel) return now - parseWindow(rel[1]!, field);
  if (/^[0-9]{10,13}$/.test(v)) return Number(v.length === 10 ? `${v}000` : v);
  if (ISO.test(v)) {
    const hasZone = /(Z|[+-]\d{2}(:?\d{2})?)$/i.test(v) && v.length > 10;
    const ms = Date.parse(
      hasZone ? v.replace(' ', 'T') : `${v.replace(' ', 'T')}${v.length > 10 ? 'Z' : ''}`,
    );
    if (Number.isFinite(ms) && ms >= Date.UTC(1900, 0, 1) && ms < Date.UTC(2300, 0, 1)) return ms;
  }
  throw new InputError(
    `${field}: expected an ISO 8601 time (2026-11-27T10:15:00Z), ms since epoch, or now-15m; got ${JSON.stringify(v.slice(0, 40))}`,
  );
}

/** from/to of a query string as ISO strings; from defaults to `defaultFromMs` ago when given. */
export function parseRange(
  q: { from?: string; to?: string },
  now: number,
  defaultSpanMs?: number,
): { from?: string; to?: string } {
  const to = q.to === undefined ? undefined : parseTime(q.to, 'to', now);
  let from = q.from === undefined ? undefined : parseTime(q.from, 'from', now);
  if (from === undefined && defaultSpanMs !== undefined) from = (to ?? now) - defaultSpanMs;
  if (from !== undefined && to !== undefined && from > to) throw new InputError('from is after to');
  return {
    ...(from === undefined ? {} : { from: new Date(from).toISOString() }),
    ...(to === undefined ? {} : { to: new Date(to).toISOString() }),
  };
}
