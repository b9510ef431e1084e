import type { FastifyInstance } from 'fastify';
import type { Bus, Producer } from '../bus/bus.js';
import { createBus } from '../bus/create.js';
import { type ClickHouse, openClickHouse } from '../clickhouse/client.js';
import { migrate } from '../clickhouse/migrate.js';
import type { Config } from '../config/config.js';
import { ConfigError } from '../config/load.js';
import { type Logger, logger } from '../log/logger.js';
import { StoreConsumer } from '../store/consumer.js';
import { schemaOptions } from '../store/schema-options.js';
import { StoreWriter } from '../store/writer.js';
import { splitListen } from './config.js';
import { buildApi } from './server.js';

export interface StartApiOptions {
  /** An open ClickHouse (`mizugiwa run` shares its own); otherwise one is opened from cfg.clickhouse. */
  ch?: ClickHouse;
  /** A bus (`mizugiwa run` passes its in-process bus); otherwise one is created from cfg.bus. */
  bus?: Bus;
  log?: Logger;
  /** Overrides api.listen. */
  listen?: string;
}

export interface RunningApi {
  app: FastifyInstance;
  /** http://HOST:PORT the API answers on (the real port when api.listen asked for port 0). */
  url: string;
  /** Stops listening (in-flight requests finish), then closes what startApi opened itself. */
  close(): Promise<void>;
}

/**
 * Starts the API: ClickHouse (migrated when api.migrate_on_start), the bus producer for operator
 * changes, the whitelist, then listens. What the caller passed in is left open on close.
 */
export async function startApi(cfg: Config, opts: StartApiOptions = {}): Promise<RunningApi> {
  const log = opts.log ?? logger('api');
  const listen = splitListen(opts.listen ?? cfg.api.listen);
  const ownCh = opts.ch === undefined;
  const ownBus = opts.bus === undefined;
  let ch: ClickHouse | undefined = opts.ch;
  let bus: Bus | undefined = opts.bus;
  let producer: Producer | undefined;
  let store: { consumer: StoreConsumer; writer: StoreWriter } | undefined;
  const cleanup = async () => {
    await producer?.close().catch((err) => log.warn({ err }, 'producer close failed'));
    await store?.consumer.stop().catch((err) => log.warn({ err }, 'store consumer stop failed'));
    await store?.writer.close().catch((err) => log.warn({ err }, 'store writer close failed'));
    if (ownBus) await bus?.close().catch((err) => log.warn({ err }, 'bus close failed'));
    if (ownCh) await ch?.close().catch((err) => log.warn({ err }, 'ClickHouse close failed'));
  };
  try {
    ch ??= await openClickHouse(cfg.clickhouse);
    if (cfg.api.migrate_on_start) {
      const r = await migrate(ch, schemaOptions(cfg));
      log.info({ dialect: r.dialect, applied: r.applied.map((m) => m.version) }, 'schema up to date');
    }
    bus ??= await createBus(cfg.bus);
    await bus.ensureTopics([
      { topic: cfg.bus.topics.decisions, compacted: true },
      { topic: cfg.api.whitelist_topic, compacted: true },
    ]);
    producer = await bus.producer({ lingerMs: 0 });
    if (ownBus && bus.kind === 'memory') {
      // Alone on an in-process bus nobody else reads what operators publish: store it here, so
      // GET /decisions, the audit trail and the feeds (the way MTAs get it) see it.
      const writer = await StoreWriter.open(ch, cfg.store);
      const consumer = new StoreConsumer(bus, writer, { groupId: 'api-store', topics: cfg.bus.topics });
      store = { consumer, writer };
      await consumer.start();
      log.warn(
        'bus.kind is memory: the API stores its own operator decisions; MTAs get them through the feed ' +
          '(detectors and agents see them only on a shared bus or inside `mizugiwa run`)',
      );
    }
    let app: FastifyInstance;
    try {
      app = await buildApi({ cfg, ch, bus, producer, log });
    } catch (err) {
      throw new ConfigError(`api: ${(err as Error).message}`);
    }
    const address = await app.listen({ host: listen.host, port: listen.port });
    log.info(
      { url: address, tokens: cfg.api.tokens.length, read_requires_token: cfg.api.read_requires_token },
      'api listening',
    );
    return {
      app,
      url: address,
      async close() {
        await app.close();
        await cleanup();
      },
    };
  } catch (err) {
    await cleanup();
    throw err;
  }
}
