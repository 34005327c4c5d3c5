/**
 * Isolation as observed from inside a busybox container: namespaces, the mount table, masked and
 * read-only paths, /dev, the root filesystem never written, networking.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { run, NotFoundError, type RunOptions } from '../../lib/index.js';
import { SECRET_IN_IMAGE, busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { mountLines } from '../helpers/leaks.js';

const skip = kernelSkipReason();
const sh = <O extends RunOptions = RunOptions>(script: string, options?: O) => run({ rootfs: busyboxRootfs() }, ['sh', '-c', script], options);

/** Fields of one /proc/<pid>/mountinfo line. */
function parseMountinfo(text: string): Array<{ mountPoint: string; options: string; fstype: string; source: string; super: string }> {
  return text
    .split('\n')
    .filter((l) => l !== '')
    .map((line) => {
      const [pre, post] = line.split(' - ');
      const f = pre!.split(' ');
      const g = post!.split(' ');
      return { mountPoint: f[4]!, options: f[5]!, fstype: g[0]!, source: g[1]!, super: g[2] ?? '' };
    });
}

describe('namespaces', { skip }, () => {
  test('every namespace but user differs from the host (pid, mnt, uts, ipc, net, cgroup)', async () => {
    const kinds = ['pid', 'mnt', 'uts', 'ipc', 'net', 'cgroup'];
    const r = await sh(kinds.map((k) => `readlink /proc/self/ns/${k}`).join('; '));
    const inside = r.stdout.trim().split('\n');
    assert.equal(inside.length, kinds.length, r.stderr);
    kinds.forEach((k, i) => {
      const host = readlinkSync(`/proc/self/ns/${k}`);
      assert.notEqual(inside[i], host, `${k} namespace is the host's (${host})`);
    });
  });

  test('pid namespace: the shell is PID 1 and /proc shows only the container processes', async () => {
    const r = await sh('echo $$; ls /proc | grep -E "^[0-9]+$"');
    const [self, ...pids] = r.stdout.trim().split('\n');
    assert.equal(self, '1');
    assert.ok(pids.includes('1'), `ls /proc: ${pids.join(' ')}`);
    assert.ok(pids.length <= 4, `too many processes visible: ${pids.join(' ')}`);
    assert.ok(pids.every((p) => Number(p) < 20), `host pids visible: ${pids.join(' ')}`);
  });

  test('cgroup namespace: the container sees its own cgroup as the root', async () => {
    const r = await sh('cat /proc/self/cgroup');
    const lines = r.stdout.trim().split('\n');
    assert.ok(lines.length > 0);
    for (const l of lines) assert.match(l, /:\/$/, `cgroup path is not "/": ${l}`);
  });

  test('ipc namespace: a System V segment made on the host side is not visible', async () => {
    const r = await sh('cat /proc/sysvipc/shm | wc -l; cat /proc/sysvipc/msg | wc -l');
    // Only the header lines: the namespace starts empty whatever the host has.
    assert.equal(r.stdout, '1\n1\n');
  });

  test('net namespace "none": only lo, and lo is up', async () => {
    const r = await sh('ls /sys/class/net; cat /sys/class/net/lo/flags');
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, -1), ['lo']);
    assert.equal(Number(lines.at(-1)) & 1, 1, `lo flags ${lines.at(-1)} lack IFF_UP`);
  });

  test('net namespace "none": loopback works inside, the host loopback is unreachable', async () => {
    const server = await listen();
    try {
      const port = (server.address() as { port: number }).port;
      const r = await sh(
        // Retry the client until the listener is up (bounded: 300 x 0.1 s), instead of a fixed
        // sleep; the listener's own timeout outlasts the retries on a loaded machine.
        `nc -l -p 7777 -w 40 > /tmp/got & for i in $(seq 300); do echo hello | nc -w 2 127.0.0.1 7777 2>/dev/null && break; sleep 0.1; done; wait; cat /tmp/got;` +
          `if echo x | nc -w 2 127.0.0.1 ${port}; then echo host-reached; else echo host-unreachable; fi`,
      );
      assert.match(r.stdout, /^hello$/m, `loopback inside failed: ${r.stderr}`);
      assert.match(r.stdout, /host-unreachable/);
      assert.doesNotMatch(r.stdout, /host-reached/);
    } finally {
      server.close();
    }
  });

  test('network "host": the host interfaces and the host loopback are reachable', async () => {
    const server = await listen();
    try {
      const port = (server.address() as { port: number }).port;
      const r = await sh(`ls /sys/class/net; readlink /proc/self/ns/net; if echo x | nc -w 2 127.0.0.1 ${port}; then echo host-reached; fi`, {
        network: 'host',
      });
      const lines = r.stdout.trim().split('\n');
      const hostIfs = readdirSync('/sys/class/net').sort();
      assert.deepEqual(lines.slice(0, hostIfs.length).sort(), hostIfs);
      assert.equal(lines[hostIfs.length], readlinkSync('/proc/self/ns/net'));
      assert.match(r.stdout, /host-reached/);
    } finally {
      server.close();
    }
  });
});

