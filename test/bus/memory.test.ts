import { describe } from 'vitest';
import { MemoryBus } from '../../src/bus/memory.js';
import { defineBusContract } from './contract.js';

describe('memory bus: contract', () => {
  defineBusContract(async () => new MemoryBus({ partitions: 4 }), { exactCompaction: true, timeoutMs: 5000 });
});
