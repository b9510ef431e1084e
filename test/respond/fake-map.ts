import type { Entry } from '../../src/respond/entry.js';
import { type AccessMap, type InstallResult, MapError } from '../../src/respond/map-file.js';
import { postfixKey } from '../../src/respond/postfix/access-map.js';
import type { Target } from '../../src/respond/target.js';

/** A recording access map for unit tests: what each rebuild held, failures and delays on demand. */
export class FakeMap implements AccessMap {
  readonly describe = 'fake';
  installs: string[][] = [];
  fail = false;
  hand: Target[] = [];
  /** Targets the "administrator" has meanwhile taken over (install skips them). */
  skip: string[] = [];
  delayMs = 0;
  cannotHold(t: Target) {
    const k = postfixKey(t, 'hash');
    return 'error' in k ? k.error : null;
  }
  async readHandManaged() {
    return this.hand;
  }
  render(entries: readonly Entry[]) {
    return entries.map((e) => `${e.target} ${e.reply}`);
  }
  attempts = 0;
  begun = 0;
  async install(entries: readonly Entry[]): Promise<InstallResult> {
    this.begun++;
    try {
      if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
      if (this.fail) throw new MapError('postmap exited with 1: fatal: disk full', 'build');
      const skipped = entries.filter((e) => this.skip.includes(e.target));
      const kept = entries.filter((e) => !this.skip.includes(e.target));
      this.installs.push(kept.map((e) => e.target).sort());
      return { written: kept.length, skipped, handManaged: this.hand, duration_ms: 1 };
    } finally {
      this.attempts++;
    }
  }
  /** Waits (in real time: the state file is real I/O) until the n-th install attempt has returned. */
  async began(n: number) {
    while (this.begun < n) await new Promise((r) => setImmediate(r));
  }
  async attempted(n: number) {
    while (this.attempts < n) await new Promise((r) => setImmediate(r));
    await new Promise((r) => setImmediate(r));
  }
  async cleanup() {}
  get last() {
    return this.installs[this.installs.length - 1];
  }
}
