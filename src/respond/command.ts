import closeWithGrace from 'close-with-grace';
import type { Command } from 'commander';
import type { Bus, Consumer } from '../bus/bus.js';
import { createBus } from '../bus/create.js';
import { action } from '../cli/exit.js';
import { ConfigError, loadConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { serveMetrics } from '../metrics/registry.js';
import { mapPathOf } from './agent.js';
import { consumeDecisions, groupIdOf, responderFromConfig } from './start.js';
import { loadState } from './state.js';

interface RespondOptions {
  config: string;
  dryRun?: boolean;
  once?: boolean;
  list?: boolean;
}

export function registerRespondCommand(program: Command): void {
  program
    .command('respond')
    .description(
      "the agent on an MTA host: read the compacted decisions topic (bus.topics.decisions) from the beginning with this host's own consumer group, " +
        'and keep the access map (respond.mta: a Postfix check_client_access table or the Sendmail access db) in step: ' +
        'entries written atomically, refused by the safety rules when unsafe, removed on the agent clock when they expire ' +
        '(even without Kafka). SIGHUP: rebuild the map now (after you edited your own lines). SIGTERM/SIGINT: write what is pending, exit.',
    )
    .requiredOption('-c, --config <file>', 'YAML configuration file (see `mizugiwa config defaults`)')
    .option('--dry-run', 'only log what would be written (sets respond.dry_run)')
    .option('--once', 'load the state file, drop what expired, rebuild the map once and exit (no bus)')
    .option('--list', 'print the entries of the state file as JSON lines and exit')
    .action(
      action(async (opts: RespondOptions) => {
        const cfg = loadConfig(opts.config);
        if (opts.dryRun) cfg.respond.dry_run = true;
        const log = createLogger({ level: cfg.log.level, pretty: cfg.log.pretty, component: 'respond' });
        const responder = responderFromConfig(cfg, log);

        if (opts.list) {
          const state = await loadState(responder.statePath);
          for (const p of state.problems) log.warn(p);
          for (const e of state.entries) {
            process.stdout.write(
              `${JSON.stringify({ ...e, expires_at: new Date(e.expires_at).toISOString() })}\n`,
            );
          }
          return;
        }
        if (opts.once) {
          await responder.start();
          const inForce = await responder.flush();
          await responder.stop();
          if (!inForce && !cfg.respond.dry_run)
            throw new Error(`the map ${mapPathOf(cfg.respond)} was not rebuilt (see the log)`);
          return;
        }
        if (cfg.bus.kind !== 'kafka') {
          throw new ConfigError(
            `${opts.config}: bus.kind: \`mizugiwa respond\` reads decisions from Kafka (bus.kind: kafka); ` +
              'on one host without Kafka, `mizugiwa run` includes the responder',
          );
        }
        const metrics = cfg.metrics.listen ? await serveMetrics(cfg.metrics.listen) : null;
        // The map first: entries in force are kept (and expire) even while Kafka is unreachable.
        await responder.start();
        let bus: Bus | null = null;
        let consumer: Consumer | null = null;
        let stopping = false;
        const connected = (async () => {
          for (let delay = 1000; !stopping; delay = Math.min(delay * 2, 30_000)) {
            try {
              bus = await createBus(cfg.bus);
              consumer = await consumeDecisions(bus, responder, cfg);
              if (stopping) return; // the close handler closes them
              log.info(
                {
                  host: cfg.host,
                  group: groupIdOf(cfg),
                  topic: cfg.bus.topics.decisions,
                  map: responder.map.describe,
                },
                'responding',
              );
              return;
            } catch (err) {
              log.error(
                { err: (err as Error).message, retry_in_ms: delay },
                'cannot read decisions from Kafka; the map stays in force and entries still expire on time; retrying',
              );
              await bus?.close().catch(() => {});
              bus = null;
              await new Promise((r) => setTimeout(r, delay));
            }
          }
        })();
        process.on('SIGHUP', () => {
          log.info('SIGHUP: rebuilding the map');
          void responder.refresh().catch((err: unknown) => log.error({ err }, 'rebuild after SIGHUP failed'));
        });
        await new Promise<void>((resolve) => {
          closeWithGrace(
            { delay: cfg.respond.command_timeout_ms + 5_000, skip: ['SIGHUP'], logger: false },
            async ({ signal, err }) => {
              if (err) log.error({ err }, 'stopping after an unexpected error');
              else log.info({ signal }, 'stopping');
              stopping = true;
              await Promise.race([connected, new Promise((r) => setTimeout(r, 5000))]);
              const c = consumer as Consumer | null;
              const b = bus as Bus | null;
              await c?.close().catch((e: unknown) => log.warn({ err: e }, 'consumer close'));
              await responder.stop();
              await b?.close().catch((e: unknown) => log.warn({ err: e }, 'bus close'));
              metrics?.close();
              resolve();
            },
          );
        });
      }),
    );
}
