import closeWithGrace from 'close-with-grace';
import type { Command } from 'commander';
import { action, UsageError } from '../cli/exit.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { splitListen } from './config.js';

export function registerApiCommand(program: Command): void {
  program
    .command('api')
    .description(
      'the HTTP API: log search (/api/v1/events), message trace, top unknown-recipient sources, decisions in force ' +
        'with their audit trail, operator add/lift and whitelist (token needed), the mitigation feed for MTAs without ' +
        'the agent (/api/v1/feed/postfix, /feed/sendmail, /feed.json), /health and /metrics. ' +
        'With the embedded ClickHouse (chdb) it must be the only process on clickhouse.path.',
    )
    .requiredOption('-c, --config <file>', 'YAML configuration file (see `mizugiwa config defaults`)')
    .option('-l, --listen <host:port>', 'overrides api.listen')
    .action(
      action(async (opts: { config: string; listen?: string }) => {
        const { startApi } = await import('./start.js');
        const cfg = loadConfig(opts.config);
        if (opts.listen !== undefined) {
          const l = splitListen(opts.listen);
          if (!l.host || !Number.isInteger(l.port) || l.port < 0 || l.port > 65535) {
            throw new UsageError(`--listen: expected HOST:PORT, got ${JSON.stringify(opts.listen)}`);
          }
        }
        const log = createLogger({ ...cfg.log, component: 'api' });
        const api = await startApi(cfg, { log, ...(opts.listen ? { listen: opts.listen } : {}) });
        await new Promise<void>((resolve) => {
          closeWithGrace({ delay: 10_000 }, async ({ signal, err }) => {
            if (err) log.error({ err }, 'api stopping on error');
            else log.info({ signal }, 'api stopping');
            await api.close();
            resolve();
          });
        });
      }),
    );
}
