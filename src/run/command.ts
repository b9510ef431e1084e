import closeWithGrace from 'close-with-grace';
import type { Command } from 'commander';
import { action } from '../cli/exit.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { serveMetrics } from '../metrics/registry.js';

export function registerRunCommand(program: Command): void {
  program
    .command('run')
    .description(
      "the single-host mode: follow this host's MTA logs (ship), detect, and keep the access map (respond) " +
        'in one process over the in-process bus — no Kafka needed; with run.store (default on) events, ' +
        'detections and decisions go to the embedded ClickHouse, with run.api the HTTP api is served too. ' +
        'SIGTERM/SIGINT: stop cleanly (checkpoint written, map left in force). SIGHUP: look at the log files again.',
    )
    .requiredOption('-c, --config <file>', 'YAML configuration file (samples in deploy/)')
    .option('--no-store', 'do not store in ClickHouse (overrides run.store)')
    .option('--dry-run', 'detect and log only: no decisions, no map changes')
    .action(
      action(async (opts: { config: string; store: boolean; dryRun?: boolean }) => {
        const { SingleHost } = await import('./single-host.js');
        const cfg = loadConfig(opts.config);
        if (!opts.store) {
          cfg.run.store = false;
          cfg.run.api = false;
        }
        if (opts.dryRun) {
          cfg.detect.policy.dry_run = true;
          cfg.respond.dry_run = true;
        }
        const log = createLogger({ ...cfg.log });
        const metrics = cfg.metrics.listen ? await serveMetrics(cfg.metrics.listen) : undefined;
        const host = new SingleHost(cfg, log);
        await host.start();
        process.on('SIGHUP', () => {
          log.info('SIGHUP: looking at the log files again');
          host.shipper?.reopen();
        });
        await new Promise<void>((resolve) => {
          closeWithGrace({ delay: 60_000, skip: ['SIGHUP'], logger: false }, async ({ signal, err }) => {
            if (err) log.error({ err }, 'stopping after an unexpected error');
            else log.info({ signal }, 'stopping');
            await host.stop();
            metrics?.close();
            resolve();
          });
        });
      }),
    );
}
