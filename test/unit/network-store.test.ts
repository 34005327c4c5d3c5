import assert from 'node:assert/strict';
import { appendFileSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
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

      writeFileSync(store.endpointsPath, `${JSON.stringify({ version: 2, bootId: 'an-earlier-boot' })}\n${JSON.stringify({ cursor: ['x', 7] })}\n${JSON.stringify({ put: { id: 'old' } })}\n`);
      state = await store.read();
      assert.deepEqual(state.endpoints.endpoints, []);
      assert.deepEqual(state.endpoints.cursors, { x: 7 }, 'allocation continues where it was');

      writeFileSync(store.endpointsPath, `${JSON.stringify({ version: 2, bootId: currentBootId() })}\n${JSON.stringify({ put: { id: 'a' } })}\n{"put":{"id":"b"`);
      // (writers only append or rename: a file rewritten in place is read by a fresh reader)
      assert.deepEqual((await new NetworkStore(root).readEndpoints()).endpoints.map((e) => e.id), ['a'], 'a line still being written (or torn) is not replayed');

      writeFileSync(join(store.dir, '.endpoints.json.tmp-999999999-abcd'), 'x');
      await store.removeStaleTemps(() => false);
      assert.deepEqual(readdirSync(store.dir).filter((n) => n.startsWith('.')), []);
      await store.deleteNetwork(rec.id);
      assert.deepEqual((await store.read()).networks, []);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a join or leave appends its change; another process replays only what was appended; dead lines are compacted', async () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-netstore-'));
    try {
      const a = new NetworkStore(root);
      const b = new NetworkStore(root); // another process's view of the same state dir
      const ep = (id: string, ip: string) => ({ id, networkId: 'n', containerId: id, ip, ports: [] }) as unknown as EndpointRecord;
      let t = await a.readEndpoints();
      for (let i = 0; i < 250; i++) t.endpoints.push(ep(`e${i}`, `10.0.${i >> 8}.${i & 255}`));
      t.cursors.n = 250;
      await a.writeEndpoints(t);
      const full = statSync(a.endpointsPath).size;
      assert.equal((await b.readEndpoints()).endpoints.length, 250);

      // One more joins: the log grows by its line, not by a rewritten table.
      t = await b.readEndpoints();
      t.endpoints.push(ep('joiner', '10.0.1.1'));
      await b.writeEndpoints(t);
      const grown = statSync(a.endpointsPath).size - full;
      assert.ok(grown > 0 && grown < 400, `a join appended ${grown} bytes`);
      t = await a.readEndpoints();
      assert.equal(t.endpoints.length, 251, 'the first view replays the join');
      assert.throws(() => {
        t.endpoints[0]!.pid = { pid: 1, startTime: '1' };
      }, TypeError, 'records from the store are frozen: a change replaces the record');
      t.endpoints[0] = { ...t.endpoints[0]!, pid: { pid: 1, startTime: '1' } };
      t.endpoints = t.endpoints.filter((e) => e.id !== 'joiner');
      await a.writeEndpoints(t);
      const after = await b.readEndpoints();
      assert.equal(after.endpoints.length, 250);
      assert.deepEqual(after.endpoints.find((e) => e.id === 'e0')!.pid, { pid: 1, startTime: '1' }, 'a changed record is replayed');
      assert.equal(after.cursors.n, 250);

      // Churn: the log is rewritten (a new inode) once dead lines outnumber live ones.
      const ino = statSync(a.endpointsPath).ino;
      for (let i = 0; i < 400; i++) {
        const s = await (i % 2 ? a : b).readEndpoints();
        s.endpoints.push(ep(`c${i}`, '10.0.2.1'));
        await (i % 2 ? a : b).writeEndpoints(s);
        const s2 = await (i % 2 ? b : a).readEndpoints();
        s2.endpoints = s2.endpoints.filter((e) => e.id !== `c${i}`);
        await (i % 2 ? b : a).writeEndpoints(s2);
      }
      assert.notEqual(statSync(a.endpointsPath).ino, ino, 'compacted');
      assert.ok(statSync(a.endpointsPath).size < 3 * full, 'the log stays within a few times the live table');
      assert.deepEqual((await a.readEndpoints()).endpoints.map((e) => e.id).sort(), (await b.readEndpoints()).endpoints.map((e) => e.id).sort());
      assert.equal((await new NetworkStore(root).readEndpoints()).endpoints.length, 250, 'a fresh process reads the same table');
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('a torn last line (a failed append) is not glued to the next change: the log is rewritten', async () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-netstore-'));
    try {
      const store = new NetworkStore(root);
      const t = await store.readEndpoints();
      t.endpoints.push({ id: 'a' } as EndpointRecord);
      await store.writeEndpoints(t);
      appendFileSync(store.endpointsPath, '{"put":{"id":"to');
      const u = await store.readEndpoints();
      u.endpoints.push({ id: 'b' } as EndpointRecord);
      await store.writeEndpoints(u);
      assert.deepEqual((await new NetworkStore(root).readEndpoints()).endpoints.map((e) => e.id).sort(), ['a', 'b'], 'the change after the torn line is kept');
      assert.ok(readFileSync(store.endpointsPath, 'utf8').endsWith('\n'));
      assert.doesNotMatch(readFileSync(store.endpointsPath, 'utf8'), /"to/);
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });

  it('reads the whole-file table of an earlier version until the first write replaces it', async () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-netstore-'));
    try {
      const store = new NetworkStore(root);
      await store.init();
      writeFileSync(store.legacyEndpointsPath, JSON.stringify({ version: 1, bootId: currentBootId(), cursors: { n: 3 }, endpoints: [{ id: 'kept' }] }));
      const t = await store.readEndpoints();
      assert.deepEqual(t.endpoints.map((e) => e.id), ['kept']);
      await store.writeEndpoints(t);
      assert.equal(existsSync(store.legacyEndpointsPath), false);
      const again = await new NetworkStore(root).readEndpoints();
      assert.deepEqual(again.endpoints.map((e) => e.id), ['kept']);
      assert.deepEqual(again.cursors, { n: 3 });
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
