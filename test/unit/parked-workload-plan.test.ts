import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { parkedExecContext, parkedWorkloadPlan, planExec } from '../../lib/launch/exec-plan.js';
import { planLaunch, withCommand, type LaunchContext } from '../../lib/launch/launch-plan.js';
import { normalizeRunOptions } from '../../lib/launch/run-options.js';
import type { NativeLaunchSpec } from '../../lib/native.js';

// The pooled workload's exec plan is derived from the parked launch's plan instead of planned
// again (lib/launch/exec-plan.ts `parkedWorkloadPlan`). Planning it again is the reference:
// the two must agree field for field, whatever the sandbox's options, or a pooled command would
// run with another user, env, workdir, limits or capabilities than a planned one.

function fakeRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-parkplan-'));
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\napp:x:1000:\nstaff:x:50:app\n');
  return dir;
}

/** Without the keys whose value is undefined: `{ a: undefined }` and `{}` plan the same. */
function defined(spec: NativeLaunchSpec): Record<string, unknown> {
  return Object.fromEntries(Object.entries(spec).filter(([, v]) => v !== undefined));
}

function both(runOptions: Parameters<typeof normalizeRunOptions>[0], image?: { Env?: string[]; User?: string; WorkingDir?: string }) {
  const root = { kind: 'rootfs' as const, dir: fakeRoot() };
  const options = normalizeRunOptions(runOptions);
  // As ParkedSandbox.start() launches: PID 1 is `berth-exec park` on its control socket.
  const launchCtx: LaunchContext = {
    root,
    argv: ['park'],
    options: { ...options, tty: false },
    stagingDir: '/run/berth/rootfs',
    cgroupProcs: ['/sys/fs/cgroup/pids/berth/x/cgroup.procs'],
    cgroupMounts: [],
    initFd: 7,
    park: { controlFd: 9 },
    stdinPiped: false,
    ...(image?.Env ? { imageEnv: image.Env } : {}),
    ...(image?.WorkingDir ? { imageWorkdir: image.WorkingDir } : {}),
    ...(image?.User ? { imageUser: image.User } : {}),
  };
  const launched = planLaunch(launchCtx);
  const sandbox = { root, options, ...(image ? { image: { config: image } } : {}) };
  const planned = planExec(parkedExecContext(sandbox, launched, ['/bin/true'], {}, false, '/run/berth/rootfs', []), { pidfd: -1, namespaces: 0, helperFd: -1 });
  const argv = ['python3', '-c', 'print(1)'];
  return {
    derived: defined(withCommand(parkedWorkloadPlan(launched), argv, true)),
    planned: defined(withCommand({ ...planned, seccomp: null }, argv, true)),
    launched,
  };
}

describe('parkedWorkloadPlan', () => {
  const cases: Array<[string, Parameters<typeof normalizeRunOptions>[0], { Env?: string[]; User?: string; WorkingDir?: string }?]> = [
    ['defaults', {}],
    ['a named user with supplementary groups', { user: 'app' }],
    ['a numeric user and group', { user: '1234:5678' }],
    ['env, workdir and hostname', { env: { A: '1', PATH: '/opt/bin:/bin' }, workdir: '/srv', hostname: 'box' }],
    ['capabilities added and dropped', { capAdd: ['NET_ADMIN', 'SYS_PTRACE'], capDrop: ['CHOWN'] }],
    ['ulimits', { ulimits: [{ name: 'nofile', soft: 64, hard: 128 }] }],
    ['limits and a network', { memory: '64m', pids: 32, network: 'none' }],
    ['privileged', { privileged: true }],
    ['an explicit user namespace', { userns: { uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }], gidMap: [{ containerId: 0, hostId: 100000, size: 65536 }] } }],
  ];
  for (const [name, options, image] of cases) {
    it(`equals the planned exec: ${name}`, () => {
      const { derived, planned } = both(options, image);
      assert.deepEqual(derived, planned);
    });
  }

  it("equals the planned exec with an image's env, user and workdir", () => {
    const { derived, planned } = both({}, { Env: ['PATH=/usr/local/bin:/usr/bin:/bin', 'LANG=C.UTF-8'], User: 'app', WorkingDir: '/app' });
    assert.deepEqual(derived, planned);
    assert.equal(derived['uid'], 1000);
  });

  it('drops what only the parked PID 1 holds: its three extra capabilities, its root user, the namespaces', () => {
    const { derived, launched, planned } = both({ user: 'app', capDrop: ['SETUID', 'SETGID', 'SETPCAP'] });
    assert.deepEqual(derived, planned);
    const caps = derived['capabilities'] as NativeLaunchSpec['capabilities'];
    assert.notEqual(launched.spec.capabilities.bounding, caps.bounding);
    assert.equal(caps.bounding, launched.capabilityMask);
    assert.equal(launched.spec.uid, 0);
    assert.equal(derived['uid'], 1000);
    assert.equal(derived['cloneFlags'], 0);
    assert.deepEqual(derived['mounts'], []);
    assert.equal(derived['seccomp'], null);
    assert.equal(derived['execFd'], -1);
  });
});
