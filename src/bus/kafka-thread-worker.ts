// The producer thread: one Kafka producer client, fed packed batches by kafka-thread.ts.
import { parentPort, workerData } from 'node:worker_threads';
import { createLogger } from '../log/logger.js';
import { kafkajsClient } from './kafka.js';
import type { FromThread, ThreadData, ToThread } from './kafka-thread-wire.js';
import { unpackTopic } from './kafka-thread-wire.js';
import { type OutMessage, openTransport, type ProduceTransport } from './kafka-transport.js';

const port = parentPort!;
const { cfg, spec, logLevel } = workerData as ThreadData;
const log = createLogger({ level: logLevel, component: 'bus' });
const post = (m: FromThread) => port.postMessage(m);

let transport: ProduceTransport;
try {
  transport = await openTransport(cfg, spec, () => kafkajsClient(cfg, spec.clientId, 8, log));
} catch (err) {
  post({ type: 'fatal', message: (err as Error).message });
  process.exit(1);
}
post({ type: 'open' });

port.on('message', (m: ToThread) => {
  if (m.type === 'close') {
    void transport.close().finally(() => {
      post({ type: 'closed' });
      port.close();
    });
    return;
  }
  const topics = new Map<string, OutMessage[]>();
  for (const t of m.topics) topics.set(t.topic, unpackTopic(t));
  transport.send(topics).then(
    () => post({ type: 'sent', id: m.id }),
    (err: Error) => post({ type: 'failed', id: m.id, message: err.message }),
  );
});
