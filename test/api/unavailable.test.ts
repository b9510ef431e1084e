import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createClient } from '@clickhouse/client';
import type { FastifyInstance } from 'fastify';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApi } from '../../src/api/server.js';
import { MemoryBus } from '../../src/bus/memory.js';
import type { ClickHouse } from '../../src/clickhouse/client.js';
import { auth, READ_TOKEN, testConfig, until, WRITE_TOKEN } from './helpers.js';

// The API with a ClickHouse server that is not there (a closed loopback port) and no bus
// producer, reads behind tokens: what an operator sees when the backend is down or the API is
// read-only: 401 without a token, 503 naming the backend, never a hang or a 500.

const dir = mkdtempSync(join(tmpdir(), 'mz-api-down-'));
let app: FastifyInstance;
let down: FastifyInstance;
let peer: FastifyInstance;
let ch: ClickHouse;
let bus: MemoryBus;

describe('api with ClickHouse down, no producer, reads behind tokens', () => {
  beforeAll(async () => {
    const cfg = testConfig(dir, {});
    cfg.api.read_requires_token = true;
    cfg.api.health_timeout_ms = 1000;
    const client = createClient({ url: 'http://127.0.0.1:1', request_timeout: 1000 });
    ch = { client, backend: 'server', database: 'mz', close: () => client.close() };
    app = await buildApi({ cfg, ch, log: pino({ level: 'silent' }) });
    // The same, with a bus: writes get as far as ClickHouse.
    bus = new MemoryBus({ partitions: 1 });
    const producer = await bus.producer();
    down = await buildApi({
      cfg: { ...cfg, api: { ...cfg.api, whitelist_path: join(dir, 'wl2.json') } },
      ch,
      bus,
      producer,
      log: pino({ level: 'silent' }),
    });
    // A second API instance on the same bus, with a whitelist file of its own.
    peer = await buildApi({
      cfg: { ...cfg, api: { ...cfg.api, whitelist_path: join(dir, 'wl3.json') } },
      ch,
      bus,
      producer: await bus.producer(),
      log: pino({ level: 'silent' }),
    });
  });
  afterAll(async () => {
    await app?.close();
    await down?.close();
    await peer?.close();
    await bus?.close();
    await ch?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('reads need a token; /health and /metrics do not', async () => {
    expect((await app.inject({ url: '/api/v1/events?ip=198.51.100.1' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/api/v1/feed/postfix' })).statusCode).toBe(401);
    expect((await app.inject({ url: '/metrics' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/health' })).statusCode).toBe(503);
  });

  it('/health is 503 and names ClickHouse; the bus is not configured', async () => {
    const r = await app.inject({ url: '/health' });
    expect(r.json()).toMatchObject({
      status: 'degraded',
      clickhouse: { ok: false, backend: 'server' },
      bus: { configured: false },
      writes: false,
    });
    expect(r.json().clickhouse.error).toMatch(/ECONNREFUSED|connect/);
  });

  it('a search is 503 naming the backend', async () => {
    const r = await app.inject({ url: '/api/v1/events?ip=198.51.100.1', headers: auth(READ_TOKEN) });
    expect(r.statusCode).toBe(503);
    expect(r.json().message).toMatch(/unavailable/);
  });

  it('a whitelist entry stands while ClickHouse is away; the answer says the lift did not happen', async () => {
    const r = await down.inject({
      method: 'POST',
      url: '/api/v1/whitelist',
      headers: auth(WRITE_TOKEN),
      payload: { target: '198.51.100.0/24', reason: 'partner' },
    });
    expect(r.statusCode).toBe(201);
    expect(r.json().lifted).toEqual([]);
    expect(r.json().lift_error).toMatch(/POST again/);
    expect(
      (await down.inject({ url: '/api/v1/whitelist', headers: auth(READ_TOKEN) })).json().entries,
    ).toContainEqual(expect.objectContaining({ target: '198.51.100.0/24', source: 'api' }));
  });

  it('a whitelist change on one instance reaches the other through the topic (and its file)', async () => {
    const list = async () =>
      (await peer.inject({ url: '/api/v1/whitelist', headers: auth(READ_TOKEN) }))
        .json()
        .entries.filter((e: { source: string }) => e.source === 'api')
        .map((e: { target: string }) => e.target);
    await until(async () => (await list()).includes('198.51.100.0/24'));
    const file = await until(async () => {
      try {
        return JSON.parse(readFileSync(join(dir, 'wl3.json'), 'utf8'));
      } catch {
        return undefined;
      }
    });
    expect(file.entries[0].added_by).toBe('operator:alice');
    const del = await down.inject({
      method: 'DELETE',
      url: `/api/v1/whitelist/${encodeURIComponent('198.51.100.0/24')}`,
      headers: auth(WRITE_TOKEN),
    });
    expect(del.statusCode).toBe(200);
    await until(async () => !(await list()).includes('198.51.100.0/24'));
    // And the other way round.
    const add = await peer.inject({
      method: 'POST',
      url: '/api/v1/whitelist',
      headers: auth(WRITE_TOKEN),
      payload: { target: '2001:db8:7::/48', reason: 'partner v6' },
    });
    expect(add.statusCode).toBe(201);
    await until(async () =>
      (await down.inject({ url: '/api/v1/whitelist', headers: auth(READ_TOKEN) }))
        .json()
        .entries.some((e: { target: string }) => e.target === '2001:db8:7::/48'),
    );
  });

  it('an operator add while ClickHouse is away is 503 (it cannot check what is in force)', async () => {
    const r = await down.inject({
      method: 'POST',
      url: '/api/v1/decisions',
      headers: auth(WRITE_TOKEN),
      payload: { target: '203.0.113.7', reason: 'x', ttl_s: 600 },
    });
    expect(r.statusCode).toBe(503);
  });

  it('writes without a bus producer are 503 saying so', async () => {
    const r = await app.inject({
      method: 'POST',
      url: '/api/v1/decisions',
      headers: auth(WRITE_TOKEN),
      payload: { target: '198.51.100.1', reason: 'x', ttl_s: 600 },
    });
    expect(r.statusCode).toBe(503);
    expect(r.json().message).toMatch(/no bus producer/);
  });
});
