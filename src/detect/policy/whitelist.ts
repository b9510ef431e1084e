import ipaddr from 'ipaddr.js';

type Net = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** Parses an address or CIDR; IPv4-mapped IPv6 is treated as IPv4. Throws on garbage. */
export function parseNet(s: string): Net {
  if (s.includes('/')) {
    const [addr, len] = ipaddr.parseCIDR(s);
    if (addr.kind() === 'ipv6' && (addr as ipaddr.IPv6).isIPv4MappedAddress() && len >= 96) {
      return [(addr as ipaddr.IPv6).toIPv4Address(), len - 96];
    }
    return [addr, len];
  }
  const addr = ipaddr.process(s);
  return [addr, addr.kind() === 'ipv4' ? 32 : 128];
}

/** Own networks and partner relays: targets that may be detected but never decided. */
export class Whitelist {
  private readonly nets: Net[];

  constructor(entries: readonly string[]) {
    this.nets = entries.map((e) => {
      try {
        return parseNet(e);
      } catch {
        throw new Error(`whitelist entry ${JSON.stringify(e)} is not an address or CIDR`);
      }
    });
  }

  /** True when target (an address or a CIDR) overlaps a whitelisted network in either direction. */
  covers(target: string): boolean {
    if (this.nets.length === 0) return false;
    let t: Net;
    try {
      t = parseNet(target);
    } catch {
      return false;
    }
    for (const w of this.nets) {
      if (w[0].kind() !== t[0].kind()) continue;
      const inside = t[1] >= w[1] ? t[0].match(w[0] as never, w[1]) : w[0].match(t[0] as never, t[1]);
      if (inside) return true;
    }
    return false;
  }
}
