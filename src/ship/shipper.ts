import { type FSWatcher, watch } from 'node:fs';
import { stat } from 'node:fs/promises';
import type { BusRecord, Producer } from '../bus/bus.js';
import { ClientJoin } from '../enrich/client-join.js';
import type { MailEvent } from '../event/mail-event.js';
import { type Logger, logger } from '../log/logger.js';
import { TRUNCATION_MARKER } from '../parse/parser.js';
import { type CheckpointEntry, CheckpointError, readCheckpoint, writeCheckpoint } from './checkpoint.js';
import type { ShipConfig } from './config.js';
import { discover, rotatedSiblings, watchDirs } from './discovery.js';
import { eventId, type Fingerprint, hashBytes } from './identity.js';
import type { Line } from './lines.js';
import * as m from './metrics.js';
import { type Segment, Sender } from './sender.js';
import { FileTail, type TailOptions } from './tail.js';

// Files -> lines -> MailEvents -> batches -> the bus, and back: acknowledgements -> checkpoint.
//
// Invariants that make "no line lost" hold:
// - A file's acknowledged offset moves only over lines the bus acknowledged, in order, and a
//   failed batch is retried until it is acknowledged (sender.ts).
// - The checkpoint stores only acknowledged offsets; a restart re-reads everything after them
//   (a crash can duplicate the batch in flight, never drop a line).
// - A file is followed by its descriptor: after a rename the old file is read to its end (and
//   watched for late writes for `rotate_wait_ms`) before it is let go.
// - File identity is dev+ino plus the first line's hash, so a copy made by copytruncate, a
//   rotated file found again after a restart, and a reused inode are all told apart.

export interface EventParser {
  /** One event per line; never throws (a line it does not know is `kind: 'unknown'`). */
  parse(line: string | Buffer): MailEvent;
}

export interface ShipperOptions {
  config: ShipConfig;
  /** This host's name: part of every event id, and the key of events that carry no better one. */
  host: string;
  checkpointPath: string;
  topic: string;
  producer: Producer;
  parser: EventParser;
  log?: Logger;
}

/** The shipping state of one file content (what a checkpoint entry is made of). */
interface Source {
  fileId: string;
  path: string;
  /** The configured path it was first followed at: its rotations are looked for beside it. */
  origin: string;
  dev: number;
  ino: number;
  fp: Fingerprint;
  /** Offset after the last line the bus acknowledged: the checkpoint. */
  acked: number;
  /** Offset after the last line put into a batch. */
  readTo: number;
  tail: FileTail | null;
  /** Events of this file in batches not yet acknowledged (see sender.ts). */
  inFlight: number;
  segments: Segment[];
  /** When it lost its tail (rotated away and drained, truncated, or not found after a restart). */
  detachedAt: number | null;
  updatedAt: string;
  /** Sendmail rejects waiting for their client, and the lines behind them (never in a batch yet,
   * so the checkpoint cannot pass them). */
  join: ClientJoin<HeldLine>;
  /** In the checkpoint on disk. No line is sent before: a file first seen, shipped, then copied
   * by copytruncate while the shipper is down must be known after the restart, or its copy would
   * be read under another file id. */
  persisted: boolean;
}

/** What a line waiting in the client join needs to be batched later. */
interface HeldLine {
  src: Source;
  end: number;
  /** Length of the whole line in the file (it may have been cut). */
  lineBytes: number;
  dataBytes: number;
  truncated: boolean;
  path: string;
}

export interface ShipperStats {
  linesRead: number;
  eventsAcked: number;
  unknownEvents: number;
  produceErrors: number;
  inFlightEvents: number;
  inFlightBytes: number;
  /** Peak of inFlightBytes since start. */
  peakInFlightBytes: number;
  openFiles: number;
  checkpointWrites: number;
}

