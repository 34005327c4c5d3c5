/**
 * run() basics on the real kernel: result shape, exit codes and signals, env, workdir, user,
 * hostname. Every container runs from the busybox rootfs built by test/helpers/busybox-rootfs.ts.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { hostname as hostHostname } from 'node:os';
import { join } from 'node:path';
import { run, NotFoundError, isBerthError, type RunOptions } from '../../lib/index.js';
import { APP_GID, APP_UID, STAFF_GID, busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';

const skip = kernelSkipReason();
const sh = <O extends RunOptions = RunOptions>(script: string, options?: O) => run({ rootfs: busyboxRootfs() }, ['sh', '-c', script], options);

describe('run(): result and exit codes (busybox rootfs)', { skip }, () => {
  test('stdout, stderr and exit code 0 come back separately as strings', async () => {
    const r = await sh('echo to-out; echo to-err >&2');
    assert.equal(r.stdout, 'to-out\n');
    assert.equal(r.stderr, 'to-err\n');
    assert.equal(r.exitCode, 0);
    assert.equal(r.signal, null);
    assert.equal(r.oomKilled, false);
    assert.equal(r.timedOut, false);
    assert.equal(typeof r.durationMs, 'number');
    assert.ok(r.durationMs > 0, `durationMs should be positive, got ${r.durationMs}`);
  });

  test('an argv without a shell runs as given (no word splitting)', async () => {
    const r = await run({ rootfs: busyboxRootfs() }, ['echo', 'a  b', '$HOME', '*']);
    assert.equal(r.stdout, 'a  b $HOME *\n');
  });

  test('utf8 output is decoded; encoding "buffer" gives Buffers', async () => {
    const text = await sh("printf 'h\\303\\251llo'");
    assert.equal(text.stdout, 'héllo');
    const bin = await sh("printf '\\001\\002\\377'; printf '\\376' >&2", { encoding: 'buffer' });
    assert.ok(Buffer.isBuffer(bin.stdout) && Buffer.isBuffer(bin.stderr));
    assert.deepEqual([...bin.stdout], [1, 2, 255]);
    assert.deepEqual([...bin.stderr], [254]);
  });

  test('exit 3 is exit code 3 with no signal', async () => {
    const r = await sh('exit 3');
    assert.equal(r.exitCode, 3);
    assert.equal(r.signal, null);
  });

  test('kill -9 $$ under init: the shell is PID 2, dies, and init reports 137', async () => {
    // With init: true berth-init is PID 1 and exits 128+9 for its child, as Docker's --init.
    // (Without init the shell is the namespace's PID 1, which the kernel protects from its own
    // SIGKILL: the shell survives, as in Docker.)
    const r = await sh('kill -9 $$; echo survived', { init: true });
    assert.equal(r.stdout, '');
    assert.equal(r.exitCode, 137);
  });

  test('PID 1 of the container is protected from its own kill -9, as in Docker', async () => {
    const r = await sh('kill -9 $$; echo survived');
    assert.equal(r.stdout, 'survived\n');
    assert.equal(r.exitCode, 0);
  });

  test('command not found: 127 with a message naming it in stderr', async () => {
    const r = await run({ rootfs: busyboxRootfs() }, ['no-such-command-xyz', 'arg']);
    assert.equal(r.exitCode, 127);
    assert.match(r.stderr, /no-such-command-xyz/);
    assert.match(r.stderr, /not found/i);
    assert.equal(r.stdout, '');
  });

  test('absolute path that does not exist: 127', async () => {
    const r = await run({ rootfs: busyboxRootfs() }, ['/nope/missing']);
    assert.equal(r.exitCode, 127);
    assert.match(r.stderr, /\/nope\/missing/);
  });

  test('non-executable file: 126 with "permission denied"', async () => {
    const r = await run({ rootfs: busyboxRootfs() }, ['/bin/notexec']);
    assert.equal(r.exitCode, 126);
    assert.match(r.stderr, /notexec/);
    assert.match(r.stderr, /permission denied/i);
    assert.doesNotMatch(r.stdout, /should-not-run/);
  });

  test('a directory as the command: 126', async () => {
    const r = await run({ rootfs: busyboxRootfs() }, ['/tmp']);
    assert.equal(r.exitCode, 126);
    assert.notEqual(r.stderr, '');
  });

  test('not found and not executable under init: same codes', async () => {
    const nf = await run({ rootfs: busyboxRootfs() }, ['no-such-command-xyz'], { init: true });
    assert.equal(nf.exitCode, 127);
    assert.match(nf.stderr, /no-such-command-xyz/);
    const ne = await run({ rootfs: busyboxRootfs() }, ['/bin/notexec'], { init: true });
    assert.equal(ne.exitCode, 126);
  });

  test('argv[0] is looked up in the container PATH, not the host one', async () => {
    // /bin/busybox is in the rootfs; "busybox" must resolve through PATH inside.
    const r = await run({ rootfs: busyboxRootfs() }, ['busybox', 'echo', 'via-path']);
    assert.equal(r.stdout, 'via-path\n');
  });
});

describe('run(): env, workdir, hostname, user (busybox rootfs)', { skip }, () => {
  test('env is passed, merged over PATH/HOSTNAME/HOME, and the host env does not leak', async () => {
    process.env.BERTH_TEST_HOST_ONLY = 'host-secret';
    try {
      const r = await sh('env', { env: { FOO: 'bar baz', EMPTY: '' }, hostname: 'envhost' });
      const env = new Map(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
      assert.equal(env.get('FOO'), 'bar baz');
      assert.equal(env.get('EMPTY'), '');
      assert.equal(env.get('HOSTNAME'), 'envhost');
      assert.equal(env.get('HOME'), '/root');
      assert.equal(env.get('PATH'), '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin');
      assert.equal(env.has('BERTH_TEST_HOST_ONLY'), false, 'a host variable leaked into the container');
    } finally {
      delete process.env.BERTH_TEST_HOST_ONLY;
    }
  });

  test('env can override PATH and remove a default with undefined', async () => {
    const r = await sh('echo "path=$PATH home=${HOME-unset}"', { env: { PATH: '/bin', HOME: undefined } });
    assert.equal(r.stdout, 'path=/bin home=unset\n');
  });

  test('workdir defaults to / and is honoured', async () => {
    assert.equal((await sh('pwd')).stdout, '/\n');
    assert.equal((await sh('pwd', { workdir: '/etc' })).stdout, '/etc\n');
  });

  test('a missing workdir is created inside the container, not in the rootfs', async () => {
    const r = await sh('pwd; ls -ld .', { workdir: '/work/deep/dir' });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^\/work\/deep\/dir\n/);
    assert.equal(existsSync(join(busyboxRootfs(), 'work')), false, 'workdir was created in the host rootfs directory');
  });

  test('hostname option is the UTS hostname, /etc/hostname and $HOSTNAME', async () => {
    const r = await sh('hostname; cat /etc/hostname; echo $HOSTNAME', { hostname: 'berth-test-host' });
    assert.equal(r.stdout, 'berth-test-host\nberth-test-host\nberth-test-host\n');
  });

  test('default hostname: 12 hex digits, different per run and from the host', async () => {
    const a = (await sh('hostname')).stdout.trim();
    const b = (await sh('hostname')).stdout.trim();
    assert.match(a, /^[0-9a-f]{12}$/);
    assert.match(b, /^[0-9a-f]{12}$/);
    assert.notEqual(a, b);
    assert.notEqual(a, hostHostname());
  });

  test('/etc/hosts maps localhost and the hostname', async () => {
    const r = await sh('cat /etc/hosts', { hostname: 'hosts-test' });
    assert.match(r.stdout, /^127\.0\.0\.1\s+localhost/m);
    assert.match(r.stdout, /\shosts-test(\s|$)/m);
  });

  test("user 'app': uid 1000, gid 1000, supplementary group 50, HOME from passwd", async () => {
    const r = await sh('id -u; id -g; id -G; echo $HOME; id -un', { user: 'app' });
    const [uid, gid, groups, home, name] = r.stdout.trim().split('\n');
    assert.equal(uid, String(APP_UID));
    assert.equal(gid, String(APP_GID));
    assert.ok(groups!.split(' ').includes(String(STAFF_GID)), `id -G = ${groups}`);
    assert.equal(home, '/home/app');
    assert.equal(name, 'app');
  });

  test("user 'app' has no effective capabilities (Docker drops them for non-root)", async () => {
    const r = await sh('grep -E "^Cap(Eff|Prm):" /proc/self/status', { user: 'app' });
    assert.match(r.stdout, /^CapPrm:\s+0{16}$/m);
    assert.match(r.stdout, /^CapEff:\s+0{16}$/m);
  });

  test("user 'app' cannot read a root-only file of the image", async () => {
    const r = await sh('cat /etc/secret-in-image', { user: 'app' });
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /denied/i);
  });

  test("user '1234:5678' is taken numerically", async () => {
    const r = await sh('id -u; id -g', { user: '1234:5678' });
    assert.equal(r.stdout, '1234\n5678\n');
  });

  test("user 'app:staff' uses the named group", async () => {
    const r = await sh('id -u; id -g', { user: 'app:staff' });
    assert.equal(r.stdout, `${APP_UID}\n${STAFF_GID}\n`);
  });

  test('unknown user name: NotFoundError naming the user, nothing started', async () => {
    await assert.rejects(sh('echo started', { user: 'no-such-user' }), (err: unknown) => {
      assert.ok(err instanceof NotFoundError, `expected NotFoundError, got ${String(err)}`);
      assert.ok(isBerthError(err));
      assert.match(err.message, /no-such-user/);
      return true;
    });
  });
});
