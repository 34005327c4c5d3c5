/**
 * How a container's root is opened, with the recording fake: a live root only when the pid
 * still is the recorded PID 1 after the open; otherwise (and for stopped containers) a detached
 * overlay under the container's lock, released with the root.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { openContainerRoot, type ContainerRootAccess } from '../../lib/containers/container-root.js';
import { initialState, type ContainerRecord, type ContainerState } from '../../lib/containers/container-record.js';
import { processStartTime } from '../../lib/state/process-identity.js';
import { ConflictError, UnsupportedError } from '../../lib/errors.js';
import { NativeFake } from '../helpers/native-fake.js';

function record(over: Partial<ContainerRecord> = {}): ContainerRecord {
  return {
    version: 1, id: 'a'.repeat(64), name: 'web', created: '', source: { kind: 'rootfs', dir: '/rootfs' }, cmd: null, entrypoint: null, argv: ['sh'], env: [],
    options: {}, mounts: [{ type: 'bind', source: '/srv', target: '/data' }], hostname: 'h', labels: {}, restart: { name: 'no', maximumRetryCount: 0 }, autoRemove: false,
    healthcheck: null, lifetime: 'process', stopSignal: 'SIGTERM', stopTimeoutMs: 10_000, openStdin: false, log: { maxSize: 0, maxFiles: 1 },
    ...over,
  } as ContainerRecord;
}

function access(rec: ContainerRecord, state: ContainerState, locks: string[]): ContainerRootAccess {
  return {
    read: async () => ({ record: rec, state }),
    lock: async () => {
      locks.push('held');
      return { release: () => locks.push('released') };
    },
    upperDir: '/state/upper',
    workDir: '/state/work',
  };
}

function fake(): NativeFake {
  const f = new NativeFake();
  f.stub('fsOpenRoot', () => 41);
  f.stub('fsMountOverlay', () => 42);
  f.stub('fsCloseRoot', () => undefined);
  return f;
}

describe('openContainerRoot', () => {
  test('a running container: /proc/<pid>/root, followed inside it, when the pid is still its PID 1', async () => {
    const f = fake();
    const state = { ...initialState(), status: 'running' as const, pid: process.pid, pidStartTime: processStartTime(process.pid)! };
    const locks: string[] = [];
    const opened = await openContainerRoot(access(record(), state, locks), 'write', f.binding);
    assert.equal(opened.live, true);
    assert.deepEqual(f.callsOf('fsOpenRoot')[0]!.args, [`/proc/${process.pid}/root`, { follow: true, crossMounts: true }]);
    assert.deepEqual(opened.hiddenMounts, []);
    assert.deepEqual(locks, [], 'a running container is not locked');
    opened.close();
    assert.deepEqual(f.callsOf('fsCloseRoot').map((c) => c.args[0]), [41]);
  });

  test('a pid whose start time changed (reused) is closed unused; the stopped path takes over', async () => {
    const f = fake();
    const state = { ...initialState(), status: 'running' as const, pid: process.pid, pidStartTime: 'not-this-process' };
    const locks: string[] = [];
    const opened = await openContainerRoot(access(record(), state, locks), 'read', f.binding);
    assert.equal(opened.live, false);
    assert.deepEqual(f.callsOf('fsCloseRoot').map((c) => c.args[0]), [41, 41], 'the live root was closed both times it was opened');
    assert.deepEqual(f.callsOf('fsMountOverlay')[0]!.args, [{ lowerDirs: ['/rootfs'], upperDir: '/state/upper', workDir: '/state/work', readonly: true, userxattr: false }, { follow: true }]);
    assert.deepEqual(opened.hiddenMounts, ['/data']);
    assert.deepEqual(locks, ['held']);
    opened.close();
    assert.deepEqual(locks, ['held', 'released']);
  });

  test('a stopped container: a detached overlay, writable unless readonlyRootfs, userxattr in a user namespace', async () => {
    const f = fake();
    const locks: string[] = [];
    const maps = { uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }], gidMap: [{ containerId: 0, hostId: 100000, size: 65536 }] };
    const rec = record({ options: { readonlyRootfs: true, userns: maps } as ContainerRecord['options'] });
    const opened = await openContainerRoot(access(rec, { ...initialState(), status: 'exited' }, locks), 'write', f.binding);
    assert.deepEqual(f.callsOf('fsMountOverlay')[0]!.args[0], { lowerDirs: ['/rootfs'], upperDir: '/state/upper', workDir: '/state/work', readonly: true, userxattr: true });
    assert.equal(opened.uids.toHost(0), 100000);
    opened.close();
  });

  test('refusals release the lock: a stopped host container, a container being removed', async () => {
    const locks: string[] = [];
    await assert.rejects(openContainerRoot(access(record({ source: { kind: 'host' } }), initialState(), locks), 'read', fake().binding), UnsupportedError);
    assert.deepEqual(locks, ['held', 'released']);
    await assert.rejects(openContainerRoot(access(record(), { ...initialState(), status: 'removing' }, []), 'read', fake().binding), ConflictError);
  });

  test('a failed mount releases the lock', async () => {
    const f = fake();
    f.fail('fsMountOverlay', 'EINVAL', { syscall: 'fsconfig(lowerdir+)' });
    const locks: string[] = [];
    await assert.rejects(openContainerRoot(access(record(), initialState(), locks), 'read', f.binding), UnsupportedError);
    assert.deepEqual(locks, ['held', 'released']);
  });
});
