/**
 * Both packet-filter backends against the real kernel, each in a private network namespace
 * made for the test (`unshare --net`): the rules are accepted, re-applying is idempotent, and
 * the empty model removes everything. The host's rules are never touched.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';

const skip = kernelSkipReason();

function inPrivateNetns(backend: string): { before: string; after: string } | 'SKIP' {
  const r = spawnSync('unshare', ['--net', process.execPath, '--import', 'tsx', join(import.meta.dirname, 'network-firewall-child.ts'), backend], { encoding: 'utf8', timeout: 30_000 });
  assert.equal(r.status, 0, r.stderr);
  if (r.stdout.trim() === 'SKIP') return 'SKIP';
  const [before, after] = r.stdout.split('----\n');
  return { before: before!, after: after! };
}

describe('packet-filter backends', { skip }, () => {
  test('nftables: the table is accepted, applied once however often, and deleted when empty', (t) => {
    const r = inPrivateNetns('nftables');
    if (r === 'SKIP') return t.skip('nft is not installed');
    assert.equal(r.before.match(/table ip berth_feedc0ffee00/g)?.length, 1);
    assert.match(r.before, /ip daddr 127\.0\.0\.1 tcp dport 18080 dnat to 10\.1\.0\.2:80/);
    assert.match(r.before, /iifname "berth-bbbbbbbbb" drop/);
    assert.doesNotMatch(r.after, /berth/);
  });

  test('iptables: the chains are accepted, jumped to once, and removed when empty', (t) => {
    const r = inPrivateNetns('iptables');
    if (r === 'SKIP') return t.skip('iptables is not installed');
    assert.equal(r.before.match(/-A PREROUTING -m addrtype --dst-type LOCAL -j BERTH-FEEDC0FFEE00-DNAT/g)?.length, 1);
    assert.equal(r.before.match(/-A FORWARD -j BERTH-FEEDC0FFEE00-FWD/g)?.length, 1);
    assert.match(r.before, /-A BERTH-FEEDC0FFEE00-DNAT -d 127\.0\.0\.1\/32 -p tcp -m tcp --dport 18080 -j DNAT --to-destination 10\.1\.0\.2:80/);
    assert.match(r.before, /-A BERTH-FEEDC0FFEE00-POST -s 10\.1\.0\.0\/24 ! -o berth-aaaaaaaaa -j MASQUERADE/);
    assert.match(r.before, /-A BERTH-FEEDC0FFEE00-RAW -d 127\.0\.0\.0\/8 -i berth-aaaaaaaaa -j DROP/);
    assert.doesNotMatch(r.after, /BERTH/);
  });
});
