import type { Bus, BusMessage } from '../../src/bus/bus.js';
import type { Config } from '../../src/config/config.js';
import type { Decision } from '../../src/decision/decision.js';
import type { MailEvent } from '../../src/event/mail-event.js';
import type { TrafficSpec } from '../../src/traffic/generator.js';

/**
 * Produces events to the events topic keyed by client IP (host when there is none), as `ship` does.
 * With `consumed`, it goes chunk by chunk and waits for the detectors to take each chunk in, the
 * way live traffic arrives (a pre-filled backlog is consumed partition by partition, far out of
 * event-time order, which fleet-wide detectors only tolerate within detect.window.allowed_lateness_s).
 */
export async function produceEvents(
  bus: Bus,
  cfg: Config,
  events: MailEvent[],
  extra: { key: string; value: string }[] = [],
  consumed?: () => number,
  chunk = 1000,
) {
  const p = await bus.producer({ lingerMs: 2 });
  const records = events.map((e) => ({ key: e.client_ip ?? e.host ?? null, value: JSON.stringify(e) }));
  const base = consumed?.() ?? 0;
  for (let i = 0; i < records.length; i += chunk) {
    await p.send(cfg.bus.topics.events, records.slice(i, i + chunk));
    if (consumed !== undefined) {
      const want = base + Math.min(i + chunk, records.length);
      const until = Date.now() + 60_000;
      while (consumed() < want && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
    }
  }
  if (extra.length > 0) await p.send(cfg.bus.topics.events, extra);
  await p.close();
}

/** Everything on a topic (a fresh group from the beginning), collected until `done` says so. */
export async function readTopic(
  bus: Bus,
  topic: string,
  done: (msgs: BusMessage[]) => boolean,
  timeoutMs = 60_000,
): Promise<BusMessage[]> {
  const msgs: BusMessage[] = [];
  const c = await bus.consumer({
    groupId: `test-read-${topic}-${Math.random()}`,
    topics: [topic],
    fromBeginning: true,
  });
  await c.run(async (batch) => {
    msgs.push(...batch);
  });
  const until = Date.now() + timeoutMs;
  while (!done(msgs) && Date.now() < until) await new Promise((r) => setTimeout(r, 200));
  await c.close();
  return msgs;
}

/** Waits until `probe` has returned the same value for `stableMs` (and `ready` holds). */
export async function settle<T>(
  probe: () => T,
  ready: (v: T) => boolean,
  stableMs = 1500,
  timeoutMs = 120_000,
): Promise<T> {
  const until = Date.now() + timeoutMs;
  let last = JSON.stringify(probe());
  let since = Date.now();
  for (;;) {
    await new Promise((r) => setTimeout(r, 100));
    const v = probe();
    const s = JSON.stringify(v);
    if (s !== last) {
      last = s;
      since = Date.now();
    } else if (ready(v) && Date.now() - since >= stableMs) return v;
    if (Date.now() > until) throw new Error(`did not settle: ${s}`);
  }
}

/** The newest record per target of the decisions topic (what a responder sees). */
export function decisionsByTarget(msgs: BusMessage[]): Map<string, Decision> {
  const m = new Map<string, Decision>();
  for (const x of msgs)
    if (x.value !== null && x.key !== null) m.set(x.key, JSON.parse(x.value.toString('utf8')) as Decision);
  return m;
}

/** Two hours of legitimate traffic with a single-IP, a /24 and a distributed harvest (seeded). */
export const mixedTraffic: TrafficSpec = {
  seed: 77,
  start: '2026-03-02T08:00:00Z',
  duration_s: 7200,
  legit: { senders: 500, messages_per_hour: 6000, typo_rate: 0.01 },
  attacks: [
    { kind: 'dha_single', actor: 'harvester', ip: '203.0.113.66', start_s: 4000, unknown: 40 },
    {
      kind: 'dha_prefix',
      actor: 'subnet',
      net24: '198.51.100',
      sources: 10,
      unknown_each: 4,
      start_s: 4200,
      duration_s: 1200,
    },
    {
      kind: 'dha_distributed',
      actor: 'botnet',
      bots: 120,
      start_s: 4500,
      duration_s: 1800,
      domain: 'example.org',
    },
  ],
};
