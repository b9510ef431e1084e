// Signals: what stage 1 (per source, keyed by client IP) hands to stage 2 (keyed by recipient
// domain, prefix or the whole fleet) through the internal re-keyed topic. Compact on purpose:
// only the events fleet-wide detectors need, each annotated with its source's stage-1 tallies.

export type SignalType =
  /** an unknown-recipient reject */
  | 'u'
  /** an inbound null-sender (DSN) message or RCPT */
  | 'n'
  /** a bounce notification this fleet generated */
  | 'b'
  /** a double bounce (to postmaster) */
  | 'x'
  /** accepted mail from a source that probed this domain (clears it of taking part in a harvest) */
  | 'a';

export interface Signal {
  /** Stage-2 key, also the partition key: `d:<domain>`, `p:<cidr>`, `f:bounce`. */
  k: string;
  t: SignalType;
  /** Event time, ms since epoch, skew-corrected. */
  ms: number;
  /** Host that logged it. */
  h: string;
  ip?: string;
  /** Event id. */
  id?: string;
  /** Accepted messages from ip within the dha_source window when the event was seen. */
  acc?: number;
}

export function encodeSignal(s: Signal): string {
  return JSON.stringify(s);
}

/** Parses and checks a signal; returns a fault name instead of throwing. */
export function decodeSignal(buf: Buffer | string): Signal | string {
  let v: unknown;
  try {
    v = JSON.parse(typeof buf === 'string' ? buf : buf.toString('utf8'));
  } catch {
    return 'json';
  }
  if (typeof v !== 'object' || v === null) return 'shape';
  const s = v as Record<string, unknown>;
  if (typeof s.k !== 'string' || !/^[dpf]:/.test(s.k)) return 'signal_key';
  if (s.t !== 'u' && s.t !== 'n' && s.t !== 'b' && s.t !== 'x' && s.t !== 'a') return 'signal_type';
  if (typeof s.ms !== 'number' || !Number.isFinite(s.ms)) return 'signal_time';
  if (typeof s.h !== 'string') return 'signal_host';
  if (s.ip !== undefined && typeof s.ip !== 'string') return 'signal_ip';
  if (s.id !== undefined && typeof s.id !== 'string') return 'signal_id';
  if (s.acc !== undefined && typeof s.acc !== 'number') return 'signal_acc';
  return s as unknown as Signal;
}
