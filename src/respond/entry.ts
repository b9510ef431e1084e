/** One tempfail entry the agent keeps in force: what a decision became after the safety checks. */
export interface Entry {
  /** Canonical target (see target.ts): the key of the entry in the agent's state. */
  target: string;
  /** "450 4.7.1 text", checked by safety.ts. */
  reply: string;
  /** When the entry leaves the map, ms since epoch (possibly clamped to the max TTL). */
  expires_at: number;
  decision_id: string;
  detector: string;
  created_at: string;
}

/** More specific first, then by address: a stable order for map files (cidr tables match the first line). */
export function compareEntries(
  a: { prefix: number; bytes: number[] },
  b: { prefix: number; bytes: number[] },
) {
  if (a.bytes.length !== b.bytes.length) return a.bytes.length - b.bytes.length;
  if (a.prefix !== b.prefix) return b.prefix - a.prefix;
  for (let i = 0; i < a.bytes.length; i++) {
    const d = a.bytes[i]! - b.bytes[i]!;
    if (d !== 0) return d;
  }
  return 0;
}