function listen(): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer((s) => s.end());
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve(server));
  });
}

describe('mount namespace and root filesystem', { skip }, () => {
  test('the root is an overlay and no host mount point is visible', async () => {
    const r = await sh('cat /proc/self/mountinfo');
    const mounts = parseMountinfo(r.stdout);
    const root = mounts.filter((m) => m.mountPoint === '/');
    assert.equal(root.length, 1, r.stdout);
    assert.equal(root[0]!.fstype, 'overlay');
    const allowed = /^\/$|^\/(proc|sys|dev)(\/|$)/;
    const foreign = mounts.filter((m) => !allowed.test(m.mountPoint));
    assert.deepEqual(foreign.map((m) => m.mountPoint), [], 'unexpected mount points inside');
    // No host-only mount point (e.g. where this repo or /run lives) is there.
    const hostPoints = new Set(parseMountinfo(readFileSync('/proc/self/mountinfo', 'utf8')).map((m) => m.mountPoint));
    for (const m of mounts) {
      if (['/', '/proc', '/sys', '/dev', '/dev/pts', '/dev/shm', '/dev/mqueue'].includes(m.mountPoint)) continue;
      if (m.mountPoint.startsWith('/sys/fs/cgroup') || m.mountPoint.startsWith('/proc/') || m.mountPoint.startsWith('/dev/')) continue;
      if (m.mountPoint.startsWith('/sys/')) continue;
      assert.ok(!hostPoints.has(m.mountPoint), `host mount point ${m.mountPoint} visible inside`);
    }
  });

  test('/proc/self/mountinfo inside lists each mount point once (no stacked duplicates)', async () => {
    const r = await sh('cat /proc/self/mountinfo');
    const points = parseMountinfo(r.stdout).map((m) => m.mountPoint);
    const dup = points.filter((p, i) => points.indexOf(p) !== i);
    assert.deepEqual(dup, [], `mounted more than once: ${[...new Set(dup)].join(', ')}`);
  });

  test('nothing appears in the host mount table during or after a run', async () => {
    const before = mountLines();
    const dir = mkdtempSync(join(tmpdir(), 'berth-mnt-watch-'));
    const stdin = new PassThrough();
    try {
      const running = sh('touch /signal/started; read line; echo "$line"', {
        stdin,
        mounts: [{ type: 'bind', source: dir, target: '/signal' }],
      });
      let during: string[] | undefined;
      for (let i = 0; i < 200 && !existsSync(join(dir, 'started')); i++) await sleep(25);
      if (existsSync(join(dir, 'started'))) during = mountLines();
      stdin.end('go\n');
      const r = await running;
      assert.equal(r.stdout, 'go\n', r.stderr);
      assert.ok(during, 'the container never signalled that it had started');
      assert.deepEqual(during.filter((l) => !before.includes(l)), [], 'mounts visible on the host while the container runs');
      assert.deepEqual(mountLines().filter((l) => !before.includes(l)), [], 'mounts left on the host after the run');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the rootfs directory is never written: new, changed and deleted files stay in the container', async () => {
    const rootfs = busyboxRootfs();
    const marker = `written-${process.pid}`;
    const r = await sh(
      `echo x > /${marker} && mkdir /newdir-${process.pid} && echo changed > /etc/passwd && rm /etc/secret-in-image && ` +
        `rm /bin/notexec && chmod 777 /tmp && cat /${marker}`,
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, 'x\n');
    assert.equal(existsSync(join(rootfs, marker)), false);
    assert.equal(existsSync(join(rootfs, `newdir-${process.pid}`)), false);
    assert.match(readFileSync(join(rootfs, 'etc/passwd'), 'utf8'), /^root:x:0:0:/);
    assert.equal(readFileSync(join(rootfs, 'etc/secret-in-image'), 'utf8'), SECRET_IN_IMAGE);
    assert.ok(existsSync(join(rootfs, 'bin/notexec')));
    // ...and the next container starts from the pristine image again.
    const again = await sh(`test -e /${marker} && echo leaked-between-runs; cat /etc/secret-in-image`);
    assert.equal(again.stdout, SECRET_IN_IMAGE);
  });

  test('readonlyRootfs: writes to / fail with EROFS', async () => {
    const r = await sh('touch /rofile', { readonlyRootfs: true });
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /Read-only file system/);
    const m = await sh('grep " / / " /proc/self/mountinfo', { readonlyRootfs: true });
    assert.match(m.stdout.split(' ')[5] ?? '', /^ro(,|$)/, m.stdout);
  });
});

