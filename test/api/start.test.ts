import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { startApi } from '../../src/api/start.js';
import { configSchema } from '../../src/config/config.js';
import { until } from './helpers.js';

// startApi as `mizugiwa api` runs it alone on one host: its own embedded ClickHouse (migrated),
// its own in-process bus, over real HTTP. Nobody else reads that bus, so the API stores its
// operators' decisions itself and serves them in the feed.

const dir = mkdtempSync(join(tmpdir(), 'mz-api-start-'));
const TOKEN = 'start-test-token-0123456789';
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('startApi alone on an in-process bus', () => {
  it('listens, stores operator decisions itself, serves them in the feed, and closes', async () => {
    const cfg = configSchema.parse({
      data_dir: join(dir, 'data'),
      clickhouse: { path: join(dir, 'chdb'), database: 'mz' },
      api: { listen: '127.0.0.1:0', tokens: [{ name: 'ops', token: TOKEN }] },
    });
    const api = await startApi(cfg, { log: pino({ level: 'silent' }) });
    try {
      expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const health = await fetch(`${api.url}/health`);
      expect(health.status).toBe(200);
      const add = await fetch(`${api.url}/api/v1/decisions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ target: '198.51.100.20', reason: 'manual', ttl_s: 600 }),
      });
      expect(add.status).toBe(201);
      const { decision } = (await add.json()) as { decision: { reply: string } };
      const feed = await until(async () => {
        const text = await (await fetch(`${api.url}/api/v1/feed/postfix`)).text();
        return text.includes('198.51.100.20') ? text : undefined;
      });
      expect(feed.split('\n').filter((l) => l && !l.startsWith('#'))).toEqual([
        `198.51.100.20  ${decision.reply}`,
      ]);
    } finally {
      await api.close();
    }
    await expect(fetch(`${api.url}/health`)).rejects.toThrow();
  }, 60_000);
});
