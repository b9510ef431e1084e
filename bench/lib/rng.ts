/**
 * Seeded xorshift32: the same seed gives the same sequence, so generated bench data (and the
 * fuzzed test records that use it) are the same from run to run.
 */
export function rng(seed: number): () => number {
  let s = seed >>> 0 || 1;
  return () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x100000000;
  };
}
