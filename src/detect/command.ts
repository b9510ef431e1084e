import closeWithGrace from 'close-with-grace';
import type { Command } from 'commander';
import { createBus } from '../bus/create.js';
import { action } from '../cli/exit.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { serveMetrics } from '../metrics/registry.js';
import { checkReadableFiles, parseOptionsFromFlags } from '../parse/flags.js';
import { fileInputs, replay } from './replay.js';
import { DetectService } from './service.js';

interface ReplayOptions {
  config?: string;
  host?: string;
  year?: string;
  timezone?: string;
  dryRun?: boolean;
  stats?: boolean;
}

export function registerDetectCommands(program: Command): void {
  program
    .command('detect')
    .description(
      'run the detectors as a Kafka consumer group: mail.events in (keyed by client IP), a second stage over ' +
        'detect.internal_topic (keyed by recipient domain, prefix, fleet), detections to mail.detections, ' +
        'expiring 4xx decisions to the compacted mail.decisions; invalid messages to the dead-letter topic',
    )
    .option('-c, --config <file>', 'YAML configuration file (section detect; bus for the brokers and topics)')
    .option('--dry-run', 'emit detections only, never decisions (overrides detect.policy.dry_run)')
    .action(
      action(async (opts: { config?: string; dryRun?: boolean }) => {
        const cfg = loadConfig(opts.config);
        if (opts.dryRun) cfg.detect.policy.dry_run = true;
        const log = createLogger({ ...cfg.log, component: 'detect' });
        const bus = await createBus(cfg.bus);
        const service = new DetectService(cfg, { bus, log });
        const metrics = cfg.metrics.listen ? await serveMetrics(cfg.metrics.listen) : undefined;
        await service.start();
        await new Promise<void>((resolve) => {
          closeWithGrace({ delay: 30_000 }, async ({ signal, err }) => {
            if (err) log.error({ err }, 'detect stopping on error');
            else log.info({ signal }, 'detect stopping');
            await service.close();
            await bus.close();
            metrics?.close();
            resolve();
          });
        });
      }),
    );

  program
    .command('replay')
    .description(
      'run the detectors over Postfix/Sendmail/Exim log files offline, in log time (files merged by time), ' +
        'printing one JSON object per detection and per decision (NDJSON, field "type": detection | decision); ' +
        'every time in the output is log time; event ids are FILE:LINE',
    )
    .argument('<file...>', 'log files (several MTAs may be given: they are merged by time)')
    .option(
      '-c, --config <file>',
      'YAML configuration file (section detect); default: the documented defaults',
    )
    .option('--host <name>', 'host for lines that carry none (the exim main log)')
    .option(
      '--year <n>',
      'year of the first yearless (RFC 3164) line; default: inferred from the current date',
    )
    .option(
      '--timezone <zone>',
      'IANA time zone of local timestamps (RFC 3164, exim); default: the process TZ',
    )
    .option('--dry-run', 'detections only (overrides detect.policy.dry_run)')
    .option('--stats', 'print line, event and output counts to stderr at the end (JSON)')
    .action(
      action(async (files: string[], opts: ReplayOptions) => {
        const cfg = loadConfig(opts.config);
        if (opts.dryRun) cfg.detect.policy.dry_run = true;
        const log = createLogger({ ...cfg.log, component: 'replay' });
        const parseOpts = parseOptionsFromFlags(opts);
        checkReadableFiles(files);
        const out = process.stdout;
        out.on('error', (err: NodeJS.ErrnoException) => {
          if (err.code === 'EPIPE') process.exit(0);
          throw err;
        });
        const stats = await replay(
          fileInputs(files),
          cfg.detect,
          parseOpts,
          async (r) => {
            if (!out.write(`${JSON.stringify(r)}\n`))
              await new Promise<void>((res) => out.once('drain', res));
          },
          log,
        );
        if (opts.stats) process.stderr.write(`${JSON.stringify(stats)}\n`);
      }),
    );
}
