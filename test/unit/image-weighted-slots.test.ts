import { test } from 'node:test';
import assert from 'node:assert/strict';
import { WeightedSlots } from '../../lib/image/weighted-slots.js';

test('the free slots go to the first callers; then the heaviest waiter first, equal weights in call order', async () => {
  const slots = new WeightedSlots(2);
  const order: string[] = [];
  const held = new Map<string, () => void>();
  const take = (name: string, weight: number) => slots.acquire(weight).then((release) => {
    order.push(name);
    held.set(name, release);
  });
  const all = [take('a', 1), take('b', 1), take('small', 1), take('big', 20), take('mid', 5), take('mid2', 5)];
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['a', 'b'], 'two slots, two holders');
  held.get('a')!();
  held.get('a')!(); // idempotent: one release frees one slot
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(order, ['a', 'b', 'big']);
  for (const name of ['b', 'big', 'mid', 'mid2']) {
    held.get(name)!();
    await new Promise((r) => setImmediate(r));
  }
  await Promise.all(all);
  assert.deepEqual(order, ['a', 'b', 'big', 'mid', 'mid2', 'small']);
});
