import ipaddr from 'ipaddr.js';

// A decision's target (an address or a CIDR prefix), parsed strictly. ipaddr.js alone accepts
// forms no MTA will ever log ("127.1", "010.0.0.1" read as octal, "fe80::1%eth0"): an access map
// keyed by such a string would never match, so they are malformed here.

export interface Target {
  family: 4 | 6;
  /** Network address (host bits zero). */
  addr: ipaddr.IPv4 | ipaddr.IPv6;
  /** 32 or 128 for a single address. */
  prefix: number;
  /** Canonical text: "192.0.2.7", "2001:db8::1", "192.0.2.0/24", "2001:db8::/48". */
  text: string;
}

export type TargetResult = { ok: true; target: Target } | { ok: false; error: string };

const OCTET = '(?:25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])';
const IPV4 = new RegExp(`^${OCTET}(?:\\.${OCTET}){3}$`);
const IPV6_CHARS = /^[0-9A-Fa-f:.]+$/;

function parseAddress(s: string): ipaddr.IPv4 | ipaddr.IPv6 | string {
  if (IPV4.test(s)) return ipaddr.IPv4.parse(s);
  if (s.includes(':') && IPV6_CHARS.test(s) && ipaddr.IPv6.isValid(s)) {
    const a = ipaddr.IPv6.parse(s);
    // Postfix and Sendmail log an IPv4 client on a dual-stack socket as plain IPv4.
    return a.isIPv4MappedAddress() ? a.toIPv4Address() : a;
  }
  return `not an IPv4 dotted quad or IPv6 address: ${JSON.stringify(s.slice(0, 64))}`;
}

export function parseTarget(input: unknown): TargetResult {
  if (typeof input !== 'string') return { ok: false, error: 'target is not a string' };
  const s = input.trim();
  if (s.length === 0 || s.length > 64) return { ok: false, error: 'target is empty or too long' };
  const slash = s.indexOf('/');
  const addrText = slash < 0 ? s : s.slice(0, slash);
  let addr = parseAddress(addrText);
  if (typeof addr === 'string') return { ok: false, error: addr };
  const mappedV4 = addr.kind() === 'ipv4' && addrText.includes(':');
  const family: 4 | 6 = addr.kind() === 'ipv4' ? 4 : 6;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = s.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p)) return { ok: false, error: `bad prefix length ${JSON.stringify(p)}` };
    prefix = Number(p);
    // ::ffff:192.0.2.0/120 is 192.0.2.0/24
    if (mappedV4) prefix -= 96;
    if (prefix < 0 || prefix > max) {
      return { ok: false, error: `prefix length /${p} out of range for IPv${family}` };
    }
  }
  const network = networkOf(addr, prefix);
  if (network.toString() !== addr.toString()) {
    return {
      ok: false,
      error: `target ${s} has host bits set; the network is ${network.toString()}/${prefix}`,
    };
  }
  addr = network;
  const text = prefix === max ? addr.toString() : `${addr.toString()}/${prefix}`;
  return { ok: true, target: { family, addr, prefix, text } };
}

/** Like parseTarget, but "192.0.2.7/24" is taken as its network 192.0.2.0/24 (for reading others' files). */
export function parseTargetLoose(input: string): TargetResult {
  const strict = parseTarget(input);
  if (strict.ok) return strict;
  const m = /^\s*([^/\s]+)\/([0-9]{1,3})\s*$/.exec(input);
  if (!m) return strict;
  const host = parseTarget(m[1]);
  if (!host.ok) return strict;
  const mapped = m[1]!.includes(':') && host.target.family === 4 ? 96 : 0;
  const prefix = Number(m[2]) - mapped;
  if (prefix < 0 || prefix > (host.target.family === 4 ? 32 : 128)) return strict;
  return parseTarget(`${networkOf(host.target.addr, prefix).toString()}/${prefix}`);
}

function networkOf(addr: ipaddr.IPv4 | ipaddr.IPv6, prefix: number): ipaddr.IPv4 | ipaddr.IPv6 {
  const bytes = addr.toByteArray();
  for (let i = 0; i < bytes.length; i++) {
    const keep = Math.max(0, Math.min(8, prefix - i * 8));
    bytes[i] = bytes[i]! & ((0xff << (8 - keep)) & 0xff);
  }
  return ipaddr.fromByteArray(bytes);
}

/** True if the two ranges share at least one address. */
export function overlaps(a: Target, b: Target): boolean {
  if (a.family !== b.family) return false;
  const bits = Math.min(a.prefix, b.prefix);
  return (a.addr as ipaddr.IPv4).match(b.addr as ipaddr.IPv4, bits);
}

/** ipaddr.js range name of the network address: loopback, multicast, unspecified, ... */
export function rangeOf(t: Target): string {
  return t.addr.range();
}

/** Octets of an IPv4 target, for the partial-address keys of Postfix hash tables and Sendmail. */
export function octets(t: Target): number[] {
  return t.addr.toByteArray();
}
