import { accessSync, constants, statSync } from 'node:fs';
import { UsageError } from '../cli/exit.js';
import { LineParser, type ParseOptions } from './parser.js';

/** The parser flags `mizugiwa parse` and `mizugiwa replay` share. */
export interface ParseFlags {
  host?: string;
  year?: string;
  timezone?: string;
}

/** Turns --host/--year/--timezone into ParseOptions; a bad value is a UsageError naming the flag. */
export function parseOptionsFromFlags(flags: ParseFlags): ParseOptions {
  const opts: ParseOptions = {};
  if (flags.host !== undefined) opts.host = flags.host;
  if (flags.year !== undefined) {
    if (!/^\d{4}$/.test(flags.year)) throw new UsageError(`--year ${flags.year}: expected a four-digit year`);
    opts.year = Number(flags.year);
  }
  if (flags.timezone !== undefined) {
    opts.timezone = flags.timezone;
    try {
      new LineParser(opts);
    } catch {
      throw new UsageError(
        `--timezone ${flags.timezone}: not a known IANA time zone (e.g. Europe/Berlin, UTC)`,
      );
    }
  }
  return opts;
}

/** Every file must be a readable file (not a directory) before any output is written. */
export function checkReadableFiles(files: string[]): void {
  for (const f of files) {
    try {
      accessSync(f, constants.R_OK);
      if (statSync(f).isDirectory()) throw new Error('is a directory');
    } catch (err) {
      throw new UsageError(`cannot read ${f}: ${(err as Error).message}`);
    }
  }
}