describe('masked and read-only paths, /dev', { skip }, () => {
  test('/proc/keys and /proc/timer_list read as empty; /sys/firmware is empty', async () => {
    const r = await sh('cat /proc/keys | wc -c; cat /proc/timer_list | wc -c; ls -A /sys/firmware | wc -l');
    assert.equal(r.stdout, '0\n0\n0\n');
  });

  test('every masked /proc path that exists on the host reads as nothing', async () => {
    const candidates = ['/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list', '/proc/timer_stats', '/proc/sched_debug', '/proc/acpi', '/proc/scsi'];
    const present = candidates.filter((p) => existsSync(p));
    assert.ok(present.length > 0);
    const r = await sh(present.map((p) => `if [ -d ${p} ]; then ls -A ${p} | wc -c; else head -c 64 ${p} | wc -c; fi`).join('; '));
    assert.deepEqual(r.stdout.trim().split('\n'), present.map(() => '0'), `${present.join(' ')}: ${r.stderr}`);
  });

  test('/proc/sys is read-only: writing a sysctl fails', async () => {
    const r = await sh('echo berth > /proc/sys/kernel/domainname; echo rc=$?; echo 3 > /proc/sys/vm/drop_caches; echo rc=$?');
    assert.equal(r.stdout, 'rc=1\nrc=1\n');
    assert.match(r.stderr, /Read-only file system/);
  });

  test('/sys is read-only', async () => {
    const r = await sh('touch /sys/kernel/berth-x');
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /Read-only file system/);
  });

  test('/dev holds the standard devices, pts, shm, mqueue and stdio symlinks, and nothing else', async () => {
    const r = await sh('ls -A /dev; echo ---; for f in /dev/fd /dev/stdin /dev/stdout /dev/stderr; do readlink $f; done; echo ---; ls -A /dev/pts');
    const [list, links, pts] = r.stdout.split('---\n');
    const names = list!.trim().split('\n').sort();
    for (const n of ['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'ptmx', 'shm', 'mqueue', 'fd', 'stdin', 'stdout', 'stderr']) {
      assert.ok(names.includes(n), `/dev/${n} missing (have ${names.join(' ')})`);
    }
    const extra = names.filter((n) => !['null', 'zero', 'full', 'random', 'urandom', 'tty', 'pts', 'ptmx', 'shm', 'mqueue', 'fd', 'stdin', 'stdout', 'stderr', 'console', 'core'].includes(n));
    assert.deepEqual(extra, [], 'host devices leaked into /dev');
    assert.deepEqual(links!.trim().split('\n'), ['/proc/self/fd', '/proc/self/fd/0', '/proc/self/fd/1', '/proc/self/fd/2']);
    assert.ok(pts!.split('\n').includes('ptmx'));
  });

  test('the devices work: null swallows, zero and urandom read, full is full', async () => {
    const r = await sh('echo x > /dev/null && head -c 7 /dev/zero | wc -c && head -c 5 /dev/urandom | wc -c; echo x > /dev/full; echo full=$?');
    assert.equal(r.stdout, '7\n5\nfull=1\n');
    assert.match(r.stderr, /No space left on device/);
  });

  test('/dev/pts is a new instance: no host pty is visible', async () => {
    const r = await sh('ls -A /dev/pts');
    assert.deepEqual(r.stdout.trim().split('\n'), ['ptmx']);
  });

  test('a device node made with mknod (CAP_MKNOD is granted) cannot be opened', async () => {
    // /dev/null's numbers are whitelisted for the container, so only nodev can stop this one.
    const r = await sh('mknod /tmp/mynull c 1 3 && echo made; echo x > /tmp/mynull && echo opened');
    assert.match(r.stdout, /^made$/m, `mknod itself failed: ${r.stderr}`);
    assert.doesNotMatch(r.stdout, /opened/);
  });

  test('a block device node of the host disk cannot be read', async () => {
    const r = await sh('mknod /tmp/sda b 8 0; head -c1 /tmp/sda | wc -c; mknod /dev/sda b 8 0; head -c1 /dev/sda | wc -c');
    assert.equal(r.stdout, '0\n0\n', r.stderr);
  });
});

