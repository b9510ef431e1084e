// One timer, set to the next expiry (not a poll loop). Timers run on the monotonic clock while
// expires_at is wall-clock time: the wait is capped so that a wall-clock step (NTP, a resumed VM)
// is noticed within maxWaitMs instead of when the monotonic clock catches up.

export class ExpiryTimer {
  private timer: NodeJS.Timeout | null = null;
  private due: number | null = null;

  constructor(
    private readonly onDue: () => void,
    private readonly now: () => number = Date.now,
    private readonly maxWaitMs = 30_000,
  ) {}

  /** Sets the timer to fire at `at` (ms since epoch); null: nothing to expire. */
  arm(at: number | null): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.due = at;
    if (at === null) return;
    const wait = Math.min(Math.max(0, at - this.now()), this.maxWaitMs);
    this.timer = setTimeout(() => this.fire(), wait);
  }

  /** When the timer is set for, or null. */
  get next(): number | null {
    return this.due;
  }

  private fire(): void {
    this.timer = null;
    const at = this.due;
    if (at === null) return;
    // setTimeout may wake a millisecond early against Date.now(), or the wait was capped.
    if (this.now() < at) {
      this.arm(at);
      return;
    }
    this.due = null;
    this.onDue();
  }

  stop(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.due = null;
  }
}
