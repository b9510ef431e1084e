import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { BusConfig } from '../config/config.js';
import { logger } from '../log/logger.js';
import type { FromThread, PackedTopic, ThreadData, ToThread } from './kafka-thread-wire.js';
import { packTopic } from './kafka-thread-wire.js';
import type { ProduceTransport, TransportSpec } from './kafka-transport.js';

interface Waiter {
  resolve(): void;
  reject(err: Error): void;
}

/**
 * The compiled worker script. Under the test runner this module is TypeScript source with no
 * .js beside it, so the build's copy is used (npm test builds first).
 */
function workerScript(): URL {
  const here = new URL('./kafka-thread-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(here))) return here;
  const built = new URL('../../dist/src/bus/kafka-thread-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) return built;
  throw new Error(`producer thread: no compiled ${fileURLToPath(here)} (run npm run build)`);
}

/**
 * A ProduceTransport whose Kafka client runs in a worker thread (bus.kafka.producer_thread).
 * `send` packs each topic's records into one transferred buffer; the thread's client sends them
 * and answers per batch. If the thread dies, every batch waiting on it fails (its senders retry)
 * and the next `send` starts a new one.
 */
export async function threadTransport(cfg: BusConfig, spec: TransportSpec): Promise<ProduceTransport> {
  const log = logger('bus');
  const data: ThreadData = { cfg, spec, logLevel: log.level };
  const script = workerScript();
  let worker: Worker | undefined;
  let opening: Promise<Worker> | undefined;
  let nextId = 1;
  const waiting = new Map<number, Waiter>();

  const start = (): Promise<Worker> =>
    new Promise<Worker>((resolve, reject) => {
      const w = new Worker(script, { workerData: data, name: 'kafka-producer' });
      let open = false;
      w.on('message', (m: FromThread) => {
        switch (m.type) {
          case 'open':
            open = true;
            resolve(w);
            return;
          case 'fatal':
            reject(new Error(`producer thread: ${m.message}`));
            return;
          case 'sent':
          case 'failed': {
            const waiter = waiting.get(m.id);
            waiting.delete(m.id);
            if (m.type === 'sent') waiter?.resolve();
            else waiter?.reject(new Error(m.message));
            return;
          }
        }
      });
      w.on('error', (err) => log.error({ err }, 'producer thread failed'));
      w.on('exit', (code) => {
        if (worker === w) worker = undefined;
        if (!open) reject(new Error(`producer thread exited (code ${code}) before it connected`));
        const err = new Error(`producer thread exited (code ${code}) before Kafka acknowledged the batch`);
        for (const waiter of waiting.values()) waiter.reject(err);
        waiting.clear();
      });
    });

  const ensure = async (): Promise<Worker> => {
    if (worker) return worker;
    opening ??= start().finally(() => {
      opening = undefined;
    });
    worker = await opening;
    return worker;
  };

  await ensure();
  return {
    async send(topics) {
      const w = await ensure();
      const packed: PackedTopic[] = [];
      const transfer: ArrayBuffer[] = [];
      for (const [topic, list] of topics) {
        const [p, t] = packTopic(topic, list);
        packed.push(p);
        transfer.push(...t);
      }
      const id = nextId++;
      const done = new Promise<void>((resolve, reject) => waiting.set(id, { resolve, reject }));
      w.postMessage({ type: 'send', id, topics: packed } satisfies ToThread, transfer);
      await done;
    },
    async close() {
      const w = worker;
      worker = undefined;
      if (!w) return;
      const closed = new Promise<void>((resolve) => {
        w.once('exit', () => resolve());
        w.on('message', (m: FromThread) => {
          if (m.type === 'closed') void w.terminate();
        });
      });
      w.postMessage({ type: 'close' } satisfies ToThread);
      await closed;
    },
  };
}
