// The command line of a bench: node's parseArgs, with -h/--help and a one-line error (exit 2)
// for an unknown or malformed option, as every mizugiwa command answers.
import { type ParseArgsConfig, parseArgs } from 'node:util';

/** One option as parseArgs takes it, with its line for --help. */
export type BenchOption = NonNullable<ParseArgsConfig['options']>[string] & { help: string };

export interface BenchCommand<O extends Record<string, BenchOption>> {
  /** How the bench is called and what it measures (the first lines of --help). */
  usage: string;
  options: O;
  /** Printed after the options (environment variables, services needed, ...). */
  notes?: string;
}

type Values<O extends Record<string, BenchOption>> = ReturnType<
  typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>
>['values'];

/** The --help text of `cmd`. */
export function benchHelp<O extends Record<string, BenchOption>>(cmd: BenchCommand<O>): string {
  const rows = Object.entries(cmd.options).map(([name, o]) => {
    const flag = `${o.short ? `-${o.short}, ` : ''}--${name}${o.type === 'string' ? ' VALUE' : ''}`;
    const dflt = o.default === undefined || o.default === false ? '' : ` (default ${String(o.default)})`;
    return [flag, `${o.help}${dflt}`] as const;
  });
  rows.push(['-h, --help', 'this text']);
  const width = Math.max(...rows.map(([f]) => f.length)) + 2;
  const lines = rows.map(([f, h]) => `  ${f.padEnd(width)}${h}`);
  return `${cmd.usage.trimEnd()}\n\nOptions:\n${lines.join('\n')}\n${cmd.notes ? `\n${cmd.notes.trimEnd()}\n` : ''}`;
}

/**
 * The options of this process's command line per `cmd`. Prints the help and exits 0 on -h or
 * --help; prints one line and exits 2 on an unknown option, a missing value or a positional.
 */
export function benchArgs<const O extends Record<string, BenchOption>>(
  name: string,
  cmd: BenchCommand<O>,
  argv: string[] = process.argv.slice(2),
): Values<O> {
  if (argv.includes('-h') || argv.includes('--help')) {
    process.stdout.write(benchHelp(cmd));
    process.exit(0);
  }
  try {
    // parseArgs keeps only the fields it knows of each option.
    return parseArgs({ args: argv, options: cmd.options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    process.stderr.write(`${name}: ${(err as Error).message} (see --help)\n`);
    process.exit(2);
  }
}
