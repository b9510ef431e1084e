#!/usr/bin/env node
import { Command } from 'commander';
import { registerApiCommand } from '../api/command.js';
import { registerMigrateCommand } from '../clickhouse/command.js';
import { registerConfigCommands } from '../config/command.js';
import { registerDetectCommands } from '../detect/command.js';
import { registerParseCommand } from '../parse/command.js';
import { registerRespondCommand } from '../respond/command.js';
import { registerRunCommand } from '../run/command.js';
import { registerShipCommand } from '../ship/command.js';
import { registerStoreCommand } from '../store/command.js';
import { version } from './version.js';

// Each component registers its own commands (one line each).
const program = new Command('mizugiwa')
  .description(
    'Log-stream analytics and automatic tempfail response for mail servers (Postfix, Sendmail, Exim). ' +
      'Detects directory-harvest attacks, bot-like flows and bounce storms across a fleet and answers ' +
      "them with self-expiring 4xx entries in the MTAs' access maps.",
  )
  .version(version, '-V, --version')
  .showHelpAfterError('(run with --help for usage)')
  .configureHelp({ sortSubcommands: true });

registerConfigCommands(program);
registerApiCommand(program);
registerDetectCommands(program);
registerParseCommand(program);
registerShipCommand(program);
registerRespondCommand(program);
registerRunCommand(program);
registerMigrateCommand(program);
registerStoreCommand(program);

await program.parseAsync(process.argv);
