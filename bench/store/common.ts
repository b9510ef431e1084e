// What bench/store/throughput.ts and its store process (store-process.ts) share: the store
// settings, the clock, and the ClickHouse helpers.
import { readFileSync } from 'node:fs';
import type { Bus } from '../../src/bus/bus.js';
import { createBus } from '../../src/bus/create.js';
import type { ClickHouse } from '../../src/clickhouse/client.js';
import { migrate } from '../../src/clickhouse/migrate.js';
import { configSchema } from '../../src/config/config.js';
import { storeSchema } from '../../src/store/config.js';

export const storeCfg = storeSchema.parse({
  batch_rows: 50_000,
  max_buffered_rows: 200_000,
  ...(process.env.MZ_BENCH_STORE_CFG ? JSON.parse(process.env.MZ_BENCH_STORE_CFG) : {}),
});

/** Wall time and CPU time of what a scenario measures. */
export interface Timing {
  seconds: number;
  /** This process, user + system, all threads. */
  cpuSeconds: number;
  /** Its main thread alone (the event loop), where /proc tells. */
  mainCpuSeconds?: number;
  /** The Kafka broker's process over the same span, where its pid file is found. */
  brokerCpuSeconds?: number;
  /** Rows in mail_events when the clock stopped (scenarios that store in another process). */
  stored?: number;
  /** Rows ClickHouse's background merges read over the same span (all tables). */
  mergedRows?: number;
  /** Kafka scenarios: seconds from the consumer's start until it had joined its group. */
  joinSeconds?: number;
}

const TICK = 100; // USER_HZ: /proc counts CPU time in 1/100 s

/** utime + stime of /proc/PATH/stat in seconds, or undefined where there is no such file. */
function procCpu(path: string): number | undefined {
  try {
    const st = readFileSync(`/proc/${path}/stat`, 'latin1');
    const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / TICK;
  } catch {
    return undefined;
  }
}

function brokerPid(): string | undefined {
  try {
    return readFileSync('var/services/kafka/kafka.pid', 'utf8').trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Starts at construction; stop() gives wall and CPU time over the same span. */
export class Clock {
  private readonly t0 = performance.now();
  private readonly cpu0 = process.cpuUsage();
  private readonly main0 = procCpu(`self/task/${process.pid}`);
  private readonly broker = brokerPid();
  private readonly broker0 = this.broker ? procCpu(this.broker) : undefined;

  /** Seconds since the start. */
  elapsed(): number {
    return (performance.now() - this.t0) / 1000;
  }

  stop(): Timing {
    const cpu = process.cpuUsage(this.cpu0);
    const main1 = procCpu(`self/task/${process.pid}`);
    const broker1 = this.broker ? procCpu(this.broker) : undefined;
    return {
      seconds: (performance.now() - this.t0) / 1000,
      cpuSeconds: (cpu.user + cpu.system) / 1e6,
      mainCpuSeconds: main1 !== undefined && this.main0 !== undefined ? main1 - this.main0 : undefined,
      brokerCpuSeconds:
        broker1 !== undefined && this.broker0 !== undefined ? broker1 - this.broker0 : undefined,
    };
  }
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

export async function count(ch: ClickHouse, db: string): Promise<number> {
  for (let attempt = 1; ; attempt++) {
    try {
      const rs = await ch.client.query({
        query: `SELECT count() AS n FROM ${db}.mail_events`,
        format: 'JSONEachRow',
      });
      return Number((await rs.json<{ n: string }>())[0]!.n);
    } catch (err) {
      // A keep-alive socket the server closed while this process was busy filling the topic.
      if ((err as { code?: string }).code !== 'ECONNRESET' || attempt === 3) throw err;
    }
  }
}

/**
 * Rows merges have read since the engine (or server) started: system.events' MergedRows. A
 * merge reads its parts whole and writes them again, so over a span this is the rewriting.
 */
export async function mergedRows(ch: ClickHouse): Promise<number> {
  const rs = await ch.client.query({
    query: "SELECT sum(value) AS n FROM system.events WHERE event = 'MergedRows'",
    format: 'JSONEachRow',
  });
  return Number((await rs.json<{ n: string }>())[0]?.n ?? 0);
}

/**
 * Database `db` dropped if there, created and migrated; with `mergeSelectorBase`, mail_events
 * then gets that merge_selector_base instead of migration 008's (to compare, e.g. with 5,
 * ClickHouse's default).
 */
export async function fresh(ch: ClickHouse, db: string, mergeSelectorBase?: number): Promise<void> {
  await ch.client.command({ query: `DROP DATABASE IF EXISTS ${db}` });
  await ch.client.command({ query: `CREATE DATABASE ${db}` });
  await migrate({ ...ch, database: db }, { database: db, ...storeSchema.parse({}) });
  if (mergeSelectorBase !== undefined)
    await ch.client.command({
      query: `ALTER TABLE ${db}.mail_events MODIFY SETTING merge_selector_base = ${mergeSelectorBase}`,
    });
}

/** `fn` with a fresh Kafka bus on `brokers`, closed after. */
export async function withKafkaBus<T>(brokers: string[], fn: (bus: Bus) => Promise<T>): Promise<T> {
  const bus = await createBus(
    configSchema.parse({ bus: { kind: 'kafka', kafka: { brokers, client_id: 'bench-store' } } }).bus,
  );
  try {
    return await fn(bus);
  } finally {
    await bus.close();
  }
}
