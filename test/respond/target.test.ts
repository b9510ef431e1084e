import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { overlaps, parseTarget } from '../../src/respond/target.js';

function ok(s: string) {
  const r = parseTarget(s);
  if (!r.ok) throw new Error(r.error);
  return r.target;
}

describe('parseTarget', () => {
  it.each([
    ['192.0.2.7', '192.0.2.7', 32],
    ['192.0.2.7/32', '192.0.2.7', 32],
    ['192.0.2.0/24', '192.0.2.0/24', 24],
    [' 198.51.100.0/24 ', '198.51.100.0/24', 24],
    ['2001:DB8:0:0::1', '2001:db8::1', 128],
    ['2001:db8::/48', '2001:db8::/48', 48],
    ['::ffff:192.0.2.7', '192.0.2.7', 32],
    ['::ffff:192.0.2.0/120', '192.0.2.0/24', 24],
  ])('%s is %s', (input, text, prefix) => {
    const t = ok(input);
    expect(t.text).toBe(text);
    expect(t.prefix).toBe(prefix);
  });

  it.each([
    ['127.1', /dotted quad/],
    ['010.0.0.1', /dotted quad/],
    ['0x7f.0.0.1', /dotted quad/],
    ['256.0.0.1', /dotted quad/],
    ['fe80::1%eth0', /dotted quad/],
    ['192.0.2.7/24', /host bits set; the network is 192\.0\.2\.0\/24/],
    ['192.0.2.0/33', /out of range/],
    ['192.0.2.0/-1', /bad prefix/],
    ['192.0.2.0/', /bad prefix/],
    ['', /empty/],
    ['mail.example.com', /dotted quad/],
    ['192.0.2.7\u0000', /dotted quad/],
  ])('refuses %j', (input, why) => {
    const r = parseTarget(input);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(why);
  });

  it('refuses what is not a string', () => {
    for (const v of [null, undefined, 7, {}, ['192.0.2.7']]) expect(parseTarget(v).ok).toBe(false);
  });

  it('never throws, whatever the input', () => {
    fc.assert(
      fc.property(fc.oneof(fc.string(), fc.ipV4(), fc.ipV6(), fc.anything()), (s) => {
        parseTarget(s);
      }),
    );
  });

  it('canonical text parses to itself', () => {
    fc.assert(
      fc.property(fc.ipV6(), fc.integer({ min: 0, max: 128 }), (a, p) => {
        const first = parseTarget(a);
        if (!first.ok) return;
        const net = parseTarget(`${first.target.addr.toString()}/${p}`);
        if (!net.ok) return; // host bits set
        const again = parseTarget(net.target.text);
        expect(again.ok && again.target.text).toBe(net.target.text);
      }),
    );
  });
});

describe('overlaps', () => {
  it('a prefix and an address inside it overlap, either way round', () => {
    expect(overlaps(ok('10.0.0.0/16'), ok('10.0.5.7'))).toBe(true);
    expect(overlaps(ok('10.0.5.7'), ok('10.0.0.0/16'))).toBe(true);
    expect(overlaps(ok('10.1.0.0/16'), ok('10.0.5.7'))).toBe(false);
    expect(overlaps(ok('2001:db8::/32'), ok('2001:db8:1::1'))).toBe(true);
    expect(overlaps(ok('2001:db8::/32'), ok('10.0.0.1'))).toBe(false);
  });
});
