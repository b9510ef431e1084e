import closeWithGrace from 'close-with-grace';
import type { Command } from 'commander';
import { action } from '../cli/exit.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { serveMetrics } from '../metrics/registry.js';
import { schemaOptions } from './schema-options.js';

export function registerStoreCommand(program: Command): void {
  program
    .command('store')
    .description(
      'consume mail.events, mail.detections and mail.decisions from the bus and store them in ClickHouse ' +
        '(batched; offsets committed only after ClickHouse acknowledged; refused records to dead_letters)',
    )
    .option('-c, --config <file>', 'YAML configuration file')
    .option(
      '--no-migrate',
      'do not apply pending schema migrations at start-up (overrides store.migrate_on_start)',
    )
    .action(
      action(async (opts: { config?: string; migrate: boolean }) => {
        const [{ createBus }, { openClickHouse }, { migrate }, { StoreConsumer }, { StoreWriter }] =
          await Promise.all([
            import('../bus/create.js'),
            import('../clickhouse/client.js'),
            import('../clickhouse/migrate.js'),
            import('./consumer.js'),
            import('./writer.js'),
          ]);
        const cfg = loadConfig(opts.config);
        const log = createLogger({ ...cfg.log, component: 'store' });
        const ch = await openClickHouse(cfg.clickhouse);
        if (cfg.store.migrate_on_start && opts.migrate) {
          const r = await migrate(ch, schemaOptions(cfg));
          log.info({ dialect: r.dialect, applied: r.applied.map((m) => m.version) }, 'schema up to date');
        }
        const writer = await StoreWriter.open(ch, cfg.store);
        const bus = await createBus(cfg.bus);
        const consumer = new StoreConsumer(bus, writer, {
          groupId: cfg.store.group_id,
          topics: cfg.bus.topics,
          concurrency: cfg.store.concurrency,
          fetchMaxBytesPerPartition: cfg.store.fetch_max_bytes_per_partition,
        });
        const metrics = cfg.metrics.listen ? await serveMetrics(cfg.metrics.listen) : undefined;
        await consumer.start();
        await new Promise<void>((resolve) => {
          closeWithGrace({ delay: cfg.store.retry_max_ms + 10_000 }, async ({ signal, err }) => {
            if (err) log.error({ err }, 'store stopping on error');
            else log.info({ signal }, 'store stopping');
            await Promise.all([consumer.stop(), writer.close(cfg.store.retry_max_ms)]);
            await bus.close();
            await ch.close();
            metrics?.close();
            resolve();
          });
        });
      }),
    );
}
