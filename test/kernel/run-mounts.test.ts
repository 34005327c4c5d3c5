/**
 * The `mounts` option: bind rw/ro, file binds, tmpfs with a size, and targets that try to leave
 * the container through symlinks or `..`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, NotFoundError, SystemError, ValidationError, isBerthError, type RunOptions } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { mountLines } from '../helpers/leaks.js';

const skip = kernelSkipReason();
const sh = <O extends RunOptions = RunOptions>(script: string, options?: O) => run({ rootfs: busyboxRootfs() }, ['sh', '-c', script], options);

describe('mounts', { skip }, () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-mounts-'));
    writeFileSync(join(dir, 'from-host'), 'host data\n');
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  test('bind rw: host files visible, container writes land on the host', async () => {
    const r = await sh('cat /data/from-host && echo written > /data/from-container', { mounts: [{ type: 'bind', source: dir, target: '/data' }] });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'host data\n');
    assert.equal(readFileSync(join(dir, 'from-container'), 'utf8'), 'written\n');
  });

  test('bind readonly: writes fail with EROFS and the host dir is unchanged', async () => {
    const r = await sh('cat /data/from-host; echo nope > /data/ro-attempt', { mounts: [{ type: 'bind', source: dir, target: '/data', readonly: true }] });
    assert.equal(r.stdout, 'host data\n');
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /Read-only file system/);
    assert.equal(existsSync(join(dir, 'ro-attempt')), false);
  });

  test('a file bind mount over a path that does not exist in the image', async () => {
    const r = await sh('cat /etc/app/config', { mounts: [{ type: 'bind', source: join(dir, 'from-host'), target: '/etc/app/config', readonly: true }] });
    assert.equal(r.stdout, 'host data\n', r.stderr);
    assert.equal(existsSync(join(busyboxRootfs(), 'etc/app')), false, 'the mount point was created in the rootfs directory');
  });

  test('tmpfs with a size: mounted, writable, and full at the size', async () => {
    const r = await sh('grep " /scratch " /proc/self/mountinfo; echo hi > /scratch/f && cat /scratch/f; head -c 2097152 /dev/zero > /scratch/big; echo rc=$?', {
      mounts: [{ type: 'tmpfs', target: '/scratch', size: '1m' }],
    });
    assert.match(r.stdout, / \/scratch .* - tmpfs /);
    assert.match(r.stdout, /size=1024k/);
    assert.match(r.stdout, /^hi$/m);
    // busybox head reports the ENOSPC of its write as "I/O error".
    assert.match(r.stdout, /rc=1/);
  });

  test('tmpfs mode defaults to 1777', async () => {
    const r = await sh('stat -c %a /scratch', { mounts: [{ type: 'tmpfs', target: '/scratch' }] });
    assert.equal(r.stdout.trim(), '1777');
  });

  test('a target behind a symlink in the rootfs (/link -> /tmp) lands inside the container', async () => {
    // If the target were resolved on the host, /link/x would be the host's /tmp/x.
    const name = `berth-symlink-target-${process.pid}`;
    const hostPath = join('/tmp', name);
    assert.equal(existsSync(hostPath), false);
    const beforeMounts = mountLines();
    const r = await sh(`cat /tmp/${name}/from-host; grep -c " /tmp/${name} " /proc/self/mountinfo`, {
      mounts: [{ type: 'bind', source: dir, target: `/link/${name}` }],
    });
    try {
      assert.equal(r.exitCode, 0, r.stderr);
      assert.equal(r.stdout, 'host data\n1\n');
      assert.equal(existsSync(hostPath), false, `the mount point was created on the host at ${hostPath}`);
      assert.deepEqual(mountLines().filter((l) => !beforeMounts.includes(l)), []);
    } finally {
      rmSync(hostPath, { recursive: true, force: true });
    }
  });

  test('a target with .. cannot climb out of the container root', async () => {
    // Either refused, or resolved inside the container's root (/tmp/../../.. is /).
    const name = `berth-dotdot-${process.pid}`;
    try {
      const r = await sh(`ls /${name}`, { mounts: [{ type: 'bind', source: dir, target: `/tmp/../../../../${name}` }] });
      assert.match(r.stdout, /^from-host$/m, r.stderr);
    } catch (err) {
      if (err instanceof assert.AssertionError) throw err;
      assert.ok(isBerthError(err), String(err));
    } finally {
      assert.equal(existsSync(`/${name}`), false, 'a directory was created at the host root');
      rmSync(`/${name}`, { recursive: true, force: true });
    }
  });

  test('the bind source must exist: NotFoundError naming it', async () => {
    const missing = join(dir, 'does-not-exist');
    await assert.rejects(sh('true', { mounts: [{ type: 'bind', source: missing, target: '/x' }] }), (err: unknown) => {
      assert.ok(err instanceof NotFoundError, `expected NotFoundError, got ${String(err)}`);
      assert.match(err.message, /does-not-exist/);
      return true;
    });
  });

  test('a bind target under /proc fails setup with a SystemError, not an exit code', async () => {
    mkdirSync(join(dir, 'sub'), { recursive: true });
    await assert.rejects(sh('echo started', { mounts: [{ type: 'bind', source: join(dir, 'sub'), target: '/proc/berth-x' }] }), (err: unknown) => {
      assert.ok(isBerthError(err), `not a berth error: ${String(err)}`);
      assert.ok(err instanceof SystemError || err instanceof ValidationError, String(err));
      if (err instanceof SystemError) assert.ok(err.syscall, 'SystemError without .syscall');
      return true;
    });
  });

  test('mounting over / or /proc is a ValidationError', async () => {
    await assert.rejects(sh('true', { mounts: [{ type: 'tmpfs', target: '/' }] }), ValidationError);
    await assert.rejects(sh('true', { mounts: [{ type: 'bind', source: dir, target: '/proc' }] }), ValidationError);
  });
});
