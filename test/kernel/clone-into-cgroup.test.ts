import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { ContainerProcess } from '../../lib/launch/container-process.js';
import { planLaunch } from '../../lib/launch/launch-plan.js';
import { normalizeRunOptions } from '../../lib/launch/run-options.js';
import { native } from '../../lib/native.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { cgroup2Mount } from '../helpers/cgroup2-mount.js';


const mount = cgroup2Mount();
const skip = kernelSkipReason() || (mount ? false : 'no cgroup2 mount on this host');

describe('clone3(CLONE_INTO_CGROUP) on a cgroup2 hierarchy', { skip }, () => {
  it('places the container in its cgroup at birth, without writing cgroup.procs', async () => {
    const dir = `${mount}/berth-clone3-test-${process.pid}`;
    mkdirSync(dir);
    try {
      const { spec } = planLaunch({
        root: { kind: 'rootfs', dir: busyboxRootfs() },
        argv: ['sleep', '5'],
        options: normalizeRunOptions({}),
        stagingDir: '/run/berth/rootfs',
        cgroupProcs: [],
        cgroupMounts: [],
        stdinPiped: false,
      });
      spec.cgroupDir = dir;
      const proc = new ContainerProcess(await native().spawn(spec));
      try {
        const line = readFileSync(`/proc/${proc.pid}/cgroup`, 'utf8').split('\n').find((l) => l.startsWith('0::'));
        assert.equal(line, `0::/berth-clone3-test-${process.pid}`);
        assert.deepEqual(readFileSync(`${dir}/cgroup.procs`, 'utf8').trim().split('\n'), [String(proc.pid)]);
      } finally {
        proc.kill(9);
        assert.equal((await proc.exited).signal, 'SIGKILL');
      }
    } finally {
      for (let i = 0; i < 100; i++) {
        try {
          rmdirSync(dir);
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 10));
        }
      }
    }
  });
});
