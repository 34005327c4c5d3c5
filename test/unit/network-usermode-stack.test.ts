/**
 * Which user-mode stack berth picks and the refusal when none can run: pasta preferred,
 * slirp4netns the fallback, a typed error naming the package or the tun device's fix.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync, chmodSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { UnsupportedError } from '../../lib/errors.js';
import { hostDefaultGateway } from '../../lib/network/usermode-network.js';
import { describeUserModeStack, requireUserModeStack } from '../../lib/network/usermode-stack.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-usermode-'));
const tun = join(dir, 'tun');
writeFileSync(tun, '');
chmodSync(tun, 0o666);
after(() => rmSync(dir, { recursive: true, force: true }));

describe('describeUserModeStack', () => {
  it('prefers pasta, falls back to slirp4netns, honours an explicit choice', () => {
    const both = { pasta: '/usr/bin/pasta', slirp4netns: '/usr/bin/slirp4netns' };
    assert.equal(describeUserModeStack(both, undefined, tun).stack, 'pasta');
    assert.equal(describeUserModeStack(both, 'slirp4netns', tun).stack, 'slirp4netns');
    const slirpOnly = describeUserModeStack({ pasta: null, slirp4netns: '/usr/bin/slirp4netns' }, undefined, tun);
    assert.equal(slirpOnly.stack, 'slirp4netns');
    assert.match(slirpOnly.reason, /pasta .* not installed/);
    assert.equal(describeUserModeStack({ pasta: '/usr/bin/pasta', slirp4netns: null }, 'slirp4netns', tun).stack, 'pasta');
  });

  it('without either: no stack, and requireUserModeStack throws an UnsupportedError naming the package', () => {
    const info = describeUserModeStack({ pasta: null, slirp4netns: null }, undefined, tun);
    assert.equal(info.stack, null);
    assert.throws(() => requireUserModeStack(info), (e: unknown) => e instanceof UnsupportedError && /apt-get install passt/.test(e.message));
  });

  it('a tun device the user cannot open is reported with its fix', () => {
    const info = describeUserModeStack({ pasta: '/usr/bin/pasta', slirp4netns: null }, undefined, join(dir, 'no-such-tun'));
    assert.equal(info.stack, null);
    assert.equal(info.tun.usable, false);
    assert.match(info.reason, /modprobe tun/);
    assert.throws(() => requireUserModeStack(info), UnsupportedError);
  });
});

describe('hostDefaultGateway', () => {
  it('reads the default route of /proc/net/route (little-endian hex)', () => {
    const table = join(dir, 'route');
    writeFileSync(table, [
      'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT',
      'eth0\t0002000A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0',
      'eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0',
    ].join('\n'));
    assert.equal(hostDefaultGateway(table), '192.0.2.1');
    writeFileSync(table, 'Iface\tDestination\tGateway\n');
    assert.equal(hostDefaultGateway(table), null);
  });
});
