import type { Command } from 'commander';
import { action, UsageError } from '../cli/exit.js';
import { loadConfig } from '../config/load.js';
import { createLogger } from '../log/logger.js';
import { schemaOptions } from '../store/schema-options.js';

interface MigrateOptions {
  config?: string;
  print?: boolean;
  cluster?: string | boolean;
  legacy?: boolean;
}

export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description(
      'apply pending ClickHouse schema migrations (schemas/clickhouse/) to the configured backend and record them ' +
        'in schema_migrations; `mizugiwa store` does this at start-up too',
    )
    .option('-c, --config <file>', 'YAML configuration file')
    .option(
      '--print',
      'print the schema SQL (placeholders filled in from the configuration) instead of applying it',
    )
    .option(
      '--cluster [name]',
      'with --print: show the cluster DDL (Replicated engines, Distributed tables, ON CLUSTER) as store.cluster.enabled would',
    )
    .option('--legacy', 'with --print: show the version-neutral schema used for ClickHouse before 23')
    .action(
      action(async (opts: MigrateOptions) => {
        const [{ openClickHouse }, { migrate, migrationLabel, printSchema }] = await Promise.all([
          import('./client.js'),
          import('./migrate.js'),
        ]);
        const cfg = loadConfig(opts.config);
        const schema = schemaOptions(cfg);
        if (opts.cluster !== undefined || opts.legacy) {
          if (!opts.print)
            throw new UsageError(
              '--cluster and --legacy only go with --print (set store.cluster in the configuration to apply cluster DDL)',
            );
        }
        if (opts.cluster !== undefined) {
          schema.cluster = {
            enabled: true,
            name: typeof opts.cluster === 'string' ? opts.cluster : cfg.store.cluster.name,
          };
          if (!/^[A-Za-z_][A-Za-z0-9_.-]*$/.test(schema.cluster.name))
            throw new UsageError(`--cluster ${schema.cluster.name}: not a cluster name`);
        }
        if (opts.print) {
          process.stdout.write(printSchema(schema, opts.legacy ? 'legacy' : 'current'));
          return;
        }
        createLogger({ ...cfg.log, component: 'migrate' });
        const ch = await openClickHouse(cfg.clickhouse);
        try {
          const r = await migrate(ch, schema);
          for (const m of r.applied) process.stdout.write(`applied ${migrationLabel(m)}\n`);
          for (const m of r.waiting)
            process.stdout.write(
              `waiting ${migrationLabel(m)}: needs MergeTree settings ` +
                `${m.requires.join(', ')}, unknown to this server; applied after an upgrade\n`,
            );
          process.stdout.write(
            `${cfg.clickhouse.backend} ClickHouse ${r.dialect.version} (${r.dialect.name} dialect): ` +
              `${r.applied.length} applied, ${r.skipped.length} already there` +
              `${r.waiting.length > 0 ? `, ${r.waiting.length} waiting` : ''}\n`,
          );
        } finally {
          await ch.close();
        }
      }),
    );
}
