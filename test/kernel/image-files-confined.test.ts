/**
 * Attack (issue 10, item 12): an image whose /etc (or /etc/passwd, /etc/group) is a symlink
 * out of the image makes berth resolve `user: 'name'` against the *host's* account files, so a
 * name that exists only on the host runs the container as that host uid/gid.
 *
 * Each hostile root below names a user (or group) that exists in the host's files and not in
 * the image. While the attack works the launch succeeds and `id` inside prints the host's ids;
 * defended, the launch is refused with a typed NotFoundError (unknown user or group).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '../../lib/run.js';
import { runFromRoot } from '../../lib/launch/run-to-completion.js';
import { Runtime } from '../../lib/runtime.js';
import { NotFoundError, isBerthError } from '../../lib/errors.js';
import { BUSYBOX, kernelSkipReason } from '../helpers/busybox-rootfs.js';

const skip = kernelSkipReason();

/** A host account file's first entry with a non-zero id whose name the image does not have. */
function hostOnly(file: '/etc/passwd' | '/etc/group', imageNames: string[]): { name: string; id: number } {
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const [name, , id] = line.split(':');
    if (!name || id === undefined || !/^\d+$/.test(id) || Number(id) === 0 || imageNames.includes(name)) continue;
    return { name, id: Number(id) };
  }
  throw new Error(`no usable entry in ${file}`);
}

const IMAGE_USERS = ['root', 'app'];
const IMAGE_GROUPS = ['root', 'app'];

describe('image files are resolved inside the image, never on the host', { skip }, () => {
  let base: string;
  let stateRoot: string;
  let rt: Runtime;
  const user = skip ? { name: '', id: 0 } : hostOnly('/etc/passwd', IMAGE_USERS);
  const group = skip ? { name: '', id: 0 } : hostOnly('/etc/group', IMAGE_GROUPS);

  /** A busybox root whose /etc is laid out by `etc` (called with the root dir). */
  function hostileRoot(name: string, etc: (dir: string) => void): string {
    const dir = join(base, name);
    mkdirSync(join(dir, 'bin'), { recursive: true });
    copyFileSync(BUSYBOX, join(dir, 'bin', 'busybox'));
    for (const a of ['sh', 'id']) symlinkSync('busybox', join(dir, 'bin', a));
    for (const d of ['proc', 'sys', 'dev', 'tmp']) mkdirSync(join(dir, d));
    etc(dir);
    return dir;
  }

  function imagePasswd(dir: string): void {
    mkdirSync(join(dir, 'etc'), { recursive: true });
    writeFileSync(join(dir, 'etc', 'passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/:/bin/sh\n');
  }

  let roots: Record<string, { dir: string; user: string }>;

  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'berth-confined-'));
    stateRoot = mkdtempSync(join(tmpdir(), 'berth-confined-state-'));
    rt = await Runtime.open({ root: stateRoot });
    roots = {
      'etc -> /etc': { dir: hostileRoot('abs', (d) => symlinkSync('/etc', join(d, 'etc'))), user: user.name },
      'etc -> ../../../../etc': { dir: hostileRoot('rel', (d) => symlinkSync('../../../../../../../etc', join(d, 'etc'))), user: user.name },
      'etc/passwd -> /etc/passwd': {
        dir: hostileRoot('passwd', (d) => {
          mkdirSync(join(d, 'etc'));
          symlinkSync('/etc/passwd', join(d, 'etc', 'passwd'));
        }),
        user: user.name,
      },
      'etc/passwd -> ../../../etc/passwd': {
        dir: hostileRoot('passwd-rel', (d) => {
          mkdirSync(join(d, 'etc'));
          symlinkSync('../../../../../etc/passwd', join(d, 'etc', 'passwd'));
        }),
        user: user.name,
      },
      'etc/group -> /etc/group': {
        dir: hostileRoot('group', (d) => {
          imagePasswd(d);
          symlinkSync('/etc/group', join(d, 'etc', 'group'));
        }),
        user: `app:${group.name}`,
      },
      'etc/group -> ../../etc/group': {
        dir: hostileRoot('group-rel', (d) => {
          imagePasswd(d);
          symlinkSync('../../../../etc/group', join(d, 'etc', 'group'));
        }),
        user: `app:${group.name}`,
      },
    };
  });

  after(async () => {
    rmSync(base, { recursive: true, force: true });
    rmSync(stateRoot, { recursive: true, force: true });
  });

  /** Refused with an unknown-user error; on failure, says which host ids the container got. */
  async function assertRefused(what: string, launch: () => Promise<{ stdout: string; exitCode: number }>): Promise<void> {
    let result: { stdout: string; exitCode: number } | undefined;
    try {
      result = await launch();
    } catch (error) {
      assert.ok(isBerthError(error) && error instanceof NotFoundError, `${what}: expected NotFoundError, got ${String(error)}`);
      assert.match((error as Error).message, /unable to find (user|group)/, what);
      return;
    }
    assert.fail(`${what}: the host's account files were used: the container ran as "${result.stdout.trim()}" (host ${user.name}=${user.id}, group ${group.name}=${group.id})`);
  }

  for (const name of [
    'etc -> /etc',
    'etc -> ../../../../etc',
    'etc/passwd -> /etc/passwd',
    'etc/passwd -> ../../../etc/passwd',
    'etc/group -> /etc/group',
    'etc/group -> ../../etc/group',
  ]) {
    test(`${name}: run({ rootfs }) and an image's layers refuse the host-only name`, async () => {
      const r = roots[name]!;
      await assertRefused(`run({ rootfs }) ${name}`, () => run({ rootfs: r.dir }, ['id'], { user: r.user }));
      await assertRefused(`layers ${name}`, async () => {
        const res = await runFromRoot({ kind: 'layers', lowerDirs: [r.dir] }, ['id'], { user: r.user });
        return { stdout: String(res.stdout), exitCode: res.exitCode };
      });
    });
  }

  test('an image User naming a host-only account is refused for containers too', async () => {
    const r = roots['etc -> /etc']!;
    const c = await rt.containers.create({ image: { rootfs: r.dir }, cmd: ['id'], user: r.user });
    try {
      await assertRefused('containers.start', async () => {
        await c.start();
        await c.wait();
        let out = '';
        for await (const l of c.logs()) out += String((l as { line?: unknown }).line ?? l);
        return { stdout: out, exitCode: 0 };
      });
    } finally {
      await c.remove({ force: true });
    }
  });

  test('control: the same layout with the image\'s own files still resolves names inside the image', async () => {
    const dir = hostileRoot('control', (d) => {
      mkdirSync(join(d, 'private', 'etc'), { recursive: true });
      writeFileSync(join(d, 'private', 'etc', 'passwd'), `root:x:0:0::/:/bin/sh\n${user.name}:x:4242:4243::/:/bin/sh\n`);
      writeFileSync(join(d, 'private', 'etc', 'group'), `root:x:0:\n${group.name}:x:4244:\n`);
      // Absolute and relative links that stay inside the image are followed, as the kernel would.
      symlinkSync('/private/etc', join(d, 'etc'));
    });
    const r = await run({ rootfs: dir }, ['sh', '-c', 'id -u; id -g'], { user: `${user.name}:${group.name}` });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.deepEqual(r.stdout.trim().split('\n'), ['4242', '4244']);
  });
});
