import { describe, expect, it } from 'vitest';
import { packTopic, unpackTopic } from '../../src/bus/kafka-thread-wire.js';
import type { OutMessage } from '../../src/bus/kafka-transport.js';

describe('producer thread wire format', () => {
  it('packs records into one buffer and unpacks the same keys, values, tombstones and headers', () => {
    const list: OutMessage[] = [
      { key: '192.0.2.1', value: '{"kind":"connect"}' },
      { key: null, value: Buffer.from([0, 1, 2, 255]) },
      { key: 'gone', value: null },
      { key: 'k', value: '' },
      { key: 'ユーザー', value: 'ünïcödé ✓', headers: { truncated_bytes: '1048576' } },
    ];
    const [packed, transfer] = packTopic('mail.events', list);
    expect(packed.topic).toBe('mail.events');
    expect(transfer).toHaveLength(2);
    // One buffer holds every value byte; a tombstone adds none.
    expect(packed.values.byteLength).toBe(
      Buffer.byteLength('{"kind":"connect"}') + 4 + 0 + Buffer.byteLength('ünïcödé ✓'),
    );
    const out = unpackTopic(structuredClone(packed));
    expect(out.map((m) => m.key)).toEqual(list.map((m) => m.key));
    expect(out[0]!.value!.toString()).toBe('{"kind":"connect"}');
    expect([...(out[1]!.value as Buffer)]).toEqual([0, 1, 2, 255]);
    expect(out[2]!.value).toBeNull();
    expect((out[3]!.value as Buffer).length).toBe(0);
    expect(out[4]!.value!.toString()).toBe('ünïcödé ✓');
    expect(out[4]!.headers).toEqual({ truncated_bytes: '1048576' });
    expect(out[0]!.headers).toBeUndefined();
  });

  it('packs an empty list', () => {
    const [packed] = packTopic('t', []);
    expect(unpackTopic(packed)).toEqual([]);
  });
});
