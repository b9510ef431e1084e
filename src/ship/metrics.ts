import { Counter, Gauge } from 'prom-client';
import { registry } from '../metrics/registry.js';

// Shipper metrics. Counters are process-wide; gauges are computed at scrape time from every
// running Shipper (one per process in practice; tests run several).

export interface ShipGaugeSource {
  /** Per file path: bytes between the last acknowledged line and the end of the file. */
  bytesBehind(): Map<string, number>;
  inFlightEvents(): number;
  inFlightBytes(): number;
  /** Seconds since the checkpoint was last written; null before the first write. */
  checkpointAgeSeconds(): number | null;
  openFiles(): number;
  /** Age of the oldest event read and not yet acknowledged (0 when none): the shipper's lag. */
  oldestUnackedSeconds(): number;
}

const sources = new Set<ShipGaugeSource>();

export function registerGaugeSource(s: ShipGaugeSource): () => void {
  sources.add(s);
  return () => sources.delete(s);
}

function existing<T>(name: string): T | undefined {
  return registry.getSingleMetric(name) as T | undefined;
}

function counter(name: string, help: string, labelNames: string[] = []): Counter<string> {
  return existing<Counter<string>>(name) ?? new Counter({ name, help, labelNames, registers: [registry] });
}

export const linesRead = counter('mizugiwa_ship_lines_read_total', 'complete lines read from log files', [
  'file',
]);
export const bytesRead = counter('mizugiwa_ship_bytes_read_total', 'bytes of complete lines read', ['file']);
export const linesTruncated = counter(
  'mizugiwa_ship_lines_truncated_total',
  'lines longer than ship.max_line_bytes (shipped with raw cut)',
);
export const eventsProduced = counter(
  'mizugiwa_ship_events_produced_total',
  'events acknowledged by the bus',
);
export const unknownEvents = counter(
  'mizugiwa_ship_unknown_events_total',
  'lines the parser did not recognize (shipped as kind=unknown)',
);
export const produceErrors = counter(
  'mizugiwa_ship_kafka_errors_total',
  'failed produce requests (each is retried with backoff)',
);
export const rotations = counter('mizugiwa_ship_rotations_total', 'rotations seen', ['kind']);
export const checkpointWrites = counter('mizugiwa_ship_checkpoint_writes_total', 'checkpoint writes', [
  'result',
]);

function gauge(
  name: string,
  help: string,
  labelNames: string[],
  collect: (g: Gauge<string>) => void,
): Gauge<string> {
  return (
    existing<Gauge<string>>(name) ??
    new Gauge({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        collect(this);
      },
    })
  );
}

gauge('mizugiwa_ship_bytes_behind', 'bytes of each file not yet acknowledged by the bus', ['file'], (g) => {
  for (const s of sources) for (const [file, n] of s.bytesBehind()) g.set({ file }, n);
});
gauge('mizugiwa_ship_in_flight_events', 'events read and not yet acknowledged', [], (g) => {
  let n = 0;
  for (const s of sources) n += s.inFlightEvents();
  g.set(n);
});
gauge('mizugiwa_ship_in_flight_bytes', 'bytes read and not yet acknowledged', [], (g) => {
  let n = 0;
  for (const s of sources) n += s.inFlightBytes();
  g.set(n);
});
gauge('mizugiwa_ship_checkpoint_age_seconds', 'seconds since the checkpoint was last written', [], (g) => {
  let age: number | null = null;
  for (const s of sources) {
    const a = s.checkpointAgeSeconds();
    if (a !== null) age = Math.max(age ?? 0, a);
  }
  if (age !== null) g.set(age);
});
gauge(
  'mizugiwa_ship_oldest_unacked_seconds',
  'age of the oldest event read and not yet acknowledged by the bus (0 when all are); alert on it',
  [],
  (g) => {
    let age = 0;
    for (const s of sources) age = Math.max(age, s.oldestUnackedSeconds());
    g.set(age);
  },
);
gauge('mizugiwa_ship_open_files', 'files open for reading', [], (g) => {
  let n = 0;
  for (const s of sources) n += s.openFiles();
  g.set(n);
});
