import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { EventHub, type RuntimeEvent } from '../../lib/containers/events.js';

describe('event hub', () => {
  const ev = (action: RuntimeEvent['action'], id = 'a'.repeat(64), extra: Record<string, string> = {}): RuntimeEvent => ({
    type: 'container', action, id, name: `n-${id.slice(0, 2)}`, time: new Date().toISOString(), attributes: { ...extra },
  });

  test('subscribers get matching events in order; close ends the iteration', async () => {
    const hub = new EventHub();
    const all = hub.subscribe();
    const starts = hub.subscribe({ filters: { action: ['start'] } });
    const labelled = hub.subscribe({ filters: { label: ['tier=web'] } });
    const byName = hub.subscribe({ filters: { container: ['n-bb'] } });
    hub.publish(ev('create'));
    hub.publish(ev('start', 'b'.repeat(64), { 'label.tier': 'web' }));
    hub.publish(ev('exit'));
    for (const s of [all, starts, labelled, byName]) s.close();
    const take = async (s: AsyncIterable<RuntimeEvent>) => {
      const out: string[] = [];
      for await (const e of s) out.push(e.action);
      return out;
    };
    assert.deepEqual(await take(all), ['create', 'start', 'exit']);
    assert.deepEqual(await take(starts), ['start']);
    assert.deepEqual(await take(labelled), ['start']);
    assert.deepEqual(await take(byName), ['start']);
  });

  test('a slow reader loses the oldest events beyond bufferSize, and is told so', async () => {
    const hub = new EventHub();
    const s = hub.subscribe({ bufferSize: 2 });
    for (const a of ['create', 'start', 'pause', 'unpause'] as const) hub.publish(ev(a));
    s.close();
    const out: string[] = [];
    for await (const e of s) out.push(e.action);
    assert.deepEqual(out, ['pause', 'unpause']);
    assert.equal(s.dropped, 2);
  });

  test('an aborted signal ends the subscription', async () => {
    const hub = new EventHub();
    const ac = new AbortController();
    const s = hub.subscribe({ signal: ac.signal });
    setTimeout(() => ac.abort(), 10);
    const out: RuntimeEvent[] = [];
    for await (const e of s) out.push(e);
    assert.equal(out.length, 0);
  });
});
