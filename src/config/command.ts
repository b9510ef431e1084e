import type { Command } from 'commander';
import { action } from '../cli/exit.js';
import { defaultsYaml } from './defaults.js';
import { loadConfig } from './load.js';

export function registerConfigCommands(program: Command): void {
  const config = program
    .command('config')
    .description('check a configuration file or print the documented defaults');
  config
    .command('check')
    .argument('<file>', 'YAML configuration file')
    .description('validate FILE (with MIZUGIWA_* environment overrides); exit 2 naming each bad key')
    .option('--print', 'print the effective configuration (defaults filled in) as JSON')
    .action(
      action((file: string, opts: { print?: boolean }) => {
        const cfg = loadConfig(file);
        if (opts.print) process.stdout.write(`${JSON.stringify(cfg, null, 2)}\n`);
        else process.stdout.write(`${file}: ok\n`);
      }),
    );
  config
    .command('defaults')
    .description('print every configuration key with its default value and description (YAML)')
    .action(
      action(() => {
        process.stdout.write(defaultsYaml());
      }),
    );
}
