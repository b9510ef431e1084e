import { createReadStream } from 'node:fs';
import { basename } from 'node:path';
import type { Readable } from 'node:stream';
import type { Decision, Detection } from '../decision/decision.js';
import { ClientJoin } from '../enrich/client-join.js';
import type { MailEvent } from '../event/mail-event.js';
import type { Logger } from '../log/logger.js';
import { readLines } from '../parse/line-reader.js';
import { LineParser, type ParseOptions } from '../parse/parser.js';
import type { DetectConfig } from './config.js';
import { DetectEngine } from './engine.js';

// `mizugiwa replay`: the detectors over log files, offline, in event time. Files are merged by
// time (each file is read in order, the earliest head goes first), so the logs of several MTAs
// replay as the fleet saw them. Every time in the output is log time.

export interface ReplayStats {
  lines: number;
  events: number;
  /** Lines without a usable timestamp (not counted by any detector). */
  no_time: number;
  late: number;
  dropped: number;
  detections: number;
  decisions: number;
}

export type ReplayRecord = ({ type: 'detection' } & Detection) | ({ type: 'decision' } & Decision);

/** Log time a Sendmail reject waits for its client (ms), and how many lines may wait at most. */
const JOIN_HOLD_MS = 5_000;
const JOIN_MAX_HELD = 10_000;

interface Head {
  ev: MailEvent;
  ms: number;
}

/**
 * Parsed events of one file, with ids FILE:LINE (so `sed -n LINEp FILE` shows the evidence).
 * Sendmail rejects wait for the line of their queue id that names the client (ClientJoin), on the
 * file's own log-time clock.
 */
async function* fileEvents(input: Readable, name: string, parser: LineParser): AsyncGenerator<Head> {
  let n = 0;
  let clock = 0;
  const join = new ClientJoin<number>({ holdMs: JOIN_HOLD_MS, maxHeld: JOIN_MAX_HELD, now: () => clock });
  const ready: Head[] = [];
  const release = (ev: MailEvent, ms: number) => ready.push({ ev, ms });
  for await (const lines of readLines(input)) {
    for (const line of lines) {
      n++;
      const ev = parser.parse(line);
      ev.id = `${name}:${n}`;
      const ms = ev.ts === undefined ? Number.NaN : Date.parse(ev.ts);
      if (ms > clock) clock = ms;
      join.push(ev, ms, release);
      join.expire(release);
      if (ready.length > 0) {
        yield* ready;
        ready.length = 0;
      }
    }
  }
  join.drain(release);
  yield* ready;
}

/** Merges per-file streams by event time; events without a time go out as soon as they are read. */
async function* merge(sources: AsyncGenerator<Head>[]): AsyncGenerator<Head> {
  const heads: (Head | undefined)[] = await Promise.all(
    sources.map(async (s) => (await s.next()).value as Head | undefined),
  );
  for (;;) {
    let best = -1;
    for (let i = 0; i < heads.length; i++) {
      const h = heads[i];
      if (h === undefined) continue;
      if (Number.isNaN(h.ms)) {
        best = i;
        break;
      }
      if (best < 0 || h.ms < heads[best]!.ms) best = i;
    }
    if (best < 0) return;
    yield heads[best]!;
    heads[best] = (await sources[best]!.next()).value as Head | undefined;
  }
}

export interface ReplayInput {
  /** Name used in event ids (the file's base name). */
  name: string;
  stream: Readable;
}

/** Runs the detectors over the inputs, calling `out` for every detection and decision in log-time order. */
export async function replay(
  inputs: ReplayInput[],
  cfg: DetectConfig,
  parseOpts: ParseOptions,
  out: (r: ReplayRecord) => void | Promise<void>,
  log?: Logger,
): Promise<ReplayStats> {
  const pending: ReplayRecord[] = [];
  const stats: ReplayStats = {
    lines: 0,
    events: 0,
    no_time: 0,
    late: 0,
    dropped: 0,
    detections: 0,
    decisions: 0,
  };
  const engine = new DetectEngine(
    cfg,
    {
      detection: (d) => {
        stats.detections++;
        pending.push({ type: 'detection', ...d });
      },
      decision: (d) => {
        stats.decisions++;
        pending.push({ type: 'decision', ...d });
      },
    },
    log === undefined ? {} : { log },
  );
  // One parser per file: each keeps its own year roll-over for RFC 3164 timestamps.
  const sources = inputs.map((i) => fileEvents(i.stream, i.name, new LineParser(parseOpts)));
  for await (const { ev } of merge(sources)) {
    stats.lines++;
    if (engine.onEvent(ev)) stats.events++;
    if (pending.length > 0) {
      for (const r of pending) await out(r);
      pending.length = 0;
    }
  }
  engine.flush();
  for (const r of pending) await out(r);
  pending.length = 0;
  stats.no_time = engine.noTime;
  stats.late = engine.late;
  stats.dropped = engine.dropped;
  engine.flushMetrics();
  return stats;
}

export function fileInputs(files: string[]): ReplayInput[] {
  return files.map((f) => ({ name: basename(f), stream: createReadStream(f) }));
}
