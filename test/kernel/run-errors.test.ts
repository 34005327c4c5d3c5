/**
 * Bad input and setup failures: one typed error family, naming the option, before anything is
 * started (or, for failures inside the child, a SystemError instead of an exit code).
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, BerthError, NotFoundError, SystemError, ValidationError, isBerthError, type RunOptions } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { settledDiff, snapshot } from '../helpers/leaks.js';

const skip = kernelSkipReason();
const sh = <O extends RunOptions = RunOptions>(script: string, options?: O) => run({ rootfs: busyboxRootfs() }, ['sh', '-c', script], options);

/**
 * Asserts `start()` fails with an error of `cls` that passes isBerthError, and returns it.
 * Synchronous throws are accepted here (a separate test requires a rejected promise).
 */
async function rejection<T extends BerthError>(start: Promise<unknown> | (() => Promise<unknown>), cls: abstract new (...a: never[]) => T): Promise<T> {
  let caught: unknown;
  try {
    await (typeof start === 'function' ? start() : start);
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== undefined, 'run() resolved instead of rejecting');
  assert.ok(isBerthError(caught), `not a berth error: ${String(caught)}`);
  assert.ok(caught instanceof cls, `expected ${cls.name}, got ${(caught as Error).name}: ${(caught as Error).message}`);
  return caught as T;
}

/** Calls `start` and reports whether it threw synchronously rather than returning a promise. */
function throwsSynchronously(start: () => unknown): string | false {
  try {
    const p = start();
    if (p instanceof Promise) p.catch(() => {});
    return false;
  } catch (err) {
    return String(err);
  }
}

