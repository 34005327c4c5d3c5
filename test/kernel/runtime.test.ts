/**
 * `Runtime` owns its services: two runtimes of one state directory in one process each have
 * their own, over the same locked state on disk, and each finds the other's running containers.
 * (A module-level table of network services used to hand both runtimes one service, whose
 * container resolver the second runtime silently took over.)
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../lib/runtime.js';
import { native } from '../../lib/native.js';
import { nftTableName } from '../../lib/network/firewall-rules.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';
import { networkSkipReason, testSubnet } from '../helpers/network-fixture.js';

const skip = networkSkipReason();

describe('two runtimes of one state directory in one process', { skip }, () => {
  let root: string;
  let a: Runtime;
  let b: Runtime;
  before(async () => {
    busyboxRootfs();
    root = mkdtempSync(join(tmpdir(), 'berth-rt2-'));
    a = await Runtime.open({ root });
    b = await Runtime.open({ root });
  });
  after(async () => {
    for (const s of await a.containers.list({ all: true }).catch(() => [])) await (await a.containers.get(s.Id)).remove({ force: true }).catch(() => {});
    for (const n of await a.networks.list().catch(() => [])) await n.remove().catch(() => {});
    await a.networks.reconcile().catch(() => {});
    const mark = `berth:${a.networks.tag}:`;
    for (const l of await native().netListLinks()) if (l.alias.startsWith(mark)) await native().netDeleteLink(l.name).catch(() => false);
    spawnSync('nft', ['delete', 'table', 'ip', nftTableName(a.networks.tag)], { stdio: 'ignore' });
    rmSync(root, { recursive: true, force: true });
  });

  test('each owns its services; events stay with the runtime that acted; the state is one', async () => {
    assert.notEqual(a.networks, b.networks);
    assert.notEqual(a.containers, b.containers);
    const seenByB: string[] = [];
    b.networks.on('create', (n) => seenByB.push(n.name));
    const net = await a.networks.create({ name: 'shared-root', subnet: testSubnet(91) });
    assert.deepEqual(seenByB, []);
    assert.equal((await b.networks.get('shared-root')).id, net.id);
  });

  test('container:<name> of a container one runtime started resolves through both', async () => {
    const holder = await a.containers.create({ image: { rootfs: busyboxRootfs() }, name: 'rt2-holder', cmd: ['sleep', '60'], network: 'shared-root' });
    await holder.start();
    try {
      for (const rt of [a, b]) {
        const r = await rt.run({ rootfs: busyboxRootfs() }, ['ip', '-o', '-4', 'addr', 'show', 'eth0'], { network: 'container:rt2-holder' });
        assert.equal(r.exitCode, 0, r.stderr);
        assert.match(r.stdout, /inet 10\.231\.91\.\d+/);
      }
    } finally {
      await holder.remove({ force: true });
    }
  });
});
