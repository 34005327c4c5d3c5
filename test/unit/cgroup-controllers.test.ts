/**
 * Usable controllers over fixture mountinfo and cgroup files: v1 hierarchies mounted or not,
 * writable or not; v2 controllers enabled, merely offered (with the echo that enables them) or
 * absent; no cgroup filesystem at all reported, not thrown.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { describeCgroups } from '../../lib/cgroup/controllers.js';

const line = (id: number, mount: string, fstype: string, opts: string) => `${id} 1 0:${id} / ${mount} rw,nosuid - ${fstype} cgroup ${opts}`;

const hybrid = [
  line(30, '/sys/fs/cgroup/unified', 'cgroup2', 'rw'),
  line(31, '/sys/fs/cgroup/memory', 'cgroup', 'rw,memory'),
  line(32, '/sys/fs/cgroup/cpu,cpuacct', 'cgroup', 'rw,cpu,cpuacct'),
  line(33, '/sys/fs/cgroup/pids', 'cgroup', 'rw,pids'),
  line(34, '/sys/fs/cgroup/devices', 'cgroup', 'rw,devices'),
].join('\n');

describe('describeCgroups', () => {
  it('v1: mounted, writable hierarchies are usable; the others name the mount that would fix them', () => {
    const info = describeCgroups({ mountinfo: hybrid, writable: () => true });
    assert.equal(info.version, 1);
    assert.equal(info.mode, 'hybrid');
    assert.deepEqual(info.controllers.cpu, { usable: true, detail: '/sys/fs/cgroup/cpu,cpuacct' });
    assert.equal(info.controllers.memory.usable, true);
    assert.equal(info.controllers.cpuset.usable, false);
    assert.equal(info.controllers.cpuset.fix, 'mount -t cgroup -o cpuset cgroup /sys/fs/cgroup/cpuset');
    assert.match(info.controllers.io.detail, /blkio hierarchy is not mounted/);
  });

  it('v1 without write access: nothing usable, and no fix a user could apply', () => {
    const info = describeCgroups({ mountinfo: hybrid, writable: () => false });
    assert.equal(info.controllers.memory.usable, false);
    assert.equal(info.controllers.memory.fix, undefined);
    assert.match(info.controllers.memory.detail, /not writable.*no delegation/);
  });

  it("v2: enabled in the root's subtree_control is usable; offered only gives the echo; devices is a BPF program", () => {
    const files: Record<string, string> = {
      '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory pids',
      '/sys/fs/cgroup/cgroup.subtree_control': 'cpu memory pids',
    };
    const info = describeCgroups({ mountinfo: line(30, '/sys/fs/cgroup', 'cgroup2', 'rw'), read: (p) => files[p], writable: () => true });
    assert.equal(info.version, 2);
    assert.equal(info.mode, 'unified');
    assert.equal(info.controllers.memory.usable, true);
    assert.deepEqual(info.controllers.io, { usable: false, detail: 'offered but not enabled in /sys/fs/cgroup/cgroup.subtree_control', fix: 'echo +io > /sys/fs/cgroup/cgroup.subtree_control' });
    assert.equal(info.controllers.devices.usable, true);
    const noHugetlb = describeCgroups({ mountinfo: line(30, '/sys/fs/cgroup', 'cgroup2', 'rw'), read: (p) => (p.endsWith('controllers') ? 'cpu' : ''), writable: () => true });
    assert.match(noHugetlb.controllers.pids.detail, /kernel does not offer pids/);
  });

  it('without any cgroup filesystem: version null and the reason, not an exception', () => {
    const info = describeCgroups({ mountinfo: '22 1 0:5 / /proc rw - proc proc rw' });
    assert.equal(info.version, null);
    assert.equal(info.mode, 'none');
    assert.match(info.detail, /no cgroup filesystem is mounted/);
    assert.equal(info.controllers.memory.usable, false);
  });
});
