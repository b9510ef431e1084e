import { join } from 'node:path';
import type { Bus, Producer } from '../bus/bus.js';
import type { Config } from '../config/config.js';
import type { Logger } from '../log/logger.js';
import { LineParser } from '../parse/parser.js';
import { Shipper } from './shipper.js';

/** Where the checkpoint lives: ship.checkpoint_path, or <data_dir>/ship/checkpoint.json. */
export function checkpointPathOf(cfg: Config): string {
  return cfg.ship.checkpoint_path ?? join(cfg.data_dir, 'ship', 'checkpoint.json');
}

/** The producer the shipper wants: it batches and lingers itself, so the bus sends at once. */
export function shipProducer(bus: Bus, cfg: Config): Promise<Producer> {
  return bus.producer({
    lingerMs: 0,
    compression: cfg.ship.compression,
    gzipLevel: cfg.ship.gzip_level,
    thread: cfg.ship.producer_thread,
    maxBufferedBytes: Math.max(cfg.ship.max_in_flight_bytes, cfg.ship.batch_max_bytes * 2),
  });
}

/**
 * A Shipper wired from the configuration: the files of `ship`, the parser at the edge, the
 * `bus.topics.events` topic. Used by `mizugiwa ship` (Kafka) and `mizugiwa run` (memory bus).
 */
export function shipperFromConfig(cfg: Config, producer: Producer, log?: Logger): Shipper {
  const p = cfg.ship.parser;
  const parser = new LineParser({
    host: p.line_host ?? cfg.host,
    ...(p.year !== null ? { year: p.year } : {}),
    ...(p.timezone !== null ? { timezone: p.timezone } : {}),
  });
  return new Shipper({
    config: cfg.ship,
    host: cfg.host,
    checkpointPath: checkpointPathOf(cfg),
    topic: cfg.bus.topics.events,
    producer,
    parser,
    ...(log ? { log } : {}),
  });
}