describe('validation errors', { skip }, () => {
  test("relative rootfs: ValidationError, option 'rootfs'", async () => {
    const err = await rejection(() => run({ rootfs: 'relative/dir' }, ['true']), ValidationError);
    assert.equal(err.option, 'rootfs');
    assert.equal(err.code, 'ERR_INVALID_OPTION');
    assert.match(err.message, /relative\/dir/);
  });

  test('run() reports every bad input through the returned promise, never by a synchronous throw', () => {
    const cases: Array<[string, () => unknown]> = [
      ['relative rootfs', () => run({ rootfs: 'relative/dir' }, ['true'])],
      ['missing rootfs', () => run({ rootfs: '/nonexistent/berth-rootfs' }, ['true'])],
      ['bad source', () => run({} as never, ['true'])],
      ['bad option', () => run({ rootfs: busyboxRootfs() }, ['true'], { memory: 'abc' })],
      ['no command', () => run({ rootfs: busyboxRootfs() }, [])],
    ];
    const sync = cases.map(([name, start]) => [name, throwsSynchronously(start)]).filter(([, t]) => t !== false);
    assert.deepEqual(sync, [], 'run(...).catch() would miss these: they throw before a promise exists');
  });

  test('missing rootfs: NotFoundError with the path', async () => {
    const err = await rejection(() => run({ rootfs: '/nonexistent/berth-rootfs' }, ['true']), NotFoundError);
    assert.equal(err.code, 'ERR_NOT_FOUND');
    assert.equal(err.path, '/nonexistent/berth-rootfs');
  });

  test('rootfs that is a file: ValidationError', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-err-'));
    try {
      writeFileSync(join(dir, 'file'), 'x');
      const err = await rejection(() => run({ rootfs: join(dir, 'file') }, ['true']), ValidationError);
      assert.equal(err.option, 'rootfs');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("memory 'abc': ValidationError, option 'memory'", async () => {
    const err = await rejection(sh('true', { memory: 'abc' }), ValidationError);
    assert.equal(err.option, 'memory');
    assert.match(err.message, /abc/);
  });

  test("capAdd ['NOPE']: ValidationError naming the capability", async () => {
    const err = await rejection(sh('true', { capAdd: ['NOPE'] }), ValidationError);
    assert.match(err.option ?? '', /^capAdd/);
    assert.match(err.message, /NOPE/);
  });

  test("capDrop ['NOPE'] too", async () => {
    const err = await rejection(sh('true', { capDrop: ['NOPE'] }), ValidationError);
    assert.match(err.option ?? '', /^capDrop/);
  });

  test('bind source missing: NotFoundError with the path', async () => {
    const err = await rejection(sh('true', { mounts: [{ type: 'bind', source: '/nonexistent/berth-src', target: '/x' }] }), NotFoundError);
    assert.match(err.message, /\/nonexistent\/berth-src/);
  });

  test('an unknown option key: ValidationError naming it, with a hint for a near miss', async () => {
    const err = await rejection(sh('true', { memroy: '1m' } as unknown as RunOptions), ValidationError);
    assert.equal(err.option, 'memroy');
    const near = await rejection(sh('true', { Memory: '1m' } as unknown as RunOptions), ValidationError);
    assert.equal(near.option, 'Memory');
    assert.match(near.message, /memory/);
  });

  test('a bad type for a known option: ValidationError', async () => {
    await rejection(sh('true', { env: ['A=1'] } as unknown as RunOptions), ValidationError);
    await rejection(sh('true', { timeout: -1 }), ValidationError);
    await rejection(sh('true', { hostname: 'bad host name!' }), ValidationError);
    await rejection(sh('true', { workdir: 'relative' }), ValidationError);
    await rejection(sh('true', { network: 42 } as unknown as RunOptions), ValidationError);
    await rejection(sh('true', { mounts: [{ type: 'tmpfs', target: '/x', size: 'lots' }] }), ValidationError);
    await rejection(sh('true', { seccomp: 'strict' } as unknown as RunOptions), ValidationError);
  });

  test('no command or an empty one: ValidationError', async () => {
    await rejection(run({ rootfs: busyboxRootfs() }, []), ValidationError);
    await rejection(run({ rootfs: busyboxRootfs() }, ['']), ValidationError);
    await rejection(run({ rootfs: busyboxRootfs() }, undefined as unknown as string[]), ValidationError);
  });

  test('unknown user: NotFoundError', async () => {
    await rejection(sh('true', { user: 'ghost' }), NotFoundError);
  });

  test('a malformed seccomp profile: a berth error, not a crash', async () => {
    await rejection(sh('true', { seccomp: { defaultAction: 'SCMP_ACT_NOPE', syscalls: [] } as never }), ValidationError);
  });

  test('invalid input leaves nothing behind', async () => {
    const before = snapshot();
    await rejection(sh('true', { memory: 'abc' }), ValidationError);
    await rejection(sh('true', { user: 'ghost' }), NotFoundError);
    await rejection(sh('true', { mounts: [{ type: 'bind', source: '/nonexistent/x', target: '/x' }] }), NotFoundError);
    const d = await settledDiff(before);
    assert.deepEqual(d.cgroups, []);
    assert.deepEqual(d.mounts, []);
    assert.deepEqual(d.children, []);
  });
});

describe('setup failures inside the child', { skip }, () => {
  test('a bind target on /proc fails as a SystemError with syscall and path, not as exit code 1', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-err-'));
    const before = snapshot();
    try {
      const err = await rejection(sh('echo started', { mounts: [{ type: 'bind', source: dir, target: '/proc/berth-target' }] }), SystemError);
      assert.ok(err.syscall, 'no .syscall');
      assert.ok(err.code.startsWith('E'), `code ${err.code} is not an errno name`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const d = await settledDiff(before);
    assert.deepEqual(d.cgroups, [], 'cgroup left after a setup failure');
    assert.deepEqual(d.children, []);
    assert.deepEqual(d.zombies, []);
    assert.deepEqual(d.fds, []);
  });

  test('a file bind over a directory target fails as a berth error', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-err-'));
    try {
      writeFileSync(join(dir, 'file'), 'x');
      let result;
      try {
        result = await sh('cat /bin/busybox > /dev/null; echo started', { mounts: [{ type: 'bind', source: join(dir, 'file'), target: '/bin' }] });
      } catch (err) {
        assert.ok(isBerthError(err), String(err));
        return;
      }
      assert.fail(`run() resolved: ${JSON.stringify(result)}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('a workdir that is a file: a berth error, not a container that starts somewhere else', async () => {
    let result;
    try {
      result = await sh('pwd', { workdir: '/etc/passwd' });
    } catch (err) {
      assert.ok(isBerthError(err), String(err));
      return;
    }
    assert.fail(`run() resolved: ${JSON.stringify(result)}`);
  });
});
