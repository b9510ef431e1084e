import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { Registry } from 'prom-client';
import { Responder } from '../../src/respond/agent.js';
import { type RespondConfig, respondSchema } from '../../src/respond/config.js';
import { repoRoot } from '../services/services.js';

export const quiet = pino({ level: process.env.MIZUGIWA_TEST_LOG ?? 'silent' });

/** A fresh state directory under var/ (not /tmp: sendmail refuses maps near world-writable dirs). */
export function stateDir(name: string): string {
  const d = mkdtempSync(join(repoRoot, 'var', `test-respond-${name}-`));
  made.push(d);
  return d;
}
const made: string[] = [];

/** Removes the state directories this test file made. */
export function removeStateDirs(): void {
  for (const d of made.splice(0)) rmSync(d, { recursive: true, force: true });
}

export function decision(target: string, ttlMs: number, over: Record<string, unknown> = {}) {
  const now = Date.now();
  return {
    id: `test-${target}-${now}`,
    target,
    action: 'tempfail',
    reply: '450 4.7.1 Too many unknown recipients; try later',
    detector: 'test',
    reason: 'integration test',
    confidence: 1,
    evidence: { counts: {}, window_s: 0, sample_event_ids: [] },
    created_at: new Date(now).toISOString(),
    expires_at: new Date(now + ttlMs).toISOString(),
    state: 'active',
    ...over,
  };
}

export function respondConfig(over: Record<string, unknown>): RespondConfig {
  return respondSchema.parse({
    coalesce_ms: 10,
    ...over,
    safety: { allow_loopback: true, ...((over.safety as object) ?? {}) },
  });
}

export function responder(config: RespondConfig, dir: string): Responder {
  return new Responder({ config, dataDir: dir, log: quiet, registry: new Registry() });
}

export function run(
  argv: string[],
  input?: string,
): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = execFile(argv[0]!, argv.slice(1), { timeout: 30_000 }, (err, stdout, stderr) => {
      resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr });
    });
    child.stdin?.on('error', () => {});
    child.stdin?.end(input ?? '');
  });
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `probe` every 25 ms until it returns true; resolves with the ms it took, or rejects after `ms`. */
export async function until(
  probe: () => Promise<boolean>,
  ms: number,
  what: string | (() => string),
): Promise<number> {
  const t0 = performance.now();
  for (;;) {
    if (await probe()) return performance.now() - t0;
    if (performance.now() - t0 > ms) {
      throw new Error(`not within ${ms} ms: ${typeof what === 'function' ? what() : what}`);
    }
    await sleep(25);
  }
}
