/**
 * berth as a real unprivileged user (issue 15): the test (root) makes users with
 * test/helpers/rootless-user.ts, one with a subordinate id range (newuidmap/newgidmap) and one
 * without, runs test/kernel/rootless-child.ts as each, and checks what it reports and what is
 * left on the host afterwards (processes of the user or its subordinate ids, mounts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { chownSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { busyboxRootfs, hasBusybox } from '../helpers/busybox-rootfs.js';
import { RootlessUser, rootlessSkipReason } from '../helpers/rootless-user.js';
import { ok, runUserCases, type Case } from '../helpers/case-report.js';
import { describeProcess, mountsOf, running } from '../helpers/leftovers.js';

const skip = rootlessSkipReason() || (hasBusybox() ? false : 'needs busybox-static');
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-child.ts');
const CAP_SYS_ADMIN = 21n;

function runCases(user: RootlessUser, names: string[], rootfs = 'own'): Promise<Map<string, Case>> {
  return runUserCases(user, CHILD, [rootfs, ...names]);
}

/** The v1 hierarchies of this host (cgroup v1 or hybrid), by controller. */
function v1Mount(controller: string): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const f = line.split(' ');
    const sep = f.indexOf('-');
    if (sep > 0 && f[sep + 1] === 'cgroup' && f[sep + 3]!.split(',').includes(controller)) return f[4];
  }
  return undefined;
}

describe('rootless: a user with newuidmap and a subordinate range', { skip }, () => {
  let user: RootlessUser;
  let cases: Map<string, Case>;
  let foreign: Map<string, Case>;
  before(async () => {
    user = RootlessUser.create({ subids: true });
    cases = await runCases(user, ['rootfs', 'host', 'chown', 'as-user-1000', 'bind', 'bind-unreadable', 'volume', 'limits-strict', 'limits-best-effort', 'container', 'info']);
    foreign = await runCases(user, ['rootfs'], busyboxRootfs());
  });
  after(() => user?.remove());

  test('a busybox rootfs runs as root of a user namespace: root -> the user, 1..65535 -> the range; same confinement as rootful', () => {
    const r = ok(cases.get('rootfs'));
    assert.equal(r.exitCode, 0, r.stderr);
    const [uid, gid, ...rest] = r.stdout.split('\n');
    assert.equal(uid, '0');
    assert.equal(gid, '0');
    const map = rest.join('\n');
    assert.match(map, new RegExp(`^\\s*0\\s+${user.uid}\\s+1$`, 'm'));
    assert.match(map, new RegExp(`^\\s*1\\s+${user.subuid!.start}\\s+65535$`, 'm'));
    assert.match(r.stdout, /Seccomp:\s+2/);
    assert.match(r.stdout, /NoNewPrivs:\s+1/);
    const capEff = BigInt(`0x${/CapEff:\s*([0-9a-f]+)/.exec(r.stdout)![1]}`);
    assert.equal(capEff & (1n << CAP_SYS_ADMIN), 0n, 'CAP_SYS_ADMIN must not be in the default set');
    assert.notEqual(capEff, 0n);
    assert.match(r.stdout, /pid=1\n/);
    // Masked path: /proc/kcore is /dev/null inside.
    assert.doesNotMatch(r.stdout, /ELF/);
  });

  test('a rootfs owned by host root (unmapped) is refused with the reason, not a bare EACCES', () => {
    const c = foreign.get('rootfs')!;
    assert.equal(c.ok, false, JSON.stringify(c.result));
    assert.match(c.error!.message, /unmapped owner/);
  });

  test('host mode: the host /usr as root of a user namespace, a writable /tmp', () => {
    const r = ok(cases.get('host'));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^0\n/);
    assert.match(r.stdout, /wrote-tmp/);
  });

  test('chown to another container id works (it is a subordinate id), and a container user 1000 exists', () => {
    const r = ok(cases.get('chown'));
    assert.equal(r.stdout.trim(), '1234:1234', r.stderr);
    const u = ok(cases.get('as-user-1000'));
    assert.equal(u.stdout.trim(), '1000');
  });

  test("a bind mount of the user's directory: files the container makes are owned by the mapped host ids", () => {
    const r = ok(cases.get('bind'));
    assert.equal(r.run.exitCode, 0, r.run.stderr);
    assert.equal(r.run.stdout, 'x');
    assert.equal(r.byRoot, `${user.uid}:${user.gid}`);
    assert.equal(r.by1000, `${user.subuid!.start + 999}:${user.subgid!.start + 999}`);
  });

  test('a bind source the user cannot read is refused, naming it', () => {
    const c = cases.get('bind-unreadable')!;
    assert.equal(c.ok, false, JSON.stringify(c.result));
    assert.match(c.error!.message, /\/root/);
  });

  test('volumes live in ~/.local/share/berth and their files are owned by the mapped ids', () => {
    const r = ok(cases.get('volume'));
    assert.equal(r.run.exitCode, 0, r.run.stderr);
    assert.equal(r.root, join(user.home, '.local/share/berth'));
    assert.equal(r.byRoot, `${user.uid}:${user.gid}`);
    assert.equal(r.by1000, `${user.subuid!.start + 999}:${user.subgid!.start + 999}`);
  });

  test('limits without a delegated cgroup: strict refuses memory naming the reason and the fix; best-effort runs and says so', () => {
    const s = cases.get('limits-strict')!;
    assert.equal(s.ok, false);
    assert.equal(s.error!.code, 'ERR_UNSUPPORTED');
    assert.match(s.error!.message, /^memory: cannot be enforced/);
    assert.match(s.error!.message, new RegExp(`berth-${user.uid}`));
    const b = ok(cases.get('limits-best-effort'));
    assert.equal(b.exitCode, 0, b.stderr);
    assert.deepEqual(b.limitsSkipped.options, ['memory', 'pids']);
  });

  test('a container of rt.containers runs with its state in the user state dir', () => {
    const r = ok(cases.get('container'));
    assert.equal(r.exit.exitCode, 0, JSON.stringify(r));
    assert.deepEqual(r.logs, ['from-container\n', '0\n']);
  });

  test('rt.info(): rootless, subordinate mapping, limits not enforceable', () => {
    const r = ok(cases.get('info'));
    assert.equal(r.Rootless, true);
    assert.equal(r.RootDir, join(user.home, '.local/share/berth'));
    assert.equal(r.IdMapping.mode, 'subordinate');
    assert.equal(r.Limits.enforceable, false);
  });

  test('nothing of the user is left: no process (its uid or subordinate ids), no host mount', () => {
    assert.deepEqual(user.processes().filter(running).map(describeProcess), []);
    assert.deepEqual(mountsOf(user), []);
  });
});

