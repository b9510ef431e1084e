import closeWithGrace from 'close-with-grace';
import type { Command } from 'commander';
import type { Bus, Producer } from '../bus/bus.js';
import { createBus } from '../bus/create.js';
import { action } from '../cli/exit.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { serveMetrics } from '../metrics/registry.js';
import { CheckpointError, readCheckpoint } from './checkpoint.js';
import type { Shipper } from './shipper.js';
import { checkpointPathOf, shipProducer, shipperFromConfig } from './start.js';

export function registerShipCommand(program: Command): void {
  program
    .command('ship')
    .description(
      'follow MTA log files (ship.files), parse every line into a MailEvent and produce it to the ' +
        'bus topic bus.topics.events; the checkpoint moves only after the bus acknowledged. ' +
        'SIGTERM/SIGINT: send what was read, write the checkpoint, exit. SIGHUP: look at the files again.',
    )
    .requiredOption('-c, --config <file>', 'YAML configuration file (see `mizugiwa config defaults`)')
    .option('--from-beginning', 'on a first start (no checkpoint) read existing files from their beginning')
    .action(
      action(async (opts: { config: string; fromBeginning?: boolean }) => {
        const cfg = loadConfig(opts.config);
        if (opts.fromBeginning) cfg.ship.start_at = 'beginning';
        if (cfg.bus.kind !== 'kafka') {
          throw new ConfigError(
            `${opts.config}: bus.kind: \`mizugiwa ship\` produces to Kafka (bus.kind: kafka); ` +
              'for one host without Kafka use `mizugiwa run`',
          );
        }
        if (cfg.ship.files.length === 0)
          throw new ConfigError(`${opts.config}: ship.files: no files to follow`);
        // A damaged checkpoint is for a person to look at: one line, exit 2, before anything else.
        await readCheckpoint(checkpointPathOf(cfg)).catch((err: unknown) => {
          throw err instanceof CheckpointError ? new ConfigError(err.message) : err;
        });
        const log = createLogger({ level: cfg.log.level, pretty: cfg.log.pretty, component: 'ship' });
        const metrics = cfg.metrics.listen ? await serveMetrics(cfg.metrics.listen) : null;
        let bus: Bus | undefined;
        let producer: Producer | undefined;
        let shipper: Shipper | undefined;
        let stopping = false;
        const done = new Promise<void>((resolve) => {
          closeWithGrace(
            { delay: cfg.ship.shutdown_grace_ms + 5_000, skip: ['SIGHUP'], logger: false },
            async ({ signal, err }) => {
              stopping = true;
              if (err) log.error({ err }, 'stopping after an unexpected error');
              else log.info({ signal }, 'stopping');
              await shipper?.stop();
              await producer?.close().catch((e: unknown) => log.warn({ err: e }, 'producer close'));
              await bus?.close().catch((e: unknown) => log.warn({ err: e }, 'bus close'));
              metrics?.close();
              resolve();
            },
          );
        });
        process.on('SIGHUP', () => {
          log.info('SIGHUP: looking at the files again');
          shipper?.reopen();
        });
        // Kafka away at boot is not a reason to exit: wait for it (nothing is read meanwhile, so
        // nothing is lost; the files are read from the checkpoint once it answers).
        let delay = cfg.ship.retry_initial_ms;
        let ready = false;
        while (!stopping && !ready) {
          try {
            bus = await createBus(cfg.bus);
            await bus.ensureTopics([{ topic: cfg.bus.topics.events }]);
            ready = true;
          } catch (err) {
            await bus?.close().catch(() => {});
            bus = undefined;
            log.warn(
              { err: (err as Error).message, retry_in_ms: delay },
              'Kafka not reachable; trying again (no line is read until it answers)',
            );
            await new Promise((r) => setTimeout(r, delay));
            delay = Math.min(delay * 2, cfg.ship.retry_max_ms);
          }
        }
        // Not retried: what fails here is the configuration (a compression without a codec).
        if (!stopping && bus) producer = await shipProducer(bus, cfg);
        if (!stopping && producer) {
          shipper = shipperFromConfig(cfg, producer, log);
          try {
            await shipper.start();
          } catch (err) {
            if (err instanceof CheckpointError) throw new ConfigError(err.message);
            throw err;
          }
          log.info(
            { host: cfg.host, checkpoint: checkpointPathOf(cfg), topic: cfg.bus.topics.events },
            'shipping',
          );
        }
        await done;
        // Sockets and timers of the Kafka client may linger after close; the work is done.
        await new Promise<void>((res) => log.flush(() => res()));
        process.exit(0);
      }),
    );
}
