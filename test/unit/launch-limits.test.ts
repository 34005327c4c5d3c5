import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { AbsentCgroup } from '../../lib/cgroup/absent.js';
import { CgroupV1Driver, type CgroupDriver } from '../../lib/cgroup/index.js';
import { toSystemError } from '../../lib/cgroup/types.js';
import { UnsupportedError, ValidationError, SystemError } from '../../lib/errors.js';
import { createLaunchCgroup } from '../../lib/launch/limits.js';
import { normalizeRunOptions } from '../../lib/launch/run-options.js';
import { FakeCgroup1Fs } from '../helpers/fake-cgroupfs.js';

const MOUNTS = ['memory', 'cpu', 'pids', 'devices', 'cpuset'];

/** A v1 fixture whose mkdir the "kernel" refuses with `code`, as cgroupfs does for a non-root user (EACCES) or when mounted read-only (EROFS). */
function refusingDriver(code: string): { driver: CgroupV1Driver; fake: FakeCgroup1Fs } {
  const fake = new FakeCgroup1Fs({ mounts: MOUNTS });
  fake.mkdir = (path: string) => {
    throw toSystemError(Object.assign(new Error(code), { code, errno: code === 'EROFS' ? -30 : -13 }), 'mkdir', path);
  };
  const driver = new CgroupV1Driver({ hierarchies: MOUNTS.map((c) => ({ controllers: [c], mountPoint: `${fake.root}/${c}` })), fs: fake, cpuCount: 4 });
  return { driver, fake };
}

const limitsOf = (o: { memory?: number; pids?: number; cpus?: number }) => ({ ...o, pids: o.pids ?? 4096 });

test('strict: memory asked where cgroups cannot be created is an UnsupportedError naming the option, reason and fix', (t) => {
  const { driver, fake } = refusingDriver('EACCES');
  t.after(() => rmSync(fake.root, { recursive: true, force: true }));
  assert.throws(
    () => createLaunchCgroup({ id: 'run-a', driver: () => driver, limits: limitsOf({ memory: 64 << 20 }), requested: { memory: 64 << 20 }, mode: 'strict', uid: 1000 }),
    (e: unknown) => {
      assert.ok(e instanceof UnsupportedError);
      assert.match(e.message, /^memory: cannot be enforced/);
      assert.match(e.message, /cgroup v1 has no delegation/);
      assert.match(e.message, /mkdir -p \/sys\/fs\/cgroup\/<controller>\/berth-1000 && chown -R/);
      assert.match(e.message, /limits: 'best-effort'/);
      return true;
    },
  );
});

test('best-effort: the same launch gets an absent cgroup and reports what it runs without', (t) => {
  const { driver, fake } = refusingDriver('EACCES');
  t.after(() => rmSync(fake.root, { recursive: true, force: true }));
  const r = createLaunchCgroup({ id: 'run-b', driver: () => driver, limits: limitsOf({ memory: 1 << 26, cpus: 0.5 }), requested: { memory: 1 << 26, cpus: 0.5 }, mode: 'best-effort', uid: 1000 });
  assert.ok(r.cgroup instanceof AbsentCgroup);
  assert.deepEqual(r.cgroup.procsFiles, []);
  assert.deepEqual(r.skipped?.options, ['memory', 'cpus', 'pids']);
  assert.match(r.skipped!.reason, /may not create cgroups/);
  assert.throws(() => r.cgroup.stats(), UnsupportedError);
  assert.throws(() => r.cgroup.freeze(), /best-effort/);
});

test('strict without any limit asked: runs without a cgroup, reporting only the default pids limit as lost', (t) => {
  const { driver, fake } = refusingDriver('EROFS');
  t.after(() => rmSync(fake.root, { recursive: true, force: true }));
  const r = createLaunchCgroup({ id: 'run-c', driver: () => driver, limits: limitsOf({}), requested: {}, mode: 'strict' });
  assert.deepEqual(r.skipped?.options, ['pids']);
  assert.match(r.skipped!.reason, /read-only/);
  // pids: -1 asks for no limit: nothing is lost.
  const none = createLaunchCgroup({ id: 'run-d', driver: () => driver, limits: { pids: -1 }, requested: { pids: -1 }, mode: 'strict' });
  assert.deepEqual(none.skipped?.options, []);
});

test('no cgroup filesystem at all: strict refuses limits, best-effort runs', () => {
  const missing = (): CgroupDriver => {
    throw new UnsupportedError('no cgroup filesystem is mounted');
  };
  assert.throws(() => createLaunchCgroup({ id: 'run-e', driver: missing, limits: { pids: 10 }, requested: { pids: 10 }, mode: 'strict' }), /pids: cannot be enforced: no cgroup filesystem/);
  const r = createLaunchCgroup({ id: 'run-e', driver: missing, limits: { pids: 10 }, requested: { pids: 10 }, mode: 'best-effort' });
  assert.deepEqual(r.skipped?.options, ['pids']);
});

test('other failures are not "cannot create": a full cpuset or a kernel error still propagates', (t) => {
  const fake = new FakeCgroup1Fs({ mounts: MOUNTS });
  t.after(() => rmSync(fake.root, { recursive: true, force: true }));
  fake.mkdir = (path: string) => {
    throw toSystemError(Object.assign(new Error('ENOSPC'), { code: 'ENOSPC', errno: -28 }), 'mkdir', path);
  };
  const driver = new CgroupV1Driver({ hierarchies: MOUNTS.map((c) => ({ controllers: [c], mountPoint: `${fake.root}/${c}` })), fs: fake, cpuCount: 4 });
  assert.throws(() => createLaunchCgroup({ id: 'run-f', driver: () => driver, limits: { pids: 5 }, requested: {}, mode: 'best-effort' }), (e: unknown) => e instanceof SystemError && e.code === 'ENOSPC');
});

test('the limits option is validated', () => {
  assert.equal(normalizeRunOptions({ limits: 'best-effort' }).limits, 'best-effort');
  assert.throws(() => normalizeRunOptions({ limits: 'loose' as never }), (e: unknown) => e instanceof ValidationError && /limits/.test(e.message));
});
