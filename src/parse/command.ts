import { once } from 'node:events';
import type { Readable, Writable } from 'node:stream';
import type { Command } from 'commander';
import { action } from '../cli/exit.js';
import type { EventKind } from '../event/mail-event.js';
import { checkReadableFiles, parseOptionsFromFlags } from './flags.js';
import { readFileLines, readLines } from './line-reader.js';
import { LineParser, type ParseOptions } from './parser.js';

interface ParseCommandOptions {
  host?: string;
  year?: string;
  timezone?: string;
  stats?: boolean;
}

/** Output is flushed in blocks of about this many characters. */
const OUT_BLOCK = 1 << 16;

export function registerParseCommand(program: Command): void {
  program
    .command('parse')
    .description(
      'parse Postfix, Sendmail and Exim log lines (syslog RFC 3164/3339/5424 or the exim main log) into ' +
        'MailEvent JSON: exactly one object per input line, in input order; unrecognized lines give kind "unknown"',
    )
    .argument('[file...]', 'log files to read in order (default: standard input)')
    .option('--host <name>', 'host for lines that carry none (the exim main log)')
    .option(
      '--year <n>',
      'year of the first yearless (RFC 3164) line; default: inferred from the current date',
    )
    .option(
      '--timezone <zone>',
      'IANA time zone of local timestamps (RFC 3164, exim); default: the process TZ',
    )
    .option('--stats', 'print the number of lines and events by kind to stderr at the end (JSON)')
    .action(
      action(async (files: string[], opts: ParseCommandOptions) => {
        const parseOpts = parseOptionsFromFlags(opts);
        checkReadableFiles(files);
        await runParse(files, parseOpts, opts.stats === true);
      }),
    );
}

async function runParse(files: string[], parseOpts: ParseOptions, stats: boolean): Promise<void> {
  const out = process.stdout;
  out.on('error', (err: NodeJS.ErrnoException) => {
    // the reader went away (`| head`): stop quietly, like other Unix filters
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
  const inputs: Array<string | (() => Readable)> = files.length === 0 ? [() => process.stdin] : files;
  const result = await parseStreams(inputs, out, parseOpts);
  if (stats) process.stderr.write(`${JSON.stringify(result)}\n`);
}

export interface ParseResult {
  lines: number;
  kinds: Partial<Record<EventKind, number>>;
}

/**
 * Parses each input (a file path, or a function opening a stream) in order, with a fresh parser per
 * input (year inference is per stream), and writes one JSON line per input line to out, in blocks,
 * waiting for drain when out is slow.
 */
export async function parseStreams(
  inputs: Array<string | (() => Readable)>,
  out: Writable,
  parseOpts: ParseOptions,
): Promise<ParseResult> {
  const kinds: Partial<Record<EventKind, number>> = {};
  let lines = 0;
  let buf = '';
  const flush = async (): Promise<void> => {
    if (buf.length === 0) return;
    const ok = out.write(buf);
    buf = '';
    if (!ok) await once(out, 'drain');
  };
  for (const open of inputs) {
    const parser = new LineParser(parseOpts);
    const batches = typeof open === 'string' ? readFileLines(open) : readLines(open());
    for await (const batch of batches) {
      for (const line of batch) {
        const ev = parser.parse(line);
        buf += `${JSON.stringify(ev)}\n`;
        lines++;
        kinds[ev.kind] = (kinds[ev.kind] ?? 0) + 1;
        // flush inside the batch: a long-lived output rope would be promoted to the old generation
        if (buf.length >= OUT_BLOCK) await flush();
      }
    }
  }
  await flush();
  return { lines, kinds };
}

/** Every file must be a readable regular file (or FIFO) before the first line is written. */
