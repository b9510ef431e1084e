// A second, private Kafka broker for the shipper's outage test: stopping the shared test broker
// (scripts/services.sh down kafka) would break other components' tests running at the same
// time. It uses the jars and the config template that scripts/services.sh installed, its own
// ports and its own KRaft directory, and it is started and stopped by pid, nothing else.
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, openSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { repoRoot } from '../services/services.js';

const TPL = join(repoRoot, 'scripts', 'services', 'kafka');

function kafkaLibs(): string {
  const cache = join(repoRoot, 'var', 'cache');
  const dirs = existsSync(cache) ? readdirSync(cache).filter((d) => d.startsWith('kafka-')) : [];
  for (const d of dirs.sort().reverse()) {
    const libs = join(cache, d, 'libs');
    if (existsSync(join(libs, '.complete'))) return libs;
  }
  throw new Error('no Kafka jars under var/cache: run `scripts/services.sh up kafka` once');
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export class PrivateKafka {
  private proc: ChildProcess | null = null;
  private constructor(
    readonly dir: string,
    readonly port: number,
    readonly controllerPort: number,
  ) {}

  static async create(dir: string): Promise<PrivateKafka> {
    mkdirSync(dir, { recursive: true });
    const k = new PrivateKafka(dir, await freePort(), await freePort());
    const props = readFileSync(join(TPL, 'server.properties'), 'utf8')
      .replaceAll('@DATA@', join(dir, 'data'))
      .replaceAll('@BROKER_PORT@', String(k.port))
      .replaceAll('@CONTROLLER_PORT@', String(k.controllerPort));
    writeFileSync(join(dir, 'server.properties'), props);
    writeFileSync(join(dir, 'log4j2.properties'), readFileSync(join(TPL, 'log4j2.properties')));
    const cp = `${kafkaLibs()}/*`;
    const cluster = execFileSync('java', ['-cp', cp, 'kafka.tools.StorageTool', 'random-uuid'], {
      encoding: 'utf8',
    })
      .trim()
      .split('\n')
      .pop()!;
    execFileSync(
      'java',
      [
        `-Dlog4j2.configurationFile=${join(dir, 'log4j2.properties')}`,
        `-Dkafka.logs.dir=${dir}`,
        '-cp',
        cp,
        'kafka.tools.StorageTool',
        'format',
        '--standalone',
        '-t',
        cluster,
        '-c',
        join(dir, 'server.properties'),
      ],
      { stdio: 'ignore' },
    );
    return k;
  }

  get brokers(): string[] {
    return [`127.0.0.1:${this.port}`];
  }

  async start(timeoutMs = 120_000): Promise<void> {
    if (this.proc) return;
    const out = openSync(join(this.dir, 'stdout.log'), 'a');
    this.proc = spawn(
      'java',
      [
        '-Xms128m',
        '-Xmx384m',
        '-XX:+UseSerialGC',
        '-Djava.awt.headless=true',
        `-Dkafka.logs.dir=${this.dir}`,
        `-Dlog4j2.configurationFile=${join(this.dir, 'log4j2.properties')}`,
        '-cp',
        `${kafkaLibs()}/*`,
        'kafka.Kafka',
        join(this.dir, 'server.properties'),
      ],
      { stdio: ['ignore', out, out] },
    );
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      if (this.proc.exitCode !== null) throw new Error(`private Kafka exited; see ${this.dir}/server.log`);
      try {
        execFileSync('node', [join(TPL, 'probe.mjs'), this.brokers[0]!, '2000'], { stdio: 'ignore' });
        return;
      } catch {
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    throw new Error(`private Kafka did not answer within ${timeoutMs} ms; see ${this.dir}/server.log`);
  }

  /** Stops the broker (SIGTERM, a clean shutdown as `services.sh down` does) and waits for it to exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const p = this.proc;
    if (!p) return;
    this.proc = null;
    if (p.exitCode !== null) return;
    const exited = new Promise<void>((r) => p.once('exit', () => r()));
    p.kill(signal);
    const timer = setTimeout(() => p.kill('SIGKILL'), 60_000);
    await exited;
    clearTimeout(timer);
  }
}
