// Local wall-clock times (RFC 3164 syslog, exim's main log) to ISO 8601 with an offset, and the
// year that RFC 3164 timestamps leave out.

/** Offset of a local wall-clock time in a time zone, cached per local hour (DST moves on hour boundaries). */
export class LocalClock {
  private readonly fmt: Intl.DateTimeFormat | undefined;
  private readonly cache = new Map<number, string>();

  /** Throws RangeError on an unknown IANA time zone name. */
  constructor(timezone?: string) {
    this.fmt = timezone
      ? new Intl.DateTimeFormat('en-US', {
          timeZone: timezone,
          hourCycle: 'h23',
          year: 'numeric',
          month: 'numeric',
          day: 'numeric',
          hour: 'numeric',
          minute: 'numeric',
          second: 'numeric',
        })
      : undefined;
  }

  /** `+HH:MM` / `-HH:MM` for the local time y-mo-d h:00 (month 1-12). */
  offset(y: number, mo: number, d: number, h: number): string {
    const key = ((y * 13 + mo) * 32 + d) * 24 + h;
    let off = this.cache.get(key);
    if (off === undefined) {
      off = formatOffset(
        this.fmt ? this.zoneOffset(y, mo, d, h) : -new Date(y, mo - 1, d, h).getTimezoneOffset(),
      );
      if (this.cache.size > 4096) this.cache.clear();
      this.cache.set(key, off);
    }
    return off;
  }

  private zoneOffset(y: number, mo: number, d: number, h: number): number {
    const guess = Date.UTC(y, mo - 1, d, h);
    const o1 = this.offsetAt(guess);
    const o2 = this.offsetAt(guess - o1 * 60_000);
    return o2;
  }

  /** Minutes east of UTC at the instant t (ms) in this.fmt's zone. */
  private offsetAt(t: number): number {
    const parts = this.fmt!.formatToParts(t);
    const v: Record<string, number> = {};
    for (const p of parts) if (p.type !== 'literal') v[p.type] = Number(p.value);
    const asUtc = Date.UTC(v.year!, v.month! - 1, v.day!, v.hour!, v.minute!, v.second!);
    return Math.round((asUtc - Math.floor(t / 1000) * 1000) / 60_000);
  }
}

export function formatOffset(minutes: number): string {
  const sign = minutes < 0 ? '-' : '+';
  const m = Math.abs(minutes);
  return `${sign}${pad2(Math.floor(m / 60))}:${pad2(m % 60)}`;
}

export function pad2(n: number): string {
  return n < 10 ? `0${n}` : String(n);
}

/**
 * The year of RFC 3164 timestamps in one stream. The first line takes the given year, or the one
 * that puts it nearest to now() (a December line read in early January is last year's). After
 * that the stream's own order decides: a month jumping back by more than half a year (Dec -> Jan)
 * is the next year; one jumping forward by more than half a year (a late Dec line after Jan) is
 * the previous year and does not move the stream's state.
 */
export class YearTracker {
  private year = 0;
  private month = 0;

  constructor(
    private readonly fixed: number | undefined,
    private readonly now: () => Date,
  ) {}

  yearOf(month: number): number {
    if (this.year === 0) {
      let y: number;
      if (this.fixed !== undefined) y = this.fixed;
      else {
        const n = this.now();
        y = n.getFullYear();
        const nm = n.getMonth() + 1;
        if (month > nm + 1) y--;
        else if (month < nm - 10) y++;
      }
      this.year = y;
      this.month = month;
      return y;
    }
    if (month < this.month - 6) {
      this.year++;
      this.month = month;
      return this.year;
    }
    if (month > this.month + 6) return this.year - 1;
    this.month = month;
    return this.year;
  }
}
