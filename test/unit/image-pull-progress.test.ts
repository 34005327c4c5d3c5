import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { PROGRESS_INTERVAL_MS, ProgressCoalescer } from '../../lib/image/pull-progress.js';

/** A clock the test moves by hand. */
function fakeClock() {
  let t = 1000;
  return { now: () => t, advance: (ms: number) => (t += ms) };
}

describe('pull progress coalescing', () => {
  it('lets at most one byte count per interval through, per layer', () => {
    const clock = fakeClock();
    const c = new ProgressCoalescer({ now: clock.now });
    const total = 23 * 1024 * 1024;
    assert.equal(c.admit(0, 'downloading', 0, total), true, 'a new state always passes');
    let passed = 0;
    // 368 chunks of 64 KiB arriving 1 ms apart: 368 ms of downloading.
    for (let done = 65536; done < total; done += 65536) {
      clock.advance(1);
      if (c.admit(0, 'downloading', done, total)) passed++;
    }
    assert.equal(passed, Math.floor(368 / PROGRESS_INTERVAL_MS));
  });

  it('passes every state change, and the final count even inside the interval', () => {
    const clock = fakeClock();
    const c = new ProgressCoalescer({ now: clock.now });
    const seen: string[] = [];
    const step = (state: Parameters<ProgressCoalescer['admit']>[1], done: number) => {
      if (c.admit(0, state, done, 100)) seen.push(`${state}:${done}`);
    };
    step('waiting', 0);
    step('downloading', 0);
    step('downloading', 10);
    step('downloading', 100); // final count: passes at once
    step('verifying', 100);
    step('extracting', 100);
    step('done', 100);
    assert.deepEqual(seen, ['waiting:0', 'downloading:0', 'downloading:100', 'verifying:100', 'extracting:100', 'done:100']);
  });

  it('keeps layers apart: one layer\'s events do not hold back another\'s', () => {
    const clock = fakeClock();
    const c = new ProgressCoalescer({ now: clock.now });
    assert.equal(c.admit(0, 'downloading', 1, 10), true);
    assert.equal(c.admit(1, 'downloading', 1, 10), true);
    clock.advance(50);
    assert.equal(c.admit(0, 'downloading', 2, 10), false);
    assert.equal(c.admit(1, 'downloading', 2, 10), false);
    clock.advance(50);
    assert.equal(c.admit(0, 'downloading', 3, 10), true);
    assert.equal(c.admit(1, 'cached', 10, 10), true);
  });
});