describe('rootless: limits applied in a cgroup v1 subtree chowned to the user', { skip: skip || (v1Mount('pids') === undefined ? 'needs cgroup v1 hierarchies' : false) }, () => {
  let user: RootlessUser;
  const made: string[] = [];
  let cases: Map<string, Case>;
  before(async () => {
    user = RootlessUser.create({ subids: true });
    // What an administrator does on v1: a parent per hierarchy, owned by the user.
    for (const c of ['pids', 'memory']) {
      const dir = join(v1Mount(c)!, `berth-${user.uid}`);
      mkdirSync(dir);
      made.push(dir);
      for (const f of ['', ...readdirSync(dir).filter((n) => n === 'cgroup.procs' || n === 'tasks' || n === 'cgroup.clone_children')]) chownSync(join(dir, f), user.uid, user.gid);
    }
    cases = await runCases(user, ['limits-applied']);
  });
  after(() => {
    user?.remove();
    for (const dir of made.reverse()) {
      for (const child of readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory())) rmdirSync(join(dir, child.name));
      rmdirSync(dir);
    }
  });

  test('memory and pids are set in the user-owned subtree and seen from inside', () => {
    const r = ok(cases.get('limits-applied'));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.limitsSkipped, undefined);
    assert.match(r.stdout, /\n50\n/);
    assert.match(r.stdout, new RegExp(`\n${32 * 1024 * 1024}\n`));
  });

  test('berth left no cgroup in the subtree', () => {
    for (const dir of made) assert.deepEqual(readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name), []);
  });
});

describe('rootless: a user without a subordinate range (single-id map)', { skip }, () => {
  let user: RootlessUser;
  let cases: Map<string, Case>;
  before(async () => {
    user = RootlessUser.create({ subids: false });
    cases = await runCases(user, ['rootfs', 'chown', 'as-user-1000', 'info']);
  });
  after(() => user?.remove());

  test('root in the container is the user, and only root is mapped', () => {
    const r = ok(cases.get('rootfs'));
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^0\n0\n\\s*0\\s+${user.uid}\\s+1\n`));
  });

  test('chown to another id fails inside (the id does not exist there)', () => {
    const r = ok(cases.get('chown'));
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /chown/i);
  });

  test('a container user other than root is refused before the launch, with the fix', () => {
    const c = cases.get('as-user-1000')!;
    assert.equal(c.ok, false);
    assert.equal(c.error!.code, 'ERR_UNSUPPORTED');
    assert.match(c.error!.message, /uid 1000/);
    assert.match(c.error!.message, /single-id map/);
    assert.match(c.error!.message, /usermod --add-subuids/);
  });

  test('rt.info() says single and why', () => {
    const r = ok(cases.get('info'));
    assert.equal(r.IdMapping.mode, 'single');
    assert.match(r.IdMapping.reason, /subuid/);
    assert.ok(r.Fixes.some((f: { area: string }) => f.area === 'idmap'), JSON.stringify(r.Fixes));
  });

  test('nothing of the user is left', () => {
    assert.deepEqual(user.processes().filter(running).map(describeProcess), []);
    assert.deepEqual(mountsOf(user), []);
  });
});
