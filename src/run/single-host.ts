import type { RunningApi } from '../api/start.js';
import { startApi } from '../api/start.js';
import type { Bus, Producer } from '../bus/bus.js';
import { createBus } from '../bus/create.js';
import { type ClickHouse, openClickHouse } from '../clickhouse/client.js';
import { migrate } from '../clickhouse/migrate.js';
import type { Config } from '../config/config.js';
import { ConfigError } from '../config/load.js';
import { DetectService } from '../detect/service.js';
import { type Logger, logger } from '../log/logger.js';
import type { Responder } from '../respond/agent.js';
import { consumeDecisions, responderFromConfig } from '../respond/start.js';
import type { Shipper } from '../ship/shipper.js';
import { shipProducer, shipperFromConfig } from '../ship/start.js';
import { StoreConsumer } from '../store/consumer.js';
import { schemaOptions } from '../store/schema-options.js';
import { StoreWriter } from '../store/writer.js';

/** Something started that must be stopped, in reverse order of starting. */
interface Part {
  name: string;
  stop(): Promise<void>;
}

/**
 * The single-host mode: ship + detect + respond (+ store, + api) in one process over one bus —
 * the in-process bus unless the configuration names Kafka. Consumers start before the shipper
 * (the in-process bus keeps a record only for the groups it knows), the responder's map before
 * anything can reach it.
 */
export class SingleHost {
  private readonly parts: Part[] = [];
  private readonly log: Logger;
  private readonly root: Logger;
  bus?: Bus;
  ch?: ClickHouse;
  responder?: Responder;
  detect?: DetectService;
  shipper?: Shipper;
  api?: RunningApi;

  constructor(
    private readonly cfg: Config,
    log?: Logger,
  ) {
    this.root = log ?? logger();
    this.log = this.root.child({ component: 'run' });
  }

  async start(): Promise<void> {
    const { cfg } = this;
    if (cfg.ship.files.length === 0) throw new ConfigError('ship.files: no log files to follow');
    if (cfg.run.api && !cfg.run.store) throw new ConfigError('run.api: the api needs run.store: true');
    try {
      const bus = await createBus(cfg.bus);
      this.bus = bus;
      this.parts.push({ name: 'bus', stop: () => bus.close() });

      if (cfg.run.respond) {
        const responder = responderFromConfig(cfg, this.root.child({ component: 'respond' }));
        await responder.start();
        this.responder = responder;
        this.parts.push({ name: 'respond', stop: () => responder.stop() });
        const consumer = await consumeDecisions(bus, responder, cfg);
        this.parts.push({ name: 'respond consumer', stop: () => consumer.close() });
      }

      if (cfg.run.store) await this.startStore(bus);

      const detect = new DetectService(cfg, { bus, log: this.root.child({ component: 'detect' }) });
      await detect.start();
      this.detect = detect;
      this.parts.push({ name: 'detect', stop: () => detect.close() });

      if (cfg.run.api && this.ch) {
        const api = await startApi(cfg, { ch: this.ch, bus, log: this.root.child({ component: 'api' }) });
        this.api = api;
        this.parts.push({ name: 'api', stop: () => api.close() });
      }

      await bus.ensureTopics([{ topic: cfg.bus.topics.events }]);
      const producer: Producer = await shipProducer(bus, cfg);
      this.parts.push({ name: 'ship producer', stop: () => producer.close() });
      const shipper = shipperFromConfig(cfg, producer, this.root.child({ component: 'ship' }));
      await shipper.start();
      this.shipper = shipper;
      this.parts.push({ name: 'ship', stop: () => shipper.stop() });
    } catch (err) {
      await this.stop();
      throw err;
    }
    this.log.info(
      {
        host: cfg.host,
        bus: cfg.bus.kind,
        files: cfg.ship.files,
        store: cfg.run.store ? cfg.clickhouse.backend : false,
        respond: cfg.run.respond ? this.responder?.map.describe : false,
        api: this.api?.url ?? false,
      },
      'mizugiwa running',
    );
  }

  private async startStore(bus: Bus): Promise<void> {
    const { cfg } = this;
    const ch = await openClickHouse(cfg.clickhouse);
    this.ch = ch;
    this.parts.push({ name: 'clickhouse', stop: () => ch.close() });
    if (cfg.store.migrate_on_start) {
      const r = await migrate(ch, schemaOptions(cfg));
      this.log.info({ dialect: r.dialect, applied: r.applied.map((m) => m.version) }, 'schema up to date');
    }
    const writer = await StoreWriter.open(ch, cfg.store);
    this.parts.push({ name: 'store writer', stop: () => writer.close(cfg.store.retry_max_ms) });
    const consumer = new StoreConsumer(bus, writer, { groupId: cfg.store.group_id, topics: cfg.bus.topics });
    await consumer.start();
    this.parts.push({ name: 'store consumer', stop: () => consumer.stop() });
  }

  /** Stops in reverse order: the shipper first (its last lines still flow through), the bus last. */
  async stop(): Promise<void> {
    while (this.parts.length > 0) {
      const part = this.parts.pop()!;
      try {
        await part.stop();
      } catch (err) {
        this.log.warn({ err, part: part.name }, 'stop failed');
      }
    }
  }
}