export class Shipper {
  private readonly cfg: ShipConfig;
  private readonly log: Logger;
  private readonly tailOpts: TailOptions;
  private readonly tails = new Map<string, FileTail>(); // by dev:ino
  private readonly sources = new Map<string, Source>(); // by file id
  private readonly sourceOf = new Map<FileTail, Source>();
  /** The configured path a tail was found by (itself, or the file it was found beside). */
  private readonly originOf = new Map<FileTail, string>();
  /** By dev:ino: files not to open again (compressed; or a copy of a file being read, until it is truncated). */
  private readonly skipped = new Map<string, { reason: 'compressed' | 'copy'; size: number }>();
  private matched = new Set<string>();
  /** Path -> error code of the last failed open (logged once per change). */
  private readonly openFailures = new Map<string, string>();
  private firstStart = false;
  private readonly sender: Sender;
  private running = false;
  private stopping = false;
  private mainLoop: Promise<void> | null = null;
  private wakeMain: (() => void) | null = null;
  private mainWakePending = false;
  private pollRequested = false;
  private nextPoll = 0;
  private lastPollStart = Date.now();
  /** SIGHUP: close rotated files that were read to their end without waiting rotate_wait_ms. */
  private releaseDrained = false;
  private nextRescan = 0;
  private readonly watchers = new Map<string, FSWatcher>();
  private checkpointTimer: NodeJS.Timeout | null = null;
  private joinTimer: NodeJS.Timeout | null = null;
  private checkpointDirty = false;
  private checkpointWriting: Promise<void> | null = null;
  private checkpointQueue: Promise<void> = Promise.resolve();
  private lastCheckpointAt: number | null = null;
  private unregisterGauges: (() => void) | null = null;
  private readonly s = { linesRead: 0, unknownEvents: 0, checkpointWrites: 0 };

  constructor(private readonly opts: ShipperOptions) {
    this.cfg = opts.config;
    this.log = opts.log ?? logger('ship');
    this.tailOpts = {
      maxLineBytes: this.cfg.max_line_bytes,
      fingerprintBytes: this.cfg.fingerprint_bytes,
      chunkBytes: this.cfg.read_chunk_bytes,
    };
    this.sender = new Sender({
      producer: opts.producer,
      topic: opts.topic,
      config: this.cfg,
      log: this.log,
      onAck: () => {
        this.checkpointDirty = true;
        this.wake();
      },
    });
  }

  /** Reads the checkpoint, finds the files and starts shipping in the background. */
  async start(): Promise<void> {
    if (this.running) throw new Error('shipper already started');
    this.running = true;
    await this.restore();
    if (this.stopping) return;
    try {
      await this.persist(true);
    } catch (err) {
      for (const tail of this.tails.values()) await tail.close();
      this.tails.clear();
      this.running = false;
      throw err;
    }
    this.unregisterGauges = m.registerGaugeSource({
      bytesBehind: () => this.bytesBehind(),
      inFlightEvents: () => this.sender.inFlightEvents,
      inFlightBytes: () => this.sender.inFlightBytes,
      checkpointAgeSeconds: () =>
        this.lastCheckpointAt === null ? null : (Date.now() - this.lastCheckpointAt) / 1000,
      openFiles: () => this.tails.size,
      oldestUnackedSeconds: () => this.sender.oldestUnackedSeconds(),
    });
    this.watchDirectories();
    this.checkpointTimer = setInterval(() => this.checkpointTick(), this.cfg.checkpoint_interval_ms);
    this.checkpointTimer.unref();
    this.nextPoll = Date.now() + this.cfg.poll_interval_ms;
    this.nextRescan = Date.now() + this.cfg.rescan_interval_ms;
    this.sender.start();
    this.mainLoop = this.runMain();
    this.log.info(
      { files: this.cfg.files, open: this.tails.size, checkpoint: this.opts.checkpointPath },
      'shipper started',
    );
  }

  /**
   * Stops reading, sends what was read, waits up to `graceMs` for the acknowledgements, writes the
   * checkpoint and closes the files. What was not acknowledged is read again at the next start.
   */
  async stop(graceMs = this.cfg.shutdown_grace_ms): Promise<void> {
    if (!this.running || this.stopping) return;
    this.stopping = true;
    this.wake();
    await this.mainLoop;
    this.drainJoins();
    const drained = await this.sender.drain(graceMs);
    if (!drained) {
      this.log.warn(
        { in_flight_events: this.sender.inFlightEvents },
        'stopping before the bus acknowledged everything; those lines are read again at the next start',
      );
    }
    if (this.checkpointTimer) clearInterval(this.checkpointTimer);
    for (const w of this.watchers.values()) w.close();
    this.watchers.clear();
    await this.persist();
    for (const tail of this.tails.values()) await tail.close();
    this.tails.clear();
    this.unregisterGauges?.();
    this.running = false;
    this.log.info({ lines: this.s.linesRead, acked: this.sender.eventsAcked }, 'shipper stopped');
  }

