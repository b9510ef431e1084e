import ipaddr from 'ipaddr.js';
import type { MailEvent } from '../event/mail-event.js';

// What the detector accepts from `mail.events`. Anything else is a fault with a name: it is counted,
// logged once per name and sent to the dead-letter topic, and the consumer moves on.

const STRING_FIELDS = [
  'id',
  'host',
  'sender',
  'recipient',
  'helo',
  'text',
  'reason',
  'mta',
  'program',
] as const;

const NULLABLE = [...STRING_FIELDS, 'client_ip', 'nrcpt', 'command_counts'] as const;

/** Decodes and checks one message value; returns the event, or the name of the fault. */
export function decodeMailEvent(value: Buffer | string | null): MailEvent | string {
  if (value === null) return 'tombstone';
  let v: unknown;
  try {
    v = JSON.parse(typeof value === 'string' ? value : value.toString('utf8'));
  } catch {
    return 'json';
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not_object';
  const e = v as Record<string, unknown>;
  if (typeof e.kind !== 'string' || !/^[a-z_]{1,32}$/.test(e.kind)) return 'kind';
  if (typeof e.raw !== 'string') return 'raw';
  if (typeof e.ts !== 'string' || !Number.isFinite(Date.parse(e.ts))) return 'ts';
  for (const f of STRING_FIELDS) {
    if (e[f] !== undefined && e[f] !== null && typeof e[f] !== 'string') return `field_${f}`;
  }
  if (e.client_ip !== undefined && e.client_ip !== null) {
    if (typeof e.client_ip !== 'string' || !isAddress(e.client_ip)) return 'client_ip';
  }
  if (e.nrcpt !== undefined && e.nrcpt !== null && typeof e.nrcpt !== 'number') return 'field_nrcpt';
  if (e.command_counts !== undefined && e.command_counts !== null) {
    if (typeof e.command_counts !== 'object' || Array.isArray(e.command_counts))
      return 'field_command_counts';
  }
  // null is not a value in the contract: a field that does not apply is absent.
  for (const f of NULLABLE) if (e[f] === null) delete e[f];
  return e as unknown as MailEvent;
}

/** A dotted-quad IPv4 or an IPv6 address (ipaddr.isValid also takes "1.2.3" and "0x7f.1"). */
function isAddress(s: string): boolean {
  return s.includes(':') ? ipaddr.IPv6.isValid(s) : ipaddr.IPv4.isValidFourPartDecimal(s);
}
