import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MountOpKind } from '../../lib/native.js';
import { netnsSysctlOps, pingGroupRange, PING_GROUP_RANGE } from '../../lib/network/netns-sysctls.js';

describe('sysctls of a container\'s own network namespace', () => {
  it('ping_group_range covers every group, or the groups a user namespace maps from 0', () => {
    assert.equal(pingGroupRange(), '0 2147483647');
    assert.equal(pingGroupRange('0 1073741824 65536\n'), '0 65535');
    assert.equal(pingGroupRange('0 100000 1000\n1000 200000 1000\n'), '0 1999', 'contiguous ranges join');
    assert.equal(pingGroupRange('1000 200000 10\n0 100000 1000\n'), '0 1009', 'in any order');
    assert.equal(pingGroupRange('0 100000 1000\n5000 200000 10\n'), '0 999', 'a gap ends the range: unmapped gids are refused (EINVAL)');
    assert.equal(pingGroupRange('0 0 4294967295\n'), '0 2147483647', 'never past the kernel\'s GID_T_MAX');
  });

  it('is written only where the container owns the namespace', () => {
    for (const kind of ['none', 'bridge'] as const) {
      assert.deepEqual(netnsSysctlOps(kind), [{ kind: MountOpKind.WriteHost, target: PING_GROUP_RANGE, content: '0 2147483647' }]);
    }
    assert.equal(netnsSysctlOps('bridge', '0 1073741824 65536\n')[0]!.content, '0 65535');
    assert.deepEqual(netnsSysctlOps('host'), [], 'the host\'s own sysctl');
    assert.deepEqual(netnsSysctlOps('container'), [], 'another container\'s namespace');
  });
});
