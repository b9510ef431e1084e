import ipaddr from 'ipaddr.js';

/** An address or prefix as the IPv6 range ClickHouse compares against (IPv4 as ::ffff:a.b.c.d). */
export interface IpRange {
  /** First address, IPv6 text. */
  low: string;
  /** Last address, IPv6 text. */
  high: string;
  /** Prefix length in IPv6 terms (an IPv4 /24 is /120). */
  bits: number;
}

/**
 * Parses `1.2.3.4`, `1.2.3.0/24`, `2001:db8::1` or `2001:db8::/64` into its address range.
 * Throws a RangeError naming the input when it is neither an address nor a prefix.
 */
export function ipRange(target: string): IpRange {
  const s = target.trim().replace(/^IPv6:/i, '');
  try {
    if (s.includes('/')) {
      const [addr, len] = ipaddr.parseCIDR(s);
      if (addr.kind() === 'ipv4') {
        return {
          low: `::ffff:${ipaddr.IPv4.networkAddressFromCIDR(s).toString()}`,
          high: `::ffff:${ipaddr.IPv4.broadcastAddressFromCIDR(s).toString()}`,
          bits: 96 + len,
        };
      }
      return {
        low: ipaddr.IPv6.networkAddressFromCIDR(s).toRFC5952String(),
        high: ipaddr.IPv6.broadcastAddressFromCIDR(s).toRFC5952String(),
        bits: len,
      };
    }
    const addr = ipaddr.parse(s);
    const text =
      addr.kind() === 'ipv4' ? `::ffff:${addr.toString()}` : (addr as ipaddr.IPv6).toRFC5952String();
    return { low: text, high: text, bits: 128 };
  } catch {
    throw new RangeError(`not an IP address or prefix: ${JSON.stringify(target)}`);
  }
}
