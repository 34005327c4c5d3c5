import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { currentBootId, NetworkStore, type EndpointRecord, type NetworkRecord } from '../../lib/network/network-store.js';

describe('network state store', () => {
  it('writes networks durably and endpoints atomically; an endpoint table from another boot is empty', async () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-netstore-'));
    try {
      const store = new NetworkStore(root);
      const rec = { version: 1, id: 'a'.repeat(64), name: 'n', created: '2026-01-01T00:00:00Z' } as NetworkRecord;
      await store.writeNetwork(rec);
      await store.writeEndpoints({ version: 1, bootId: 'ignored', cursors: { [rec.id]: 5 }, endpoints: [{ id: 'e' } as EndpointRecord] });
      let state = await store.read();
      assert.deepEqual(state.networks.map((n) => n.name), ['n']);
      assert.equal(state.endpoints.bootId, currentBootId());
      assert.equal(state.endpoints.endpoints.length, 1);
      assert.deepEqual(readdirSync(store.dir).filter((n) => n.startsWith('.')), [], 'no temp file left');

      writeFileSync(store.endpointsPath, JSON.stringify({ version: 1, bootId: 'an-earlier-boot', cursors: { x: 7 }, endpoints: [{ id: 'old' }] }));
      state = await store.read();
      assert.deepEqual(state.endpoints.endpoints, []);
      assert.deepEqual(state.endpoints.cursors, { x: 7 }, 'allocation continues where it was');

      writeFileSync(store.endpointsPath, '{"version":1,"bo');
      assert.deepEqual((await store.readEndpoints()).endpoints, [], 'a torn table (power cut) holds only stale leases');

      writeFileSync(join(store.dir, '.endpoints.json.tmp-999999999-abcd'), 'x');
      await store.removeStaleTemps(() => false);
      assert.deepEqual(readdirSync(store.dir).filter((n) => n.startsWith('.')), []);
      await store.deleteNetwork(rec.id);
      assert.deepEqual((await store.read()).networks, []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
