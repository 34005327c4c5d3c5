/**
 * lib/network/network-service.ts reconcile() against the recording fake of the native contract:
 * what it does when netlink refuses (not root, a seccomp'd host) and with links that are not
 * this runtime's.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NativeLinkInfo } from '../../lib/native.js';
import { NetworkService } from '../../lib/network/network-service.js';
import { NativeFake } from '../helpers/native-fake.js';

let dir: string;
before(() => { dir = mkdtempSync(join(tmpdir(), 'berth-netsvc-')); });
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
const root = () => join(dir, `r${n++}`);

test('netlink refused (EPERM): reconcile still completes, and deletes nothing', async () => {
  const fake = new NativeFake().fail('netListLinks', 'EPERM', { syscall: 'sendmsg(RTM_GETLINK)' });
  const report = await new NetworkService(root(), { native: fake.binding }).reconcile();
  assert.deepEqual(report, { staleEndpoints: 0, removedLinks: [] });
  assert.deepEqual(fake.calls.map((c) => [c.name, c.failed]), [['netListLinks', 'EPERM']]);
});

test('links that are not this runtime\'s are left alone, whatever their name', async () => {
  const link = (name: string, kind: string, alias: string): NativeLinkInfo => ({ index: 1, name, kind, alias, master: 0, mtu: 1500, up: true });
  const fake = new NativeFake().stub('netListLinks', async () => [
    link('docker0', 'bridge', ''),
    link('br-berth0', 'bridge', 'berth:another-runtime:net'),
    link('bv-0123456789ab', 'veth', 'berth:another-runtime:ep'),
  ]);
  const report = await new NetworkService(root(), { native: fake.binding }).reconcile();
  assert.deepEqual(report.removedLinks, []);
  assert.deepEqual(fake.names(), ['netListLinks'], 'no delete, no attach, no flush');
});
