import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { Responder } from '../../src/respond/agent.js';
import { respondSchema } from '../../src/respond/config.js';
import { parseTargets } from '../../src/respond/safety.js';
import { FakeMap } from './fake-map.js';

// The responder against a recording map (no MTA): coalescing, expiry on its own clock, restart
// from the state file, failures that keep the old map, refusals counted by rule.

const silent = pino({ level: 'silent' });
let dir: string;
let registry: Registry;
let map: FakeMap;
const T0 = Date.parse('2026-11-27T12:00:00Z');
const iso = (ms: number) => new Date(ms).toISOString();

function decision(target: string, ttlMs: number, over: Record<string, unknown> = {}) {
  return {
    id: `d-${target}-${ttlMs}`,
    target,
    action: 'tempfail',
    reply: '450 4.7.1 Too many unknown recipients; try later',
    detector: 'dha',
    reason: 'test',
    confidence: 1,
    evidence: { counts: {}, window_s: 60, sample_event_ids: [] },
    created_at: iso(Date.now()),
    expires_at: iso(Date.now() + ttlMs),
    state: 'active',
    ...over,
  };
}

function responder(cfg: Record<string, unknown> = {}) {
  const config = respondSchema.parse({
    state_path: join(dir, 'state.json'),
    safety: { whitelist: ['203.0.113.0/24'] },
    ...cfg,
  });
  return new Responder({ config, dataDir: dir, log: silent, registry, map, ownAddresses: ['198.51.100.1'] });
}

async function metric(name: string, labels: Record<string, string> = {}): Promise<number> {
  const m = (await registry.getMetricsAsJSON()).find((x) => x.name === name);
  const v = m?.values.find((x) => Object.entries(labels).every(([k, l]) => x.labels[k] === l));
  return v?.value ?? 0;
}