describe('unusual and hostile root filesystems', { skip }, () => {
  test('a minimal rootfs with only /bin/busybox (no /etc, /tmp, /proc dirs) runs, as a scratch image does in Docker', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-minimal-'));
    try {
      mkdirSync(join(dir, 'bin'));
      copyFileSync('/bin/busybox', join(dir, 'bin/busybox'));
      const r = await run({ rootfs: dir }, ['/bin/busybox', 'sh', '-c', 'echo hi; /bin/busybox cat /etc/hostname']);
      assert.equal(r.exitCode, 0, r.stderr);
      assert.match(r.stdout, /^hi\n[0-9a-f]{12}\n$/);
      assert.deepEqual(readdirSync(dir), ['bin'], 'berth wrote into the rootfs directory');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('/etc/hosts and /etc/hostname symlinked to host paths: written inside, never on the host', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-hostile-'));
    const hostHosts = join(tmpdir(), `berth-hostile-hosts-${process.pid}`);
    const hostHostname = join(tmpdir(), `berth-hostile-hostname-${process.pid}`);
    try {
      cpSync(busyboxRootfs(), dir, { recursive: true, verbatimSymlinks: true });
      symlinkSync(hostHosts, join(dir, 'etc/hosts'));
      symlinkSync(hostHostname, join(dir, 'etc/hostname'));
      const r = await run({ rootfs: dir }, ['sh', '-c', 'cat /etc/hosts; cat /etc/hostname'], { hostname: 'hostile' });
      assert.equal(existsSync(hostHosts), false, `berth wrote ${hostHosts} on the host`);
      assert.equal(existsSync(hostHostname), false, `berth wrote ${hostHostname} on the host`);
      assert.match(r.stdout, /hostile/);
    } catch (err) {
      assert.equal(existsSync(hostHosts), false, `berth wrote ${hostHosts} on the host`);
      assert.equal(existsSync(hostHostname), false, `berth wrote ${hostHostname} on the host`);
      throw err;
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(hostHosts, { force: true });
      rmSync(hostHostname, { force: true });
    }
  });

  test('a user name is never looked up in a host file that the image\'s /etc/passwd links to', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'berth-hostile-'));
    const hostPasswd = join(tmpdir(), `berth-hostile-passwd-${process.pid}`);
    try {
      cpSync(busyboxRootfs(), dir, { recursive: true, verbatimSymlinks: true });
      writeFileSync(hostPasswd, 'hostonly:x:4242:4242::/:/bin/sh\n');
      rmSync(join(dir, 'etc/passwd'));
      symlinkSync(hostPasswd, join(dir, 'etc/passwd'));
      let uid: string | undefined;
      try {
        uid = (await run({ rootfs: dir }, ['id', '-u'], { user: 'hostonly' })).stdout.trim();
      } catch (err) {
        assert.ok(err instanceof NotFoundError, String(err));
      }
      assert.notEqual(uid, '4242', 'the user came from a host file outside the rootfs');
    } finally {
      rmSync(dir, { recursive: true, force: true });
      rmSync(hostPasswd, { force: true });
    }
  });
});
