import fc from 'fast-check';
import { Partitioners } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { murmur2, partitionForKey } from '../../src/bus/partition.js';

describe('partitionForKey', () => {
  it("matches the hash vectors of Kafka's Java client (UtilsTest.testMurmur2)", () => {
    const vectors: [string, number][] = [
      ['21', -973932308],
      ['foobar', -790332482],
      ['a-little-bit-long-string', -985981536],
      ['a-little-bit-longer-string', -1486304829],
      ['lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8', -58897971],
      ['abc', 479470107],
    ];
    for (const [key, hash] of vectors) expect(murmur2(Buffer.from(key)), key).toBe(hash);
  });

  it("puts every key on the same partition as kafkajs' DefaultPartitioner", () => {
    const kafkajs = Partitioners.DefaultPartitioner();
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', maxLength: 64 }),
        fc.integer({ min: 1, max: 64 }),
        (key, n) => {
          const partitionMetadata = Array.from({ length: n }, (_, i) => ({
            partitionId: i,
            leader: 0,
            partitionErrorCode: 0,
            replicas: [0],
            isr: [0],
            offlineReplicas: [],
          }));
          const expected = kafkajs({ topic: 't', partitionMetadata, message: { key, value: null } });
          expect(partitionForKey(key, n)).toBe(expected);
        },
      ),
      { numRuns: 2000 },
    );
  });
});