  /** SIGHUP: look at every path again now (rotation, new files) and let drained rotated files go. */
  reopen(): void {
    this.releaseDrained = true;
    this.nextRescan = 0;
    this.pollRequested = true;
    this.wake();
  }

  stats(): ShipperStats {
    return {
      ...this.s,
      eventsAcked: this.sender.eventsAcked,
      produceErrors: this.sender.produceErrors,
      inFlightEvents: this.sender.inFlightEvents,
      inFlightBytes: this.sender.inFlightBytes,
      peakInFlightBytes: this.sender.peakInFlightBytes,
      openFiles: this.tails.size,
    };
  }

  /** Resolves once everything read so far is acknowledged and every file was read to its end. */
  async idle(timeoutMs = 60_000): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    while (Date.now() < deadline) {
      const allRead = [...this.tails.values()].every((t) => t.atEof);
      const held = [...this.sources.values()].some((src) => src.join.held > 0);
      if (allRead && !held && this.sender.isIdle()) return true;
      await sleep(20);
    }
    return false;
  }

  // ---- discovery and identity ------------------------------------------------------------

  private async restore(): Promise<void> {
    const cp = await readCheckpoint(this.opts.checkpointPath);
    this.firstStart = cp === null;
    const now = Date.now();
    for (const e of cp?.files ?? []) {
      this.sources.set(e.file_id, {
        fileId: e.file_id,
        path: e.path,
        origin: e.origin_path,
        dev: e.dev,
        ino: e.ino,
        fp: { hash: e.fp, len: e.fp_len },
        acked: e.offset,
        readTo: e.offset,
        tail: null,
        inFlight: 0,
        segments: [],
        detachedAt: now,
        updatedAt: e.updated_at,
        join: this.newJoin(),
        persisted: true,
      });
    }
    await this.rescan(true);
    // Files from the checkpoint that the patterns no longer name: rotated away while we were
    // down. Look for them beside their old path and read them to the end. A few passes: a
    // logrotate shifting maillog.N -> maillog.N+1 right now can hide a file from one listing.
    for (let pass = 0; pass < 3; pass++) {
      const missing = [...this.sources.values()].filter((src) => src.tail === null);
      if (missing.length === 0) break;
      if (pass > 0) await sleep(100);
      for (const src of missing) {
        if (src.tail !== null) continue;
        for (const path of [src.path, ...(await rotatedSiblings(src.origin))]) {
          await this.consider(path, false, true, src.origin);
          if (src.tail !== null) break;
        }
      }
    }
    for (const src of [...this.sources.values()]) {
      if (src.tail === null) {
        this.log.warn(
          { file: src.path, file_id: src.fileId, offset: src.acked },
          'checkpointed file not found (deleted, or compressed before it was read to its end)',
        );
        this.sources.delete(src.fileId);
      }
    }
    if (cp) {
      const since = Date.parse(cp.written_at) - this.missedSlackMs();
      for (const origin of new Set(cp.files.map((f) => f.origin_path))) await this.catchMissed(origin, since);
    }
    this.checkpointDirty = true;
  }

  /**
   * Rotated files beside `origin`, written since `since`, that were never seen: created and
   * rotated away between two looks (or while the shipper was not running). Content we know is
   * read from its checkpoint, anything else from 0. An old rotation we finished with is not
   * taken again: it was last written at least rotate_wait_ms before we let it go, longer ago than
   * the slack subtracted from `since`.
   */
  private async catchMissed(origin: string, since: number): Promise<void> {
    for (const path of await rotatedSiblings(origin)) {
      let st: Awaited<ReturnType<typeof stat>>;
      try {
        st = await stat(path);
      } catch {
        continue;
      }
      const key = `${st.dev}:${st.ino}`;
      if (!st.isFile() || st.mtimeMs < since || this.tails.has(key) || this.skipped.has(key)) continue;
      this.log.info({ file: path, origin }, 'rotated file not seen before; reading it');
      await this.consider(path, false, false, origin);
    }
  }

  private missedSlackMs(): number {
    return Math.min(2000, this.cfg.rotate_wait_ms / 2);
  }

  private async rescan(startup: boolean): Promise<void> {
    const paths = await discover(this.cfg.files);
    this.matched = new Set(paths);
    for (const path of paths) await this.consider(path, startup);
    this.nextRescan = Date.now() + this.cfg.rescan_interval_ms;
  }

  /**
   * A path that may hold a file we do not read yet. `adoptOnly`: a rotated file found beside a
   * followed one; read it only if it is the content of a file we know (never from 0: that would
   * ship an old rotation again).
   */
  private async consider(path: string, startup: boolean, adoptOnly = false, origin = path): Promise<void> {
    let st: Awaited<ReturnType<typeof stat>>;
    try {
      st = await stat(path);
    } catch {
      return;
    }
    if (!st.isFile()) return;
    const known = this.tails.get(`${st.dev}:${st.ino}`);
    if (known) {
      if (known.path !== path) {
        this.log.info({ from: known.path, to: path }, 'file renamed');
        known.path = path;
      }
      if (this.matched.has(path)) known.orphanedAt = null;
      return;
    }
    const pre = this.skipped.get(`${st.dev}:${st.ino}`);
    if (pre && (pre.reason === 'copy' || pre.size === st.size)) return;
    if (adoptOnly && !this.hasDetachedSource()) return;
    let tail: FileTail | null;
    try {
      tail = await FileTail.open(path, 0, this.tailOpts);
    } catch (err) {
      // Unreadable (permissions, I/O error): tried again at every rescan, logged once.
      const code = (err as NodeJS.ErrnoException).code ?? String(err);
      if (this.openFailures.get(path) !== code) {
        this.openFailures.set(path, code);
        this.log.warn({ file: path, err: code }, 'cannot open file; trying again at every rescan');
      }
      return;
    }
    if (!tail) return;
    this.openFailures.delete(path);
    // The name may have been renamed over since the stat (logrotate shifting maillog.N): from
    // here on, identity comes from the open descriptor only.
    const key = tail.key;
    const skip = this.skipped.get(key);
    if (this.tails.has(key) || (skip && (skip.reason === 'copy' || skip.size === tail.size))) {
      await tail.close();
      return;
    }
    if (await tail.isCompressed()) {
      this.log.info({ file: path }, 'not reading a compressed file');
      this.skipped.set(key, { reason: 'compressed', size: tail.size });
      await tail.close();
      return;
    }
    if (!this.matched.has(path)) tail.orphanedAt = Date.now();
    // First start: skip the history unless told otherwise. Later starts read every file the
    // checkpoint does not know from its beginning: it appeared while we were not running.
    if (startup && this.firstStart && this.cfg.start_at === 'end') await tail.seekEnd();
    const head = await tail.head();
    const fp = this.firstLineFp(head);
    if (adoptOnly && (fp === null || !this.knownContent(head))) {
      await tail.close();
      return;
    }
    if (fp !== null) {
      tail.fp = fp;
      if (!this.identify(tail, head, origin)) {
        this.skipped.set(key, { reason: 'copy', size: tail.size });
        await tail.close();
        return;
      }
    }
    this.tails.set(key, tail);
    this.originOf.set(tail, origin);
    this.log.info(
      { file: path, offset: tail.readPosition, file_id: tail.fileId ?? undefined },
      'following file',
    );
  }

  /** Is any known content without its file right now? (Else a rotated file cannot be one of ours.) */
  private hasDetachedSource(): boolean {
    for (const src of this.sources.values()) if (src.tail === null) return true;
    return false;
  }

  /** `head` starts with the first line of a source that has no file right now. */
  private knownContent(head: Buffer): boolean {
    for (const src of this.sources.values()) {
      if (src.tail !== null || head.length < src.fp.len) continue;
      if (hashBytes(head.subarray(0, src.fp.len)) === src.fp.hash) return true;
    }
    return false;
  }

  private firstLineFp(head: Buffer): Fingerprint | null {
    const nl = head.subarray(0, this.cfg.fingerprint_bytes).indexOf(10);
    const len = nl >= 0 ? nl + 1 : head.length >= this.cfg.fingerprint_bytes ? this.cfg.fingerprint_bytes : 0;
    return len === 0 ? null : { hash: hashBytes(head.subarray(0, len)), len };
  }

  /**
   * The tail's first line is known: is it a file we know (resume where it was), a copy of a file
   * being read (skip it), or new (a new source)? Returns false when the tail must not be read.
   */
  private identify(tail: FileTail, head: Buffer, origin: string): boolean {
    let match: Source | null = null;
    for (const src of this.sources.values()) {
      if (src.tail === tail) continue;
      if (head.length < src.fp.len || hashBytes(head.subarray(0, src.fp.len)) !== src.fp.hash) continue;
      // Prefer the same inode (the file itself), then a source without a file (its copy).
      if (!match || (src.ino === tail.ino && src.dev === tail.dev) || (match.tail && !src.tail)) match = src;
    }
    if (match?.tail) {
      this.log.info(
        { file: tail.path, copy_of: match.tail.path },
        'not reading a copy of a file being read (read if that file is truncated)',
      );
      return false;
    }
    if (match) {
      if (match.ino !== tail.ino || match.dev !== tail.dev) {
        this.log.info(
          { file: tail.path, was: match.path, offset: match.readTo },
          'found the content of a truncated or moved file; reading it from its checkpoint',
        );
      }
      match.tail = tail;
      match.path = tail.path;
      match.dev = tail.dev;
      match.ino = tail.ino;
      match.detachedAt = null;
      tail.fp = match.fp;
      tail.fileId = match.fileId;
      tail.seek(match.readTo);
      this.sourceOf.set(tail, match);
      return true;
    }
    const fileId = tail.ownFileId();
    const src: Source = {
      fileId,
      path: tail.path,
      origin,
      dev: tail.dev,
      ino: tail.ino,
      fp: tail.fp!,
      acked: tail.committed,
      readTo: tail.committed,
      tail,
      inFlight: 0,
      segments: [],
      detachedAt: null,
      updatedAt: new Date().toISOString(),
      join: this.newJoin(),
      persisted: false,
    };
    tail.fileId = fileId;
    this.sources.set(fileId, src);
    this.sourceOf.set(tail, src);
    this.checkpointDirty = true;
    return true;
  }

  private async closeTail(tail: FileTail): Promise<void> {
    this.tails.delete(tail.key);
    this.originOf.delete(tail);
    const src = this.sourceOf.get(tail);
    this.sourceOf.delete(tail);
    if (src && src.tail === tail) {
      src.tail = null;
      src.detachedAt = Date.now();
    }
    await tail.close();
  }

  // ---- the read loop --------------------------------------------------------------------

  private async runMain(): Promise<void> {
    while (!this.stopping) {
      try {
        const now = Date.now();
        if (this.pollRequested || now >= this.nextPoll) {
          this.pollRequested = false;
          await this.poll();
          this.nextPoll = Date.now() + this.cfg.poll_interval_ms;
        }
        const progressed = await this.readRound();
        if (!progressed || this.sender.isFull()) {
          await this.sleepMain(Math.max(1, this.nextPoll - Date.now()));
        }
      } catch (err) {
        this.log.error({ err }, 'read loop error; retrying');
        await this.sleepMain(this.cfg.poll_interval_ms);
      }
    }
  }

  /** Checks every path for rotation and new files; lets go of rotated files that were drained. */
  private async poll(): Promise<void> {
    const pollStart = Date.now();
    const moved: FileTail[] = [];
    for (const tail of this.tails.values()) {
      if (tail.orphanedAt !== null) continue;
      try {
        const st = await stat(tail.path);
        if (st.ino !== tail.ino || st.dev !== tail.dev) moved.push(tail);
        else if (st.size > tail.size) {
          tail.size = st.size; // for bytes_behind while reading is paused
          tail.lastGrowthAt = Date.now();
        }
      } catch {
        moved.push(tail);
      }
    }
    if (moved.length > 0 || Date.now() >= this.nextRescan) {
      await this.rescan(false);
      this.watchDirectories();
    }
    for (const tail of moved) {
      let stillThere = false;
      try {
        const st = await stat(tail.path);
        stillThere = st.ino === tail.ino && st.dev === tail.dev && this.matched.has(tail.path);
      } catch {}
      if (!stillThere) {
        tail.orphanedAt = Date.now();
        m.rotations.inc({ kind: 'rename' });
        this.log.info({ file: tail.path }, 'file rotated away (renamed or deleted); reading it to its end');
        const origin = this.sourceOf.get(tail)?.origin ?? tail.path;
        await this.catchMissed(origin, this.lastPollStart - this.missedSlackMs());
      }
    }
    this.lastPollStart = pollStart;
    const now = Date.now();
    const release = this.releaseDrained;
    this.releaseDrained = false;
    for (const tail of [...this.tails.values()]) {
      if (tail.orphanedAt === null) continue;
      // Drained = a read after it was rotated away found its end.
      const drained = tail.atEof && tail.lastCheckedAt >= tail.orphanedAt;
      if (!drained) {
        if (release) {
          this.releaseDrained = true; // SIGHUP: once it is drained, at the next poll
          this.pollRequested = true;
        }
        continue;
      }
      const idleSince = Math.max(tail.orphanedAt, tail.lastGrowthAt);
      if (release || now - idleSince >= this.cfg.rotate_wait_ms) {
        this.log.info({ file: tail.path, offset: tail.committed }, 'done with rotated file');
        await this.closeTail(tail);
      }
    }
    for (const src of [...this.sources.values()]) {
      if (
        src.tail === null &&
        src.inFlight === 0 &&
        src.join.held === 0 &&
        src.detachedAt !== null &&
        now - src.detachedAt >= this.cfg.rotate_wait_ms
      ) {
        this.sources.delete(src.fileId);
        this.checkpointDirty = true;
      }
    }
  }

  /** One pass over the files, rotated ones first. Returns whether anything happened. */
  private async readRound(): Promise<boolean> {
    let progressed = false;
    const order = [...this.tails.values()].sort(
      (a, b) => Number(a.orphanedAt === null) - Number(b.orphanedAt === null),
    );
    for (const tail of order) {
      if (!this.tails.has(tail.key)) continue;
      // A rotated file is read to its end before the new one gets a turn.
      let budget = tail.orphanedAt === null ? this.cfg.read_chunk_bytes * 16 : Number.POSITIVE_INFINITY;
      try {
        while (!this.stopping && budget > 0) {
          if (this.sender.isFull()) return progressed;
          const before = tail.readPosition;
          const r = await tail.read();
          if (r.status === 'eof') break;
          progressed = true;
          if (r.status === 'truncated') {
            await this.truncated(tail);
            break;
          }
          if (r.status === 'identified') {
            if (!this.identify(tail, await tail.head(), this.originOf.get(tail) ?? tail.path)) {
              this.skipped.set(tail.key, { reason: 'copy', size: tail.size });
              await this.closeTail(tail);
              break;
            }
            continue;
          }
          if (this.sourceOf.get(tail)?.persisted === false) await this.persist();
          this.emit(tail, r.lines);
          budget -= tail.readPosition - before;
        }
      } catch (err) {
        this.log.error({ err, file: tail.path }, 'read failed; the file is opened again');
        await this.closeTail(tail);
        this.nextRescan = 0;
      }
    }
    return progressed;
  }

  private async truncated(tail: FileTail): Promise<void> {
    m.rotations.inc({ kind: 'truncate' });
    const src = this.sourceOf.get(tail);
    this.log.info(
      { file: tail.path, offset: tail.committed, size: tail.size },
      'file truncated (copytruncate); starting over at 0',
    );
    if (src) {
      this.sourceOf.delete(tail);
      src.tail = null;
      src.detachedAt = Date.now();
    }
    tail.restart();
    // The rotated copy holds what was not read yet: look for it beside the file.
    if (src) {
      for (const [k, v] of this.skipped) if (v.reason === 'copy') this.skipped.delete(k);
      for (const path of await rotatedSiblings(src.origin)) {
        await this.consider(path, false, !this.matched.has(path), src.origin);
        if (src.tail !== null) break;
      }
      await this.catchMissed(src.origin, tail.lastCheckedAt - this.missedSlackMs());
      if (src.tail === null && src.readTo < tail.size) {
        this.log.warn(
          { file: src.path, offset: src.readTo, size: tail.size },
          'truncated file had unread lines and no uncompressed copy was found (use delaycompress)',
        );
      }
    }
  }

  // ---- events and batches ---------------------------------------------------------------

  private emit(tail: FileTail, lines: Line[]): void {
    const src = this.sourceOf.get(tail);
    if (!src) throw new Error(`no source for ${tail.path}`);
    const host = this.opts.host;
    let bytes = 0;
    for (const line of lines) {
      let ev: MailEvent;
      try {
        ev = this.opts.parser.parse(line.data);
      } catch (err) {
        this.log.warn({ err, file: tail.path, offset: line.offset }, 'parser threw; shipping as unknown');
        ev = { kind: 'unknown', raw: line.data.toString('utf8') };
      }
      if (line.truncated && !ev.truncated) ev = cutEvent(ev);
      ev.id = eventId(host, src.fileId, line.offset);
      if (ev.kind === 'unknown') {
        this.s.unknownEvents++;
        m.unknownEvents.inc();
      }
      bytes += line.end - line.offset;
      const held: HeldLine = {
        src,
        end: line.end,
        lineBytes: line.end - line.offset,
        dataBytes: line.data.length,
        truncated: line.truncated,
        path: tail.path,
      };
      src.join.push(ev, held, this.release);
    }
    if (src.join.held > 0) this.scheduleJoinExpiry();
    src.readTo = tail.committed;
    this.s.linesRead += lines.length;
    // Labelled by the configured path the file was found by, not its current (rotated) name:
    // the label set stays as small as the configuration.
    m.linesRead.inc({ file: src.origin }, lines.length);
    m.bytesRead.inc({ file: src.origin }, bytes);
  }

  /** A line leaves the client join: keyed, encoded and put into a batch. */
  private readonly release = (ev: MailEvent, h: HeldLine): void => {
    const key = eventKey(ev, this.opts.host);
    // Bytes now: the text dies young, and what waits for the acknowledgement lies off the heap.
    const value = Buffer.from(JSON.stringify(ev), 'utf8');
    const record: BusRecord = { key, value };
    if (h.truncated) {
      record.headers = { truncated_bytes: String(h.lineBytes) };
      m.linesTruncated.inc();
      this.log.warn(
        { file: h.path, offset: h.end - h.lineBytes, bytes: h.lineBytes },
        'line longer than max_line_bytes; shipped cut',
      );
    }
    this.sender.add(h.src, h.end, record, value.length + h.dataBytes);
  };

  private newJoin(): ClientJoin<HeldLine> {
    return new ClientJoin<HeldLine>({
      holdMs: this.cfg.client_join_hold_ms,
      maxHeld: this.cfg.client_join_max_held,
    });
  }

  /** Lets go what waited hold_ms for its client, and looks again when the next one is due. */
  private scheduleJoinExpiry(): void {
    if (this.joinTimer) return;
    let due: number | null = null;
    for (const src of this.sources.values()) {
      const d = src.join.nextDueIn();
      if (d !== null && (due === null || d < due)) due = d;
    }
    if (due === null) return;
    this.joinTimer = setTimeout(() => {
      this.joinTimer = null;
      for (const src of this.sources.values()) src.join.expire(this.release);
      this.scheduleJoinExpiry();
    }, due + 1);
  }

  private drainJoins(): void {
    if (this.joinTimer) clearTimeout(this.joinTimer);
    this.joinTimer = null;
    for (const src of this.sources.values()) src.join.drain(this.release);
  }

  // ---- waking up -------------------------------------------------------------------------

  private wake(): void {
    const w = this.wakeMain;
    this.wakeMain = null;
    if (w) w();
    else this.mainWakePending = true;
  }

  private async sleepMain(ms: number): Promise<void> {
    if (this.mainWakePending || this.stopping) {
      this.mainWakePending = false;
      return;
    }
    await new Promise<void>((res) => {
      const t = setTimeout(() => {
        this.wakeMain = null;
        res();
      }, ms);
      this.wakeMain = () => {
        clearTimeout(t);
        res();
      };
    });
    this.mainWakePending = false;
  }

  private watchDirectories(): void {
    const dirs = new Set(watchDirs(this.cfg.files));
    for (const dir of dirs) {
      if (this.watchers.has(dir)) continue;
      try {
        const w = watch(dir, { persistent: false }, () => {
          this.wake();
        });
        w.on('error', () => {
          w.close();
          this.watchers.delete(dir);
        });
        this.watchers.set(dir, w);
      } catch {
        // Not there yet (or no inotify): polling covers it; tried again at the next rescan.
      }
    }
  }

  // ---- checkpoint ------------------------------------------------------------------------

  private checkpointTick(): void {
    if (!this.checkpointDirty || this.checkpointWriting) return;
    this.checkpointWriting = this.persist().finally(() => {
      this.checkpointWriting = null;
    });
  }

  /** Writes the checkpoint, one write at a time (they share the temp file). */
  private persist(strict = false): Promise<void> {
    const write = this.checkpointQueue.then(() => this.writeCheckpointNow(strict));
    this.checkpointQueue = write.catch(() => {});
    return write;
  }

  /** `strict`: a failure throws (at start: a shipper that cannot keep its place must not run). */
  private async writeCheckpointNow(strict = false): Promise<void> {
    this.checkpointDirty = false;
    const files: CheckpointEntry[] = [];
    const included = [...this.sources.values()];
    for (const src of included) {
      files.push({
        file_id: src.fileId,
        path: src.tail?.path ?? src.path,
        origin_path: src.origin,
        dev: src.dev,
        ino: src.ino,
        fp: src.fp.hash,
        fp_len: src.fp.len,
        offset: src.acked,
        updated_at: src.updatedAt,
      });
    }
    try {
      await writeCheckpoint(this.opts.checkpointPath, {
        version: 1,
        host: this.opts.host,
        written_at: new Date().toISOString(),
        files,
      });
      this.lastCheckpointAt = Date.now();
      for (const src of included) src.persisted = true;
      this.s.checkpointWrites++;
      m.checkpointWrites.inc({ result: 'ok' });
    } catch (err) {
      this.checkpointDirty = true;
      m.checkpointWrites.inc({ result: 'error' });
      if (strict) {
        throw new CheckpointError(
          `cannot write checkpoint ${this.opts.checkpointPath}: ${(err as NodeJS.ErrnoException).code ?? err}; ` +
            'the shipper needs a writable data_dir (or ship.checkpoint_path)',
        );
      }
      this.log.error({ err, file: this.opts.checkpointPath }, 'checkpoint write failed; retrying');
    }
  }

  private bytesBehind(): Map<string, number> {
    const out = new Map<string, number>();
    for (const tail of this.tails.values()) {
      const src = this.sourceOf.get(tail);
      out.set(tail.path, Math.max(0, tail.size - (src?.acked ?? tail.committed)));
    }
    return out;
  }
}

/**
 * A line the tailer cut (longer than max_line_bytes) is what the parser makes of a line over its
 * raw cap: `unknown` (its fields may be cut too), the envelope kept, raw with the marker.
 */
function cutEvent(ev: MailEvent): MailEvent {
  const cut: MailEvent = { kind: 'unknown', raw: `${ev.raw}${TRUNCATION_MARKER}`, truncated: true };
  if (ev.ts !== undefined) cut.ts = ev.ts;
  if (ev.host !== undefined) cut.host = ev.host;
  if (ev.program !== undefined) cut.program = ev.program;
  if (ev.pid !== undefined) cut.pid = ev.pid;
  if (ev.mta !== undefined) cut.mta = ev.mta;
  if (ev.queue_id !== undefined) cut.queue_id = ev.queue_id;
  return cut;
}

function sleep(ms: number): Promise<void> {
  return new Promise((res) => setTimeout(res, ms));
}

/**
 * The bus key of an event: its client (one client's events stay in order on one partition),
 * else its message on its host, else its host.
 */
export function eventKey(ev: MailEvent, host: string): string {
  return (
    ev.client_ip ?? (ev.queue_id !== undefined ? `${ev.host ?? host}:${ev.queue_id}` : (ev.host ?? host))
  );
}
