import { LRUCache } from 'lru-cache';
import type { MailEvent } from '../event/mail-event.js';

// Sendmail names the client of an SMTP transaction only in the `from=` line, which it writes when
// the envelope ends — after the `<rcpt>... User unknown` lines of the same queue id:
//
//   sendmail[25260]: 6ARLsoWE025260: <nosuch@example.test>... User unknown
//   sendmail[25260]: 6ARLsoWE025260: from=<probe@client.test>, ..., nrcpts=0, ..., relay=[192.0.2.7]
//
// A detector that counts unknown recipients per client IP sees nothing of such a harvest unless
// the reject carries the client. The join holds a reject that lacks its client until the line of
// the same host and queue id that names it arrives (milliseconds later in practice), stamps it,
// and lets it go — in input order: everything behind a held event waits too, so a file's events
// stay in file order. A reject whose client never shows up goes on without one after hold_ms.
// Only the edge (ship, replay) sees a host's lines in order, so the join lives there.

export interface ClientJoinOptions {
  /** Longest time an event waits for its client (ms). */
  holdMs: number;
  /** Most events waiting at once; beyond it the oldest goes on unstamped. */
  maxHeld: number;
  /** Queue ids whose client is remembered (for rejects that come after the from= line). */
  maxRemembered?: number;
  now?: () => number;
}

export type Release<T> = (ev: MailEvent, item: T) => void;

interface Entry<T> {
  ev: MailEvent;
  item: T;
  /** Set while the event waits for its client. */
  key: string | undefined;
  since: number;
}

interface Client {
  ip: string;
  host: string | undefined;
  port: number | undefined;
}

export interface ClientJoinStats {
  stamped: number;
  /** Events that went on without their client (hold_ms passed, or too many waiting). */
  unresolved: number;
}

/** Does this event need the client that a later line of its queue id names? */
export function needsClient(ev: MailEvent): boolean {
  return (
    ev.mta === 'sendmail' && ev.kind === 'reject' && ev.client_ip === undefined && ev.queue_id !== undefined
  );
}

function keyOf(ev: MailEvent): string {
  return `${ev.host ?? ''}\u0000${ev.queue_id}`;
}

export class ClientJoin<T> {
  private readonly queue: Entry<T>[] = [];
  private head = 0;
  private readonly waiting = new Map<string, Entry<T>[]>();
  private readonly clients: LRUCache<string, Client>;
  private readonly now: () => number;
  readonly stats: ClientJoinStats = { stamped: 0, unresolved: 0 };

  constructor(private readonly opts: ClientJoinOptions) {
    this.now = opts.now ?? Date.now;
    this.clients = new LRUCache({ max: opts.maxRemembered ?? 10_000 });
  }

  /** Events waiting (held or queued behind one that is held). */
  get held(): number {
    return this.queue.length - this.head;
  }

  /** Takes one event; calls `release` for every event that may go on now, in input order. */
  push(ev: MailEvent, item: T, release: Release<T>): void {
    if (ev.queue_id !== undefined && ev.client_ip !== undefined) this.learn(ev);
    let key: string | undefined;
    if (needsClient(ev)) {
      const k = keyOf(ev);
      const known = this.clients.get(k);
      if (known) this.stamp(ev, known);
      else key = k;
    }
    if (key === undefined && this.held === 0) {
      release(ev, item);
      return;
    }
    const entry: Entry<T> = { ev, item, key, since: this.now() };
    this.queue.push(entry);
    if (key !== undefined) {
      const list = this.waiting.get(key);
      if (list) list.push(entry);
      else this.waiting.set(key, [entry]);
    }
    this.releaseReady(release, this.held > this.opts.maxHeld);
  }

  /** Lets go what waited longer than hold_ms; call it from a timer. */
  expire(release: Release<T>): void {
    this.releaseReady(release, false);
  }

  /** Lets everything go (shutdown, end of input). */
  drain(release: Release<T>): void {
    while (this.head < this.queue.length) this.releaseHead(release);
    this.compact();
  }

  /** Milliseconds until the oldest held event is due, or null when nothing waits. */
  nextDueIn(): number | null {
    if (this.held === 0) return null;
    return Math.max(0, this.queue[this.head]!.since + this.opts.holdMs - this.now());
  }

  private learn(ev: MailEvent): void {
    const k = keyOf(ev);
    const client: Client = { ip: ev.client_ip!, host: ev.client_host, port: ev.client_port };
    this.clients.set(k, client);
    const list = this.waiting.get(k);
    if (!list) return;
    this.waiting.delete(k);
    for (const e of list) {
      this.stamp(e.ev, client);
      e.key = undefined;
    }
  }

  private stamp(ev: MailEvent, c: Client): void {
    ev.client_ip = c.ip;
    if (ev.client_host === undefined && c.host !== undefined) ev.client_host = c.host;
    if (ev.client_port === undefined && c.port !== undefined) ev.client_port = c.port;
    this.stats.stamped++;
  }

  private releaseReady(release: Release<T>, overflow: boolean): void {
    const due = this.now() - this.opts.holdMs;
    let force = overflow;
    while (this.head < this.queue.length) {
      const e = this.queue[this.head]!;
      if (e.key !== undefined && e.since > due && !force) break;
      this.releaseHead(release);
      force = force && this.held > this.opts.maxHeld;
    }
    this.compact();
  }

  private releaseHead(release: Release<T>): void {
    const e = this.queue[this.head]!;
    this.queue[this.head++] = undefined as unknown as Entry<T>;
    if (e.key !== undefined) {
      const list = this.waiting.get(e.key);
      if (list) {
        const rest = list.filter((x) => x !== e);
        if (rest.length > 0) this.waiting.set(e.key, rest);
        else this.waiting.delete(e.key);
      }
      e.key = undefined;
      this.stats.unresolved++;
    }
    release(e.ev, e.item);
  }

  private compact(): void {
    if (this.head === this.queue.length) {
      this.queue.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.queue.length) {
      this.queue.splice(0, this.head);
      this.head = 0;
    }
  }
}
