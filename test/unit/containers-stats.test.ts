import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { computeStats } from '../../lib/containers/stats.js';

describe('stats arithmetic', () => {
  test('cpu percent is cgroup CPU time over wall time; unlimited memory reads as host memory', () => {
    const sample = (cpuNs: number, at: bigint, limit = Infinity) => ({ at, stats: { memory: { usage: 50, limit }, pids: { current: 3, limit: 100 }, cpu: { usageNanos: cpuNs }, blkio: { readBytes: 1, writeBytes: 2 } } });
    const s = computeStats(sample(0, 0n), sample(1.5e9, 1_000_000_000n), 1000, 4);
    assert.equal(Math.round(s.cpu.percent), 150);
    assert.equal(s.cpu.onlineCpus, 4);
    assert.equal(s.memory.limit, 1000);
    assert.equal(s.memory.percent, 5);
    assert.deepEqual(s.pids, { current: 3, limit: 100 });
    assert.deepEqual(s.blockIo, { readBytes: 1, writeBytes: 2 });
    assert.equal(computeStats(sample(0, 0n, 200), sample(0, 10n, 200), 1000).memory.limit, 200);
  });
});
