// Event time: every window in mizugiwa runs on log time, never on the clock of the detector.
// The watermark is the newest (skew-corrected) event time seen minus the allowed lateness: an
// event older than what a window still holds is dropped and counted, never silently merged.

export class EventClock {
  private maxMs = Number.NEGATIVE_INFINITY;
  private lastTs = '';
  private lastMs = Number.NaN;
  private readonly skewMs: Map<string, number>;

  constructor(
    private readonly latenessMs: number,
    hostSkewS: Record<string, number> = {},
    private readonly maxFutureMs = Number.POSITIVE_INFINITY,
  ) {
    this.skewMs = new Map(Object.entries(hostSkewS).map(([h, s]) => [h, s * 1000]));
  }

  /**
   * Event time in ms of an ISO timestamp from `host`, corrected for that host's clock skew and
   * clamped to wallMs + max_future when a wall clock is given (the service); NaN when unparseable.
   */
  eventMs(ts: string | undefined, host: string | undefined, wallMs?: number): number {
    if (ts === undefined) return Number.NaN;
    let ms: number;
    // Consecutive lines very often share their timestamp: skip the parse.
    if (ts === this.lastTs) ms = this.lastMs;
    else {
      ms = Date.parse(ts);
      this.lastTs = ts;
      this.lastMs = ms;
    }
    if (host !== undefined && this.skewMs.size > 0) ms -= this.skewMs.get(host) ?? 0;
    if (wallMs !== undefined && ms > wallMs + this.maxFutureMs) ms = wallMs + this.maxFutureMs;
    return ms;
  }

  /** Records an event time; returns the watermark after it. */
  observe(ms: number): number {
    if (ms > this.maxMs) this.maxMs = ms;
    return this.maxMs - this.latenessMs;
  }

  /** Newest event time seen (-Infinity before the first event). */
  get newest(): number {
    return this.maxMs;
  }

  get watermark(): number {
    return this.maxMs - this.latenessMs;
  }
}
