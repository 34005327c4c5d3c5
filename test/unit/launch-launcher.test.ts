/**
 * lib/launch/launcher.ts: what a launch does when the native spawn fails, against the recording
 * fake of the native contract (no kernel, no cgroup): every resource the prepared launch holds is
 * released, and the failure arrives as a typed SystemError.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fstatSync, openSync } from 'node:fs';
import type { Cgroup } from '../../lib/cgroup/index.js';
import { isSystemError } from '../../lib/errors.js';
import { spawnPrepared, type LaunchRequest, type PreparedLaunch } from '../../lib/launch/launcher.js';
import type { LaunchPlan } from '../../lib/launch/launch-plan.js';
import type { NormalizedRunOptions } from '../../lib/launch/run-options.js';
import { StdioMode, type NativeLaunchSpec } from '../../lib/native.js';
import type { PreparedNetwork } from '../../lib/network/attach.js';
import { NativeFake, nativeFailure } from '../helpers/native-fake.js';

const spec: NativeLaunchSpec = {
  cloneFlags: 0,
  newCgroupNs: false,
  cgroupProcs: [],
  mounts: [],
  loopbackUp: false,
  rlimits: [],
  uid: 0,
  gid: 0,
  groups: [],
  capabilities: { bounding: 0n, effective: 0n, permitted: 0n, inheritable: 0n, ambient: 0n },
  noNewPrivileges: true,
  dieWithParent: true,
  cwd: '/',
  argv: ['/bin/app'],
  env: [],
  execCandidates: ['/bin/app'],
  execFd: -1,
  stdio: [{ mode: StdioMode.Null }, { mode: StdioMode.Pipe }, { mode: StdioMode.Pipe }],
  tty: false,
};

/** A prepared launch whose every release is counted. */
function prepared() {
  const counts = { abandon: 0, closeFds: 0, release: 0, started: 0 };
  const network = {
    closeFds: () => void counts.closeFds++,
    release: async () => void counts.release++,
    started: async () => void counts.started++,
  } as Partial<PreparedNetwork> as PreparedNetwork;
  const launch: PreparedLaunch = {
    cgroup: { paths: ['/sys/fs/cgroup/berth/t'], version: 2 } as Partial<Cgroup> as Cgroup,
    plan: { spec: structuredClone(spec), hostname: 't' } as Partial<LaunchPlan> as LaunchPlan,
    network,
    abandon: async () => void counts.abandon++,
  };
  return { launch, counts };
}

function request(fake: NativeFake, extra: Partial<LaunchRequest> = {}): LaunchRequest {
  return {
    id: 't',
    root: { kind: 'host' },
    argv: ['app'],
    options: {} as NormalizedRunOptions,
    native: fake.binding,
    ...extra,
  };
}

test('ENOSPC from clone: a SystemError with the namespace-limit hint; network fds closed, launch abandoned', async () => {
  const fake = new NativeFake().fail('spawn', 'ENOSPC', { syscall: 'clone' });
  const { launch, counts } = prepared();
  await assert.rejects(spawnPrepared(request(fake), launch), (e: unknown) => {
    assert.ok(isSystemError(e), 'typed');
    assert.equal(e.code, 'ENOSPC');
    assert.equal(e.syscall, 'clone');
    assert.match(e.message, /namespace limit reached/);
    assert.ok(isSystemError(e.cause), 'the native error is the cause');
    return true;
  });
  assert.deepEqual(counts, { abandon: 1, closeFds: 1, release: 0, started: 0 });
  assert.deepEqual(fake.names(), ['spawn']);
});

test('EBUSY from a mount in the child: reported with its syscall and path, not retried', async () => {
  const fake = new NativeFake().fail('spawn', 'EBUSY', { syscall: 'mount', path: '/run/berth/rootfs' });
  const { launch, counts } = prepared();
  await assert.rejects(spawnPrepared(request(fake), launch), (e: unknown) => isSystemError(e) && e.code === 'EBUSY' && e.syscall === 'mount' && e.path === '/run/berth/rootfs');
  assert.equal(fake.callsOf('spawn').length, 1, 'a failed setup is not retried blindly');
  assert.equal(counts.abandon, 1);
});

test('a detached launch asks the spawn not to die with its parent', async () => {
  const fake = new NativeFake().fail('spawn', 'EAGAIN', { syscall: 'clone' });
  const { launch } = prepared();
  await assert.rejects(spawnPrepared(request(fake, { detached: true }), launch));
  assert.equal((fake.calls[0]!.args[0] as NativeLaunchSpec).dieWithParent, false);
});

test('exec failure is a result (127), not an error: stdio closed, network released, cgroup kept for the caller', async () => {
  const stdio: [number, number, number] = [openSync('/dev/null', 'r'), openSync('/dev/null', 'r'), openSync('/dev/null', 'r')];
  const fake = new NativeFake().stub('spawn', async () => ({
    pid: 4242,
    pidfd: -1,
    stdio,
    ttyMaster: -1,
    execFailed: Object.assign(nativeFailure('ENOENT', 'execve', '/bin/app'), { notFound: true }),
  }));
  const { launch, counts } = prepared();
  const launched = await spawnPrepared(request(fake), launch);
  assert.equal(launched.process, null);
  assert.equal(launched.execFailure?.exitCode, 127);
  assert.match(launched.execFailure!.message, /executable file not found/);
  assert.equal(launched.cgroup, launch.cgroup);
  assert.deepEqual(counts, { abandon: 0, closeFds: 1, release: 1, started: 0 });
  for (const fd of stdio) assert.throws(() => fstatSync(fd), (e: NodeJS.ErrnoException) => e.code === 'EBADF', `fd ${fd} closed`);
});