beforeEach(() => {
  vi.useFakeTimers({ now: T0, toFake: ['setTimeout', 'clearTimeout', 'Date'] });
  dir = mkdtempSync(join(tmpdir(), 'mizugiwa-respond-'));
  registry = new Registry();
  map = new FakeMap();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('Responder', () => {
  it('start rebuilds the map once even with nothing in the state (converge after a crash)', async () => {
    const r = responder();
    await r.start();
    expect(map.installs).toEqual([[]]);
    await r.stop();
  });

  it('refresh() rebuilds without a change (SIGHUP after the administrator edited the file)', async () => {
    const r = responder();
    await r.start();
    expect(await r.refresh()).toBe(true);
    expect(map.installs).toEqual([[], []]);
    await r.stop();
    expect(await r.refresh()).toBe(false);
  });

  it('coalesces decisions arriving together into one rebuild', async () => {
    const r = responder({ coalesce_ms: 50 });
    await r.start();
    const results = Promise.all(
      ['192.0.2.1', '192.0.2.2', '192.0.2.3'].map((t) => r.apply(decision(t, 60_000))),
    );
    await vi.advanceTimersByTimeAsync(49);
    expect(map.installs).toHaveLength(1);
    await vi.advanceTimersByTimeAsync(1);
    const rs = await results;
    expect(rs.map((x) => [x.outcome, x.in_force])).toEqual([
      ['added', true],
      ['added', true],
      ['added', true],
    ]);
    expect(map.installs).toHaveLength(2);
    expect(map.last).toEqual(['192.0.2.1', '192.0.2.2', '192.0.2.3']);
    expect(await metric('mizugiwa_respond_entries')).toBe(3);
    expect(await metric('mizugiwa_respond_map_rebuilds_total', { result: 'ok' })).toBe(2);
    expect(await metric('mizugiwa_respond_decisions_total', { outcome: 'added' })).toBe(3);
    const text = await registry.metrics();
    expect(text).toMatch(/^mizugiwa_respond_map_rebuild_seconds_count\{mta="postfix"\} 2$/m);
    await r.stop();
  });

  it('flush() writes at once without waiting for the coalescing window', async () => {
    const r = responder({ coalesce_ms: 5000 });
    await r.start();
    void r.apply(decision('192.0.2.9', 60_000));
    expect(await r.flush()).toBe(true);
    expect(map.last).toEqual(['192.0.2.9']);
    await r.stop();
  });

  it('expires an entry on its own clock, within the second after expires_at', async () => {
    const r = responder();
    await r.start();
    void r.apply(decision('192.0.2.7', 5000));
    await vi.advanceTimersByTimeAsync(50);
    await map.attempted(2);
    expect(map.last).toEqual(['192.0.2.7']);
    await vi.advanceTimersByTimeAsync(5000 - 50 - 1);
    await new Promise((res) => setImmediate(res));
    expect(map.attempts).toBe(2);
    await vi.advanceTimersByTimeAsync(1);
    await map.attempted(3);
    expect(Date.now() - T0).toBe(5000);
    expect(map.last).toEqual([]);
    expect(await metric('mizugiwa_respond_expiries_total')).toBe(1);
    expect(r.list()).toEqual([]);
    await r.stop();
  });

  it('a later decision for the same target replaces the entry; a shorter one moves the expiry earlier', async () => {
    const r = responder();
    await r.start();
    const a = r.apply(decision('192.0.2.7', 600_000));
    await vi.advanceTimersByTimeAsync(60);
    expect((await a).outcome).toBe('added');
    const b = r.apply(decision('192.0.2.7', 2000, { id: 'd-short' }));
    await vi.advanceTimersByTimeAsync(60);
    expect((await b).outcome).toBe('updated');
    await vi.advanceTimersByTimeAsync(2000);
    await map.attempted(4);
    expect(map.last).toEqual([]);
    await r.stop();
  });

  it('lifted decisions and tombstones remove the entry', async () => {
    const r = responder();
    await r.start();
    const d = decision('192.0.2.0/24', 600_000);
    void r.apply(d);
    void r.apply(decision('192.0.2.99', 600_000));
    await r.flush();
    expect(map.last).toEqual(['192.0.2.0/24', '192.0.2.99']);
    const lifted = r.apply({ ...d, state: 'lifted' });
    const tomb = r.applyMessage({ key: '192.0.2.99', value: null });
    await vi.advanceTimersByTimeAsync(60);
    expect((await lifted).outcome).toBe('removed');
    expect((await tomb).outcome).toBe('removed');
    expect(map.last).toEqual([]);
    expect(map.installs).toHaveLength(3);
    expect((await r.applyMessage({ key: '192.0.2.99', value: null })).outcome).toBe('absent');
    await r.stop();
  });

  it('refuses bad decisions, counts them by rule, and keeps going', async () => {
    const r = responder();
    await r.start();
    const bad = [
      r.apply(decision('203.0.113.5', 60_000)),
      r.apply(decision('0.0.0.0/0', 60_000)),
      r.apply(decision('192.0.2.7', 60_000, { reply: '550 5.7.1 go away' })),
      r.apply(decision('192.0.2.7', 60_000, { expires_at: undefined })),
      r.apply(decision('192.0.0.0/20', 60_000)),
      r.applyMessage({ key: 'x', value: Buffer.from([0xff, 0xfe, 0x00]) }),
      r.applyMessage({ key: 'x', value: '{"id":' }),
      r.applyMessage({ key: 'not an ip', value: null }),
      r.applyMessage({ key: null, value: Buffer.alloc(300 * 1024, 0x20) }),
    ];
    const rs = await Promise.all(bad);
    expect(rs.map((x) => x.rule)).toEqual([
      'whitelisted',
      'any_prefix',
      'reply',
      'no_expiry',
      'map_cannot_hold',
      'malformed',
      'malformed',
      'malformed',
      'malformed',
    ]);
    expect(await metric('mizugiwa_respond_refusals_total', { rule: 'malformed' })).toBe(4);
    expect(await metric('mizugiwa_respond_refusals_total', { rule: 'whitelisted' })).toBe(1);
    const good = r.apply(decision('192.0.2.8', 60_000));
    await vi.advanceTimersByTimeAsync(60);
    expect((await good).in_force).toBe(true);
    await r.stop();
  });

  it("the administrator's lines win: overlapping decisions are refused, taken-over entries dropped", async () => {
    map.hand = parseTargets(['192.0.2.0/24'], 'hand');
    const r = responder();
    await r.start();
    expect((await r.apply(decision('192.0.2.7', 60_000))).rule).toBe('hand_managed');
    void r.apply(decision('198.51.100.7', 60_000));
    void r.apply(decision('198.51.100.8', 60_000));
    await r.flush();
    map.skip = ['198.51.100.8'];
    void r.apply(decision('198.51.100.9', 60_000));
    await r.flush();
    expect(map.last).toEqual(['198.51.100.7', '198.51.100.9']);
    expect(r.list().map((e) => e.target)).toEqual(['198.51.100.7', '198.51.100.9']);
    expect(await metric('mizugiwa_respond_refusals_total', { rule: 'hand_managed' })).toBe(2);
    await r.stop();
  });

  it('max_entries: refuses new targets beyond the limit, still updates those in force', async () => {
    const r = responder({ safety: { max_entries: 2 } });
    await r.start();
    void r.apply(decision('192.0.2.1', 60_000));
    void r.apply(decision('192.0.2.2', 60_000));
    const third = r.apply(decision('192.0.2.3', 60_000));
    expect((await third).rule).toBe('max_entries');
    const update = r.apply(decision('192.0.2.1', 120_000, { id: 'again' }));
    await vi.advanceTimersByTimeAsync(60);
    expect((await update).outcome).toBe('updated');
    expect(map.last).toEqual(['192.0.2.1', '192.0.2.2']);
    await r.stop();
  });

  it('a failing map build leaves the old map, is counted, and is retried until it works', async () => {
    const r = responder();
    await r.start();
    void r.apply(decision('192.0.2.1', 600_000));
    await r.flush();
    map.fail = true;
    const p = r.apply(decision('192.0.2.2', 600_000));
    await vi.advanceTimersByTimeAsync(60);
    expect((await p).in_force).toBe(false);
    expect(map.last).toEqual(['192.0.2.1']);
    expect(await metric('mizugiwa_respond_map_rebuilds_total', { result: 'failed' })).toBe(1);
    expect(await metric('mizugiwa_respond_map_stale')).toBe(1);
    await vi.advanceTimersByTimeAsync(1000);
    await map.attempted(4);
    expect(await metric('mizugiwa_respond_map_rebuilds_total', { result: 'failed' })).toBe(2);
    map.fail = false;
    await vi.advanceTimersByTimeAsync(1999);
    await new Promise((res) => setImmediate(res));
    expect(map.attempts).toBe(4); // backoff doubled to 2 s
    await vi.advanceTimersByTimeAsync(1);
    await map.attempted(5);
    expect(map.last).toEqual(['192.0.2.1', '192.0.2.2']);
    expect(await metric('mizugiwa_respond_map_stale')).toBe(0);
    await r.stop();
  });

  it('changes during a slow rebuild go into the next one, not lost and not one rebuild each', async () => {
    const r = responder({ coalesce_ms: 10 });
    await r.start();
    map.delayMs = 500;
    void r.apply(decision('192.0.2.1', 600_000));
    await vi.advanceTimersByTimeAsync(10);
    await map.began(2); // rebuild [1] now takes 500 ms
    for (let i = 2; i <= 20; i++) void r.apply(decision(`192.0.2.${i}`, 600_000));
    await vi.advanceTimersByTimeAsync(500);
    await map.began(3);
    await vi.advanceTimersByTimeAsync(500);
    await map.attempted(3);
    expect(map.installs).toHaveLength(3); // start, [1], [1..20]
    expect(map.last).toHaveLength(20);
    await r.stop();
  });

  it('restart: loads the state file, drops what expired while down, rebuilds', async () => {
    const r1 = responder();
    await r1.start();
    void r1.apply(decision('192.0.2.1', 10_000));
    void r1.apply(decision('192.0.2.2', 600_000));
    await r1.flush();
    await r1.stop();
    const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
    expect(state.entries.map((e: { target: string }) => e.target).sort()).toEqual(['192.0.2.1', '192.0.2.2']);

    vi.setSystemTime(T0 + 60_000); // down for a minute
    map.installs = [];
    const r2 = responder();
    await r2.start();
    expect(map.installs).toEqual([['192.0.2.2']]);
    expect(await metric('mizugiwa_respond_expiries_total')).toBe(1);
    await r2.stop();
  });

  it('restart re-checks the state against the current configuration (a new whitelist entry)', async () => {
    const r1 = responder();
    await r1.start();
    void r1.apply(decision('192.0.2.1', 600_000));
    void r1.apply(decision('192.0.2.2', 600_000));
    await r1.flush();
    await r1.stop();
    const r2 = responder({ safety: { whitelist: ['192.0.2.2'] } });
    await r2.start();
    expect(map.last).toEqual(['192.0.2.1']);
    expect(await metric('mizugiwa_respond_refusals_total', { rule: 'whitelisted' })).toBe(1);
    await r2.stop();
  });

  it('restart keeps an extended entry older than max_ttl_s (its expiry was clamped when it came)', async () => {
    writeFileSync(
      join(dir, 'state.json'),
      JSON.stringify({
        version: 1,
        written_at: iso(T0),
        entries: [
          {
            target: '192.0.2.5',
            reply: '450 4.7.1 extended',
            expires_at: iso(T0 + 3600_000),
            decision_id: 'old-but-extended',
            detector: 'dha_source',
            created_at: iso(T0 - 2 * 86400_000),
          },
        ],
      }),
    );
    const r = responder();
    await r.start();
    expect(map.last).toEqual(['192.0.2.5']);
    expect(r.list()[0]).toMatchObject({ expires_at: T0 + 3600_000, created_at: iso(T0 - 2 * 86400_000) });
    await r.stop();
  });

  it('a corrupt state file is moved aside and the agent starts empty', async () => {
    writeFileSync(join(dir, 'state.json'), '{"version":1,"entries":[{"target":');
    const r = responder();
    await r.start();
    expect(map.installs).toEqual([[]]);
    await r.stop();
  });

  it('refuses to run twice on one state file, or on one map', async () => {
    const r1 = responder();
    await r1.start();
    await expect(responder().start()).rejects.toThrow(/another agent/);
    await r1.stop();
    (map as { path?: string }).path = join(dir, 'access');
    const r2 = responder();
    await r2.start();
    const other = responder({ state_path: join(dir, 'other-state.json') });
    await expect(other.start()).rejects.toThrow(/another agent in this process uses .*access/);
    await r2.stop();
    await other.start(); // the map is free again
    await other.stop();
  });

  it('a decision applied before start() wins over the older state file entry', async () => {
    const r1 = responder();
    await r1.start();
    void r1.apply(decision('192.0.2.1', 600_000, { reply: '450 4.7.1 old' }));
    await r1.flush();
    await r1.stop();
    const r2 = responder();
    expect(await r2.flush()).toBe(false);
    const early = r2.apply(decision('192.0.2.1', 900_000, { reply: '451 4.7.1 new' }));
    await r2.start();
    expect(await early).toMatchObject({ outcome: 'added', in_force: true });
    expect(r2.list()[0]!.reply).toBe('451 4.7.1 new');
    await r2.stop();
  });

  it('dry run: never installs, never writes state', async () => {
    const r = responder({ dry_run: true });
    await r.start();
    const res = r.apply(decision('192.0.2.1', 600_000));
    await vi.advanceTimersByTimeAsync(60);
    expect(await res).toMatchObject({ outcome: 'added', in_force: false });
    expect(map.installs).toEqual([]);
    expect(() => readFileSync(join(dir, 'state.json'))).toThrow(/ENOENT/);
    await r.stop();
  });

  it('clamps an expiry beyond max_ttl_s', async () => {
    const r = responder({ safety: { max_ttl_s: 60 } });
    await r.start();
    void r.apply(decision('192.0.2.1', 86_400_000));
    await r.flush();
    expect(r.list()[0]!.expires_at).toBe(T0 + 60_000);
    expect(await metric('mizugiwa_respond_ttl_clamped_total')).toBe(1);
    await vi.advanceTimersByTimeAsync(60_000);
    await map.attempted(3);
    expect(map.last).toEqual([]);
    await r.stop();
  });
});
