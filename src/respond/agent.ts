import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import type { Registry } from 'prom-client';
import { type Logger, logger } from '../log/logger.js';
import { DEFAULT_MAP_PATH, type RespondConfig } from './config.js';
import type { Entry } from './entry.js';
import { ExpiryTimer } from './expiry.js';
import type { AccessMap } from './map-file.js';
import { type RespondMetrics, respondMetrics } from './metrics.js';
import { createPostfixMap } from './postfix/access-map.js';
import { check, parseTargets, type Refusal, type Rule, type SafetyContext } from './safety.js';
import { createSendmailMap } from './sendmail/access-db.js';
import { acquireLock, loadState, saveState } from './state.js';
import { parseTarget, type Target } from './target.js';

// The responder: decisions in, a safe and self-expiring access map out. Used by `mizugiwa respond`
// (decisions from the bus) and by `mizugiwa run` (decisions handed over in-process).
//
// Order of a change: the in-memory state, then (coalesced over coalesce_ms) the state file, then
// the map. The state file is the agent's intent and the map is derived from it: a crash between
// the two is repaired by the rebuild every start does.

export type ApplyOutcome = 'added' | 'updated' | 'unchanged' | 'removed' | 'absent' | 'refused';

export interface ApplyResult {
  outcome: ApplyOutcome;
  target?: string;
  rule?: Rule;
  message?: string;
  /** The change is in the live map (false: dry run, or the rebuild failed and is being retried). */
  in_force: boolean;
}

export interface ResponderOptions {
  config: RespondConfig;
  /** Where the default state file goes (<data_dir>/respond/state.json). */
  dataDir: string;
  log?: Logger;
  registry?: Registry;
  /** The access map; by default built from the config (postfix or sendmail). */
  map?: AccessMap;
  /** The agent's clock (ms since epoch). */
  now?: () => number;
  /** This host's addresses for the own_address rule; default: every interface address. */
  ownAddresses?: string[];
}

export interface BusLikeMessage {
  key: string | null;
  value: Buffer | string | null;
}

interface Waiter {
  version: number;
  resolve: (inForce: boolean) => void;
}

const MAX_MESSAGE_BYTES = 256 * 1024;

export function createAccessMap(cfg: RespondConfig): AccessMap {
  const path = mapPathOf(cfg);
  if (cfg.mta === 'sendmail') {
    return createSendmailMap({
      path,
      type: cfg.map_type === 'btree' ? 'btree' : 'hash',
      makemap: cfg.makemap,
      sendmailCf: cfg.sendmail_cf,
      timeoutMs: cfg.command_timeout_ms,
    });
  }
  return createPostfixMap({
    path,
    type: cfg.map_type === 'lmdb' ? 'lmdb' : cfg.map_type === 'cidr' ? 'cidr' : 'hash',
    postmap: cfg.postmap,
    reload: cfg.reload,
    timeoutMs: cfg.command_timeout_ms,
  });
}

export function mapPathOf(cfg: RespondConfig): string {
  return cfg.map_path ?? DEFAULT_MAP_PATH[cfg.mta];
}

export function statePathOf(cfg: RespondConfig, dataDir: string): string {
  return cfg.state_path ?? join(dataDir, 'respond', 'state.json');
}

export class Responder {
  readonly map: AccessMap;
  readonly statePath: string;
  private readonly cfg: RespondConfig;
  private readonly log: Logger;
  private readonly metrics: RespondMetrics;
  private readonly now: () => number;
  private readonly whitelist: Target[];
  private readonly own: Target[];
  private readonly entries = new Map<string, Entry>();
  private readonly expiry: ExpiryTimer;
  private handManaged: Target[] = [];
  private version = 0;
  private installed = 0;
  private flushing: Promise<void> | null = null;
  private coalesceTimer: NodeJS.Timeout | null = null;
  private retryTimer: NodeJS.Timeout | null = null;
  private retryDelay = 1000;
  private waiters: Waiter[] = [];
  private stateError: Error | null = null;
  private releaseLock: (() => Promise<void>) | null = null;
  private started = false;
  private stopped = false;
  private lastRendered = new Set<string>();
  private readonly mta: string;

