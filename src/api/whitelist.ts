import { randomUUID } from 'node:crypto';
import { mkdir, readFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import writeFileAtomic from 'write-file-atomic';
import type { Bus, Consumer, Producer } from '../bus/bus.js';
import type { Logger } from '../log/logger.js';
import { overlaps, parseTarget, type Target } from '../respond/target.js';

// The whitelist as the API sees it: the entries of the configuration (respond.safety.whitelist,
// detect.policy.whitelist: read-only here, changed by editing the file) plus the runtime entries
// operators add over the API. Runtime entries live in a JSON file written atomically (the
// API's own record, it survives restarts with either bus) and every change is published on a
// compacted topic keyed by target (a tombstone when removed), so detectors and agents can follow
// it. Every API instance on a shared bus follows that topic (src/api/start.ts), so an entry added
// on one is in force on all; the topic's order decides between them, the file is each instance's
// copy for its restarts.

export interface WhitelistEntry {
  /** Canonical address or CIDR prefix. */
  target: string;
  reason: string;
  /** `operator:<name>` for runtime entries, `config:<section>` for configured ones. */
  added_by: string;
  added_at: string;
  source: 'api' | 'config';
}

interface FileShape {
  version: 1;
  entries: WhitelistEntry[];
}

export class WhitelistError extends Error {
  override name = 'WhitelistError';
  constructor(
    message: string,
    readonly status: 400 | 404 | 409,
  ) {
    super(message);
  }
}

export class Whitelist {
  private readonly runtime = new Map<string, WhitelistEntry>();
  private readonly configured: Array<WhitelistEntry & { t: Target }>;
  private parsed: Target[] = [];
  private writing: Promise<void> = Promise.resolve();
  /** Values this instance published and has not yet seen come back on the topic. */
  private readonly ownRecords = new Set<string>();

  private constructor(
    private readonly path: string,
    configured: Array<{ target: string; section: string }>,
    private readonly topic: string,
    private readonly producer: Producer | undefined,
  ) {
    this.configured = configured.map((c) => {
      const r = parseTarget(c.target);
      if (!r.ok) throw new Error(`${c.section} whitelist: ${r.error}`);
      return {
        target: r.target.text,
        reason: 'configuration file',
        added_by: `config:${c.section}`,
        added_at: '',
        source: 'config' as const,
        t: r.target,
      };
    });
    this.reindex();
  }

  /** Loads the runtime entries from `path` (a missing file is an empty list; a corrupt one an error). */
  static async open(opts: {
    path: string;
    configured: Array<{ target: string; section: string }>;
    topic: string;
    producer?: Producer;
  }): Promise<Whitelist> {
    const w = new Whitelist(opts.path, opts.configured, opts.topic, opts.producer);
    let text: string | undefined;
    try {
      text = await readFile(opts.path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
    if (text !== undefined) {
      let doc: FileShape;
      try {
        doc = JSON.parse(text) as FileShape;
      } catch (err) {
        throw new Error(
          `whitelist file ${opts.path} is not JSON (${(err as Error).message}); fix or remove it`,
        );
      }
      if (doc?.version !== 1 || !Array.isArray(doc.entries)) {
        throw new Error(`whitelist file ${opts.path} is not a version 1 whitelist; fix or remove it`);
      }
      for (const e of doc.entries) {
        const r = parseTarget(e?.target);
        if (!r.ok) throw new Error(`whitelist file ${opts.path}: ${r.error}`);
        w.runtime.set(r.target.text, { ...e, target: r.target.text, source: 'api' });
      }
      w.reindex();
    }
    return w;
  }

  list(): WhitelistEntry[] {
    const conf = this.configured.map(({ t: _t, ...e }) => e);
    return [...conf, ...[...this.runtime.values()].sort((a, b) => a.target.localeCompare(b.target))];
  }

  /** Every whitelisted range, for the safety rules. */
  targets(): readonly Target[] {
    return this.parsed;
  }

  /** The first entry overlapping `t`, if any. */
  covering(t: Target): WhitelistEntry | undefined {
    const c = this.configured.find((e) => overlaps(e.t, t));
    if (c) {
      const { t: _t, ...e } = c;
      return e;
    }
    for (const e of this.runtime.values()) {
      const r = parseTarget(e.target);
      if (r.ok && overlaps(r.target, t)) return e;
    }
    return undefined;
  }

  /** Adds (or replaces) a runtime entry; persisted and published before it resolves. */
  async add(target: string, reason: string, operator: string, now: Date): Promise<WhitelistEntry> {
    const r = parseTarget(target);
    if (!r.ok) throw new WhitelistError(r.error, 400);
    if (r.target.prefix === 0)
      throw new WhitelistError(`${r.target.text} would whitelist every address`, 400);
    const entry: WhitelistEntry = {
      target: r.target.text,
      reason,
      added_by: `operator:${operator}`,
      added_at: now.toISOString(),
      source: 'api',
    };
    await this.change(() => this.runtime.set(entry.target, entry), {
      key: entry.target,
      value: JSON.stringify(entry),
    });
    return entry;
  }

  /**
   * A record of the whitelist topic (another API instance's change, or this one's own coming
   * back): the topic's order decides. Kept in the file too. Returns what it did, for the log.
   */
  async applyRecord(
    key: string | null,
    value: Buffer | null,
  ): Promise<'set' | 'removed' | 'same' | 'own' | 'ignored'> {
    const k = parseTarget(key);
    if (!k.ok) return 'ignored';
    // Our own change coming back: already applied, and a later local change may have followed it.
    const text = value === null ? `-${k.target.text}` : value.toString('utf8');
    if (this.ownRecords.delete(text)) return 'own';
    if (value === null) {
      if (!this.runtime.has(k.target.text)) return 'same';
      await this.change(() => this.runtime.delete(k.target.text), null);
      return 'removed';
    }
    let e: WhitelistEntry;
    try {
      e = JSON.parse(text) as WhitelistEntry;
    } catch {
      return 'ignored';
    }
    const t = parseTarget(e?.target);
    if (!t.ok || t.target.text !== k.target.text || typeof e.reason !== 'string') return 'ignored';
    const entry: WhitelistEntry = {
      target: t.target.text,
      reason: e.reason.slice(0, 500),
      added_by: String(e.added_by ?? '').slice(0, 100),
      added_at: String(e.added_at ?? '').slice(0, 40),
      source: 'api',
    };
    const old = this.runtime.get(entry.target);
    if (old && JSON.stringify(old) === JSON.stringify(entry)) return 'same';
    await this.change(() => this.runtime.set(entry.target, entry), null);
    return 'set';
  }

  /** Removes a runtime entry; configured entries cannot be removed here (409). */
  async remove(target: string): Promise<WhitelistEntry> {
    const r = parseTarget(target);
    if (!r.ok) throw new WhitelistError(r.error, 400);
    const e = this.runtime.get(r.target.text);
    if (!e) {
      if (this.configured.some((c) => c.target === r.target.text)) {
        throw new WhitelistError(
          `${r.target.text} is whitelisted in the configuration file; remove it there`,
          409,
        );
      }
      throw new WhitelistError(`${r.target.text} is not on the runtime whitelist`, 404);
    }
    await this.change(() => this.runtime.delete(r.target.text), { key: r.target.text, value: null });
    return e;
  }

  /** Applies a change in memory, writes the file, then publishes (unless `record` is null); a failed write undoes the change. */
  private change(apply: () => void, record: { key: string; value: string | null } | null): Promise<void> {
    const run = async () => {
      const before = new Map(this.runtime);
      apply();
      try {
        await this.save();
      } catch (err) {
        this.runtime.clear();
        for (const [k, v] of before) this.runtime.set(k, v);
        throw err;
      } finally {
        this.reindex();
      }
      if (this.producer && record) {
        const own = record.value ?? `-${record.key}`;
        this.ownRecords.add(own);
        try {
          await this.producer.send(this.topic, [record]);
        } catch (err) {
          this.ownRecords.delete(own);
          throw err;
        }
      }
    };
    const p = this.writing.then(run, run);
    this.writing = p.catch(() => undefined);
    return p;
  }

  private async save(): Promise<void> {
    const doc: FileShape = { version: 1, entries: [...this.runtime.values()] };
    await mkdir(dirname(this.path), { recursive: true });
    await writeFileAtomic(this.path, `${JSON.stringify(doc, null, 2)}\n`, { mode: 0o640 });
  }

  private reindex(): void {
    const out: Target[] = this.configured.map((c) => c.t);
    for (const e of this.runtime.values()) {
      const r = parseTarget(e.target);
      if (r.ok) out.push(r.target);
    }
    this.parsed = out;
  }
}

/**
 * Follows the whitelist topic from its start with a group of its own (every instance reads every
 * record), applying other instances' changes. Returns the consumer (close it on shutdown).
 */
export async function followWhitelist(
  bus: Bus,
  whitelist: Whitelist,
  topic: string,
  log: Logger,
): Promise<Consumer> {
  await bus.ensureTopics([{ topic, compacted: true }]);
  const consumer = await bus.consumer({
    groupId: `mizugiwa-api-whitelist.${hostname()}.${process.pid}.${randomUUID().slice(0, 8)}`,
    topics: [topic],
    fromBeginning: true,
  });
  await consumer.run(async (messages) => {
    for (const m of messages) {
      const did = await whitelist.applyRecord(m.key, m.value);
      if (did === 'set' || did === 'removed')
        log.info({ target: m.key, change: did }, 'whitelist change from the topic');
      else if (did === 'ignored')
        log.warn({ key: m.key, offset: m.offset }, 'whitelist topic: record ignored (not an entry)');
    }
  });
  return consumer;
}