  constructor(opts: ResponderOptions) {
    this.cfg = opts.config;
    this.log = opts.log ?? logger('respond');
    this.metrics = respondMetrics(opts.registry);
    this.now = opts.now ?? Date.now;
    this.map = opts.map ?? createAccessMap(this.cfg);
    this.statePath = statePathOf(this.cfg, opts.dataDir);
    this.mta = this.cfg.mta;
    this.whitelist = parseTargets(this.cfg.safety.whitelist, 'respond.safety.whitelist');
    this.own = parseTargets(opts.ownAddresses ?? interfaceAddresses(), 'own addresses');
    this.expiry = new ExpiryTimer(() => this.expireDue(), this.now);
  }

  /** Loads the state file, drops what expired meanwhile, re-checks the rest and rebuilds the map. */
  async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    if (!this.cfg.dry_run) {
      // One agent per state file and one per map: two agents on one map would undo each other.
      const releaseState = await acquireLock(this.statePath);
      try {
        const releaseMap = this.map.path
          ? await acquireLock(this.map.path, '.mizugiwa-lock')
          : async () => {};
        this.releaseLock = async () => {
          await releaseMap();
          await releaseState();
        };
      } catch (err) {
        await releaseState();
        throw err;
      }
    }
    const loaded = await loadState(this.statePath);
    for (const p of loaded.problems) this.log.error({ state: this.statePath }, p);
    if (!this.cfg.dry_run) await this.map.cleanup();
    await this.refreshHandManaged();
    const now = this.now();
    for (const e of loaded.entries) {
      if (e.expires_at <= now) {
        this.metrics.expiries.inc({ mta: this.mta });
        this.log.info(
          { target: e.target, decision_id: e.decision_id, expires_at: new Date(e.expires_at).toISOString() },
          'entry expired while the agent was down',
        );
        continue;
      }
      // The configuration may have changed since (a new whitelist entry, a narrower limit). The
      // expiry was clamped when the decision came; a smaller max_ttl_s now counts from now.
      const v = this.check({
        id: e.decision_id,
        target: e.target,
        action: 'tempfail',
        reply: e.reply,
        detector: e.detector,
        created_at: new Date(now).toISOString(),
        expires_at: new Date(e.expires_at).toISOString(),
        state: 'active',
      });
      if (v.kind === 'refuse') this.refused(v, 'entry from the state file dropped');
      // A decision applied before start() is newer than the state file's entry for its target.
      else if (v.kind === 'add' && !this.entries.has(v.entry.target)) {
        this.entries.set(v.entry.target, { ...v.entry, created_at: e.created_at });
      }
    }
    this.log.info(
      {
        entries: this.entries.size,
        map: this.map.describe,
        state: this.statePath,
        dry_run: this.cfg.dry_run,
      },
      'responder started',
    );
    // Always rebuild once: the map may be from before a crash, or hold a stale section.
    this.version++;
    await this.flushLoop();
    this.armExpiry();
  }

  /** Hands one decision over; resolves once it is written to the map (or refused, or failed and retrying). */
  apply(decision: unknown): Promise<ApplyResult> {
    if (this.stopped)
      return Promise.resolve({ outcome: 'refused', message: 'responder stopped', in_force: false });
    const v = this.check(decision);
    if (v.kind === 'refuse') {
      this.refused(v, 'decision refused');
      return Promise.resolve({
        outcome: 'refused',
        rule: v.rule,
        message: v.message,
        in_force: false,
        ...(v.target ? { target: v.target } : {}),
      });
    }
    if (v.kind === 'remove') {
      const d = decision as { id?: string };
      return this.removeTarget(v.target, { decision_id: d.id, why: v.why });
    }
    const e = v.entry;
    const old = this.entries.get(e.target);
    if (v.clamped_from) {
      this.metrics.clamped.inc({ mta: this.mta });
      this.log.warn(
        {
          target: e.target,
          decision_id: e.decision_id,
          expires_at: v.clamped_from,
          clamped_to: new Date(e.expires_at).toISOString(),
        },
        'expiry beyond respond.safety.max_ttl_s: clamped',
      );
    }
    if (
      old &&
      old.reply === e.reply &&
      old.expires_at === e.expires_at &&
      old.decision_id === e.decision_id
    ) {
      this.metrics.decisions.inc({ mta: this.mta, outcome: 'unchanged' });
      return Promise.resolve({
        outcome: 'unchanged',
        target: e.target,
        in_force: this.installed >= this.version,
      });
    }
    this.entries.set(e.target, e);
    const outcome = old ? 'updated' : 'added';
    this.metrics.decisions.inc({ mta: this.mta, outcome });
    this.log.info(
      {
        target: e.target,
        decision_id: e.decision_id,
        detector: e.detector,
        reply: e.reply,
        expires_at: new Date(e.expires_at).toISOString(),
      },
      outcome === 'added' ? 'entry added' : 'entry updated',
    );
    if (this.expiry.next === null || e.expires_at < this.expiry.next) this.expiry.arm(e.expires_at);
    return this.changed().then((inForce) => ({ outcome, target: e.target, in_force: inForce }));
  }

  /** A record of the decisions topic: a JSON decision, or a tombstone (null value) for its key. */
  applyMessage(msg: BusLikeMessage): Promise<ApplyResult> {
    if (msg.value === null) {
      const t = parseTarget(msg.key);
      if (!t.ok) return Promise.resolve(this.refuseRaw(`tombstone with a bad key: ${t.error}`));
      return this.removeTarget(t.target.text, { why: 'tombstone' });
    }
    const buf = typeof msg.value === 'string' ? Buffer.from(msg.value, 'utf8') : msg.value;
    if (buf.length > MAX_MESSAGE_BYTES) {
      return Promise.resolve(
        this.refuseRaw(`message of ${buf.length} bytes is larger than ${MAX_MESSAGE_BYTES}`),
      );
    }
    let decision: unknown;
    try {
      decision = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(buf));
    } catch (err) {
      return Promise.resolve(this.refuseRaw(`not a JSON decision (${(err as Error).message.slice(0, 100)})`));
    }
    if (msg.key !== null && typeof decision === 'object' && decision !== null) {
      const k = parseTarget(msg.key);
      const t = parseTarget((decision as { target?: unknown }).target);
      if (k.ok && t.ok && k.target.text !== t.target.text) {
        // Compaction and tombstones work by key: a decision under another key cannot be lifted by it.
        this.log.warn(
          { key: msg.key, target: t.target.text },
          'decision keyed by something else than its target',
        );
      }
    }
    return this.apply(decision);
  }

  /** Removes the entry for a target (an operator's lift, a tombstone). */
  lift(target: string): Promise<ApplyResult> {
    const t = parseTarget(target);
    if (!t.ok) return Promise.resolve(this.refuseRaw(t.error));
    return this.removeTarget(t.target.text, { why: 'lifted' });
  }

  /** Writes every change so far now; resolves true if the map holds them. Throws if the state file cannot be written. */
  async flush(): Promise<boolean> {
    if (!this.started || this.stopped) return false;
    const want = this.version;
    if (this.coalesceTimer) {
      clearTimeout(this.coalesceTimer);
      this.coalesceTimer = null;
    }
    if (this.installed < want && this.retryTimer) {
      clearTimeout(this.retryTimer);
      this.retryTimer = null;
    }
    await this.flushLoop();
    if (this.stateError) {
      const err = this.stateError;
      throw new Error(`cannot write the state file ${this.statePath}: ${err.message}`);
    }
    return this.installed >= want;
  }

  /** Rebuilds the map now even without a change (SIGHUP: after the administrator edited their lines). */
  async refresh(): Promise<boolean> {
    if (!this.started || this.stopped) return false;
    this.version++;
    return this.flush();
  }

  /** Entries in force (or to be, while a rebuild is pending), sorted by expiry. */
  list(): Entry[] {
    return [...this.entries.values()].sort((a, b) => a.expires_at - b.expires_at);
  }

  /** Writes pending changes, stops the timers and releases the state file. */
  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    this.expiry.stop();
    if (this.coalesceTimer) clearTimeout(this.coalesceTimer);
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.coalesceTimer = this.retryTimer = null;
    if (this.flushing) await this.flushing;
    if (this.installed < this.version && this.started) {
      await this.rebuild(this.version).catch(() => false);
    }
    for (const w of this.waiters.splice(0)) w.resolve(false);
    if (this.releaseLock) await this.releaseLock();
    this.releaseLock = null;
    this.log.info({ entries: this.entries.size }, 'responder stopped');
  }

  // ---- internals ------------------------------------------------------------------------------

  private check(decision: unknown) {
    const ctx: SafetyContext = {
      cfg: this.cfg.safety,
      whitelist: this.whitelist,
      ownAddresses: this.own,
      mapCannotHold: (t) => this.map.cannotHold(t),
      handManaged: this.handManaged,
      entryCount: this.entries.size,
      has: (t) => this.entries.has(t),
      now: this.now(),
    };
    return check(decision, ctx);
  }

  private refused(r: Refusal, msg: string): void {
    this.metrics.refusals.inc({ mta: this.mta, rule: r.rule });
    this.metrics.decisions.inc({ mta: this.mta, outcome: 'refused' });
    this.log.warn({ rule: r.rule, decision_id: r.decision_id, target: r.target, reason: r.message }, msg);
  }

  private refuseRaw(message: string): ApplyResult {
    this.refused({ kind: 'refuse', rule: 'malformed', message }, 'decision refused');
    return { outcome: 'refused', rule: 'malformed', message, in_force: false };
  }

  private removeTarget(
    target: string,
    why: { decision_id?: string | undefined; why: string },
  ): Promise<ApplyResult> {
    const old = this.entries.get(target);
    if (!old) {
      this.metrics.decisions.inc({ mta: this.mta, outcome: 'absent' });
      return Promise.resolve({ outcome: 'absent', target, in_force: this.installed >= this.version });
    }
    this.entries.delete(target);
    this.metrics.decisions.inc({ mta: this.mta, outcome: 'removed' });
    this.log.info({ target, decision_id: why.decision_id ?? old.decision_id, why: why.why }, 'entry removed');
    return this.changed().then((inForce) => ({ outcome: 'removed', target, in_force: inForce }));
  }

  /** Records a change and returns when a rebuild holding it has finished. */
  private changed(delayMs = this.cfg.coalesce_ms): Promise<boolean> {
    const version = ++this.version;
    const p = new Promise<boolean>((resolve) => this.waiters.push({ version, resolve }));
    if (!this.started) return p; // start() rebuilds with everything applied before it
    if (delayMs === 0 && this.coalesceTimer) {
      clearTimeout(this.coalesceTimer);
      this.coalesceTimer = null;
    }
    // A running rebuild loops on to this version; a pending retry will include it.
    if (this.flushing || this.coalesceTimer || this.retryTimer) return p;
    if (delayMs === 0) void this.flushLoop();
    else
      this.coalesceTimer = setTimeout(() => {
        this.coalesceTimer = null;
        void this.flushLoop();
      }, delayMs);
    return p;
  }

  private flushLoop(): Promise<void> {
    if (this.flushing) return this.flushing;
    if (this.installed >= this.version) return Promise.resolve();
    this.flushing = (async () => {
      // The check of `version` and the reset of `flushing` happen in one synchronous step: a change
      // recorded while a rebuild runs is either seen here or starts a new loop, never neither.
      try {
        do {
          const ok = await this.rebuild(this.version);
          if (!ok) {
            this.scheduleRetry();
            return;
          }
        } while (this.installed < this.version);
      } finally {
        this.flushing = null;
      }
    })();
    return this.flushing;
  }

  private scheduleRetry(): void {
    if (this.stopped || this.retryTimer) return;
    const delay = this.retryDelay;
    this.retryDelay = Math.min(this.retryDelay * 2, this.cfg.retry_max_ms);
    this.retryTimer = setTimeout(() => {
      this.retryTimer = null;
      void this.flushLoop();
    }, delay);
  }

  /** State file, then map, for everything up to `version`. Never throws; settles the waiters. */
  private async rebuild(version: number): Promise<boolean> {
    const snapshot = [...this.entries.values()];
    let ok = false;
    if (this.cfg.dry_run) {
      this.dryRun(snapshot);
      this.installed = version;
      this.settle(version, false);
      return true;
    }
    try {
      await saveState(this.statePath, snapshot);
      this.stateError = null;
    } catch (err) {
      this.stateError = err as Error;
      this.metrics.rebuilds.inc({ mta: this.mta, result: 'failed' });
      this.metrics.stale.set({ mta: this.mta }, 1);
      this.log.error({ state: this.statePath, err: (err as Error).message }, 'cannot write the state file');
      this.settle(version, false);
      return false;
    }
    const end = this.metrics.rebuildSeconds.startTimer({ mta: this.mta });
    try {
      const r = await this.map.install(snapshot);
      end();
      ok = true;
      this.installed = version;
      this.retryDelay = 1000;
      this.metrics.rebuilds.inc({ mta: this.mta, result: 'ok' });
      this.metrics.entries.set({ mta: this.mta }, r.written);
      this.metrics.lastSuccess.set({ mta: this.mta }, this.now() / 1000);
      this.metrics.stale.set({ mta: this.mta }, 0);
      this.log.debug(
        { map: this.map.describe, entries: r.written, ms: Math.round(r.duration_ms) },
        'access map rebuilt',
      );
      for (const e of r.skipped) {
        // The administrator added an overlapping line meanwhile: theirs wins; ours is dropped.
        if (this.entries.get(e.target) === e) this.entries.delete(e.target);
        this.refused(
          {
            kind: 'refuse',
            rule: 'hand_managed',
            message: `${e.target} overlaps a line the administrator manages by hand`,
            decision_id: e.decision_id,
            target: e.target,
          },
          'entry dropped',
        );
      }
      this.handManaged = r.handManaged;
    } catch (err) {
      end();
      this.metrics.rebuilds.inc({ mta: this.mta, result: 'failed' });
      this.metrics.stale.set({ mta: this.mta }, 1);
      this.log.error(
        { map: this.map.describe, err: (err as Error).message, stage: (err as { stage?: string }).stage },
        'access map rebuild failed; the previous map stays in force',
      );
    }
    this.settle(version, ok);
    return ok;
  }

  private settle(version: number, inForce: boolean): void {
    const rest: Waiter[] = [];
    for (const w of this.waiters) {
      if (w.version <= version) w.resolve(inForce);
      else rest.push(w);
    }
    this.waiters = rest;
  }

  private dryRun(snapshot: Entry[]): void {
    const lines = new Set(this.map.render(snapshot).filter((l) => !l.startsWith('#')));
    const added = [...lines].filter((l) => !this.lastRendered.has(l));
    const removed = [...this.lastRendered].filter((l) => !lines.has(l));
    this.lastRendered = lines;
    this.metrics.entries.set({ mta: this.mta }, lines.size);
    if (added.length || removed.length) {
      this.log.info({ map: this.map.describe, added, removed }, 'dry run: the map would change');
    }
  }

  private async refreshHandManaged(): Promise<void> {
    try {
      this.handManaged = await this.map.readHandManaged();
    } catch (err) {
      this.log.error({ map: this.map.describe, err: (err as Error).message }, 'cannot read the map text');
    }
  }

  private expireDue(): void {
    if (this.stopped) return;
    const now = this.now();
    let n = 0;
    for (const [k, e] of this.entries) {
      if (e.expires_at <= now) {
        this.entries.delete(k);
        n++;
        this.metrics.expiries.inc({ mta: this.mta });
        this.log.info(
          { target: e.target, decision_id: e.decision_id, expires_at: new Date(e.expires_at).toISOString() },
          'entry expired',
        );
      }
    }
    this.armExpiry();
    if (n > 0) void this.changed(0);
  }

  private armExpiry(): void {
    let next: number | null = null;
    for (const e of this.entries.values()) if (next === null || e.expires_at < next) next = e.expires_at;
    this.expiry.arm(next);
  }
}

function interfaceAddresses(): string[] {
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) {
    for (const a of list ?? []) out.push(a.address.replace(/%.*$/, ''));
  }
  return out;
}
