/**
 * berth inside real container engines (issue 16): a private dockerd (own data root, exec root,
 * socket and pidfile, as `bench/dockerd.ts` starts it, stopped by its pid) and podman with a
 * private storage root run `inside-container-child.ts` in a container made from a local image
 * (`docker import` of an almost empty tree; the host's /usr, this checkout and its
 * node_modules are bind-mounted read-only: there is no Docker Hub). Inside, a busybox container
 * runs under memory and pids limits, two containers talk over a bridge network, and nothing is
 * left; outside, the engines' cgroups, containers, images, data and mounts are gone afterwards.
 *
 * The engine settings are the ones `docs/deploy-kubernetes.md` documents: every capability (the
 * closest to --privileged this host allows: root lacks CAP_SYS_RESOURCE), the minimal set found
 * by taking those away one at a time, the minimal set with the engine's read-only cgroupfs
 * (berth must refuse with its typed error), and podman --privileged --runtime runc.
 *
 * The state dir is a tmpfs; a second one on the container's own overlay root gets the probe's
 * fallback: fuse-overlayfs where the container has /dev/fuse, else vfs.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, rmSync, rmdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Dockerd } from '../../bench/dockerd.js';
import { hasBusybox } from '../helpers/busybox-rootfs.js';
import type { InsideReport } from './inside-container-child.js';

const exec = promisify(execFile);
const here = dirname(fileURLToPath(import.meta.url));
const checkout = resolve(here, '..', '..');
const CG = '/sys/fs/cgroup';
const STATE = '/var/lib/berth-inside';
/** The engines put their containers' cgroups here, so the test finds (and removes) exactly its own. */
const CGROUP_PARENT = `berth-inside-${process.pid}`;

function which(bin: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => existsSync(join(d, bin)));
}

function skipReason(): string | false {
  if (process.getuid?.() !== 0) return 'needs root';
  if (!hasBusybox()) return 'needs busybox-static';
  for (const bin of ['dockerd', 'docker', 'podman', 'runc']) if (!which(bin)) return `needs ${bin} (scripts/test-deps.sh installs docker.io and podman)`;
  return false;
}
const skip = skipReason();

/** The read-only binds that give the image node, busybox, berth and its dependencies. */
function binds(): string[] {
  // A worktree's node_modules is a symlink to the main checkout's: bind its target too.
  const mods = realpathSync(join(checkout, 'node_modules'));
  return ['-v', '/usr:/usr:ro', '-v', `${checkout}:${checkout}:ro`, ...(mods.startsWith(`${checkout}/`) ? [] : ['-v', `${mods}:${mods}:ro`])];
}

/**
 * The container's command: node running the child, after deploy/berth-entrypoint.sh (the one
 * the image in deploy/ uses) made the cgroupfs and /proc/sys/net writable, or without it.
 */
function command(entrypoint: boolean): string[] {
  const run = ['node', '--import', 'tsx', join(here, 'inside-container-child.ts')];
  return entrypoint ? [join(checkout, 'deploy', 'berth-entrypoint.sh'), ...run] : run;
}

function envArgs(expect: 'works' | 'read-only'): string[] {
  return ['--tmpfs', STATE, '-e', `BERTH_INSIDE_ROOT=${STATE}`, '-e', `BERTH_INSIDE_EXPECT=${expect}`, '-e', 'PATH=/usr/sbin:/usr/bin:/sbin:/bin', '-w', checkout];
}

function parseReport(stdout: string, stderr: string): InsideReport {
  const line = stdout.trim().split('\n').at(-1) ?? '';
  try {
    return JSON.parse(line) as InsideReport;
  } catch {
    throw new Error(`the berth program inside printed no report: ${stdout}\n${stderr}`);
  }
}

/** Cgroup directories `<hierarchy>/<CGROUP_PARENT>/...` still on the host. */
function engineCgroupsLeft(): string[] {
  const out: string[] = [];
  for (const h of readdirSync(CG)) {
    const p = join(CG, h, CGROUP_PARENT);
    if (existsSync(p)) out.push(p, ...readdirSync(p, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(p, d.name)));
  }
  return out;
}

function mountsUnder(dir: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')[4] ?? '').filter((m) => m.startsWith(`${dir}/`));
}

function checkWorks(r: InsideReport): void {
  assert.equal(r.memoryUsable, true, `rt.info() says memory is unusable: ${JSON.stringify(r)}`);
  assert.equal(r.memoryLimit, String(32 * 1024 * 1024), 'memory: 32m did not apply inside');
  assert.equal(r.pidsLimit, '20', 'pids: 20 did not apply inside');
  const ids = (r.cgroupDirsWhileRunning ?? []).filter((d) => !r.parents.includes(d));
  assert.ok(ids.length > 0 && ids.every((d) => r.parents.some((p) => d.startsWith(`${p}/`))), `the container's cgroups are not under berth's parents: ${JSON.stringify(r)}`);
  assert.equal(r.bridgeFetch, 'from-the-bridge');
  assert.deepEqual(r.leftCgroups.filter((d) => !r.parents.includes(d)), [], 'a container cgroup outlived rt.close()');
  assert.deepEqual(r.leftLinks, [], 'a bridge or veth outlived rt.close()');
  assert.deepEqual(r.leftMounts, [], 'a mount outlived rt.close()');
  assert.deepEqual(r.leftFuseDaemons, [], 'a fuse-overlayfs daemon outlived rt.close()');
  assert.deepEqual(r.storage, { driver: 'overlay', usable: true, backingFilesystem: 'tmpfs' });
  // A state dir on the container's overlay root cannot hold overlay upper dirs: the probe falls
  // back to fuse-overlayfs where the engine gave the container /dev/fuse (the minimal set,
  // podman --privileged), else to the copying driver, says why, and a sandbox runs there.
  assert.equal(r.storageOnOverlayRoot.backingFilesystem, 'overlayfs');
  assert.equal(r.storageOnOverlayRoot.driver, r.hasFuse ? 'fuse-overlayfs' : 'vfs', JSON.stringify(r.storageOnOverlayRoot));
  assert.equal(r.storageOnOverlayRoot.usable, true, JSON.stringify(r.storageOnOverlayRoot));
  assert.equal(r.storageOnOverlayRoot.run, '0:written', 'a sandbox did not run with the state dir on the overlay root');
  assert.match(r.storageOnOverlayRoot.reason, /volume or tmpfs/);
}

describe('berth inside Docker and Podman containers', { skip }, () => {
  let dir: string;
  let dockerd: Dockerd | undefined;
  let docker: string[];
  let podman: string[];
  let podmanUsed = false;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), 'berth-inside-'));
    // The image: an almost empty tree whose /bin, /lib, /sbin point into the bind-mounted /usr.
    const tree = join(dir, 'tree');
    for (const d of ['usr', 'etc', 'tmp', 'proc', 'sys', 'dev', 'root', 'run', 'var/lib']) mkdirSync(join(tree, d), { recursive: true });
    chmodSync(join(tree, 'tmp'), 0o1777);
    for (const d of ['bin', 'lib', 'lib64', 'sbin']) symlinkSync(`usr/${d}`, join(tree, d));
    writeFileSync(join(tree, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
    writeFileSync(join(tree, 'etc/group'), 'root:x:0:\n');
    await exec('tar', ['-C', tree, '-cf', join(dir, 'image.tar'), '.']);

    dockerd = await Dockerd.start(join(dir, 'docker'), () => {});
    docker = ['-H', dockerd.host];
    await exec('docker', [...docker, 'import', join(dir, 'image.tar'), 'berth-inside:1'], { timeout: 60_000 });
    podman = ['--root', join(dir, 'podman/root'), '--runroot', join(dir, 'podman/run'), '--tmpdir', join(dir, 'podman/tmp'), '--cgroup-manager', 'cgroupfs', '--events-backend', 'file'];
  });

  after(async () => {
    const errors: unknown[] = [];
    const step = async (f: () => Promise<unknown>): Promise<void> => {
      try {
        await f();
      } catch (err) {
        errors.push(err);
      }
    };
    if (dockerd !== undefined) {
      await step(() => exec('docker', [...docker, 'rmi', '-f', 'berth-inside:1'], { timeout: 60_000 }));
      await step(() => dockerd!.stop());
    }
    if (podmanUsed) await step(() => exec('podman', [...podman, 'rmi', '-a', '-f'], { timeout: 60_000 }));
    // The engines made <hierarchy>/<CGROUP_PARENT> (podman also a conmon/ below it); once their
    // containers are gone these are empty, and rmdir refuses anything that is not.
    const rmdirTree = (p: string): void => {
      for (const d of readdirSync(p, { withFileTypes: true })) if (d.isDirectory()) rmdirTree(join(p, d.name));
      rmdirSync(p);
    };
    for (const h of existsSync(CG) ? readdirSync(CG) : []) {
      const p = join(CG, h, CGROUP_PARENT);
      if (existsSync(p)) await step(async () => rmdirTree(p));
    }
    const mounts = mountsUnder(dir);
    if (mounts.length > 0) errors.push(new Error(`mounts left under ${dir}: ${mounts.join(' ')}`));
    else rmSync(dir, { recursive: true, force: true });
    if (errors.length > 0) throw new AggregateError(errors, 'cleanup of the container engines failed');
  });

  /** Runs the child in a docker container with `flags`; the container is removed when it exits. */
  async function inDocker(flags: string[], remount: boolean, expect: 'works' | 'read-only'): Promise<InsideReport> {
    const args = [...docker, 'run', '--rm', '--network', 'none', '--cgroupns', 'private', '--cgroup-parent', `/${CGROUP_PARENT}`, ...flags, ...binds(), ...envArgs(expect), 'berth-inside:1', ...command(remount)];
    const { stdout, stderr } = await exec('docker', args, { timeout: 120_000, maxBuffer: 16 << 20 }).catch((e: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`docker run failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
    });
    const r = parseReport(stdout, stderr);
    assert.deepEqual(engineCgroupsLeft().filter((p) => !p.endsWith(CGROUP_PARENT)), [], "the container's cgroup (and berth's below it) is left on the host");
    assert.equal((await exec('docker', [...docker, 'ps', '-aq'])).stdout.trim(), '', 'a docker container is left');
    return r;
  }

  const EVERY_CAPABILITY = [
    '--cap-add', 'ALL', '--cap-drop', 'SYS_RESOURCE',
    '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined', '--security-opt', 'systempaths=unconfined',
    '--device-cgroup-rule', 'a *:* rwm',
  ];
  /**
   * The minimal set, each found necessary by removing it: CAP_SYS_ADMIN (namespaces, mounts,
   * the entrypoint's remounts), CAP_NET_ADMIN (bridge, veths, firewall), seccomp unconfined
   * (the default profile refuses pivot_root), and the entrypoint making the cgroupfs and
   * /proc/sys/net writable (berth sets sysctls of its containers' network namespaces; without
   * it, `systempaths=unconfined` does, and unmasks all of /proc). AppArmor unconfined matters
   * on AppArmor hosts (docker-default denies mount); this host has no AppArmor, so it is
   * passed, not proven. `--device /dev/fuse` is for fuse-overlayfs: with it a state dir on the
   * container's own overlay root gets fuse-overlayfs rather than the copying driver (the
   * every-capability run above has no FUSE device and checks that fallback).
   */
  const MINIMAL = ['--cap-add', 'SYS_ADMIN', '--cap-add', 'NET_ADMIN', '--security-opt', 'seccomp=unconfined', '--security-opt', 'apparmor=unconfined', '--device', '/dev/fuse'];

  test('docker with every capability and a writable cgroupfs: limits, a bridge network, nothing left', async () => {
    const r = await inDocker(EVERY_CAPABILITY, true, 'works');
    checkWorks(r);
    assert.equal(r.hasFuse, false, 'no FUSE device: the overlay-root fallback checked here is vfs');
  });

  test('docker with the documented minimal set: the same', async () => {
    const r = await inDocker(MINIMAL, true, 'works');
    checkWorks(r);
    assert.equal(r.storageOnOverlayRoot.driver, 'fuse-overlayfs', 'the minimal set has /dev/fuse: the overlay-root fallback is fuse-overlayfs');
  });

  test("docker's read-only cgroupfs: rt.info() says so, memory is refused naming the fix, best-effort runs without it, nothing left", async () => {
    const r = await inDocker([...MINIMAL, '--security-opt', 'systempaths=unconfined'], false, 'read-only');
    assert.equal(r.memoryUsable, false);
    assert.equal(r.error?.name, 'UnsupportedError', JSON.stringify(r));
    assert.match(r.error!.message, /^memory: cannot be enforced/);
    assert.match(r.error!.message, /mounted read-only/);
    assert.match(r.error!.message, /remount,bind,rw/);
    assert.deepEqual(r.bestEffort, { stdout: 'ran-without-limits', skipped: ['memory', 'pids'] });
    assert.deepEqual([r.leftCgroups, r.leftLinks, r.leftMounts], [[], [], []]);
  });

  test('podman --privileged --runtime runc: the same as docker', async () => {
    podmanUsed = true;
    await exec('podman', [...podman, 'import', join(dir, 'image.tar'), 'localhost/berth-inside:1'], { timeout: 60_000 });
    // podman asks runc for RLIMIT_NOFILE/NPROC above what root may raise without
    // CAP_SYS_RESOURCE; keep them at the host's hard limit and a modest process count.
    const nofile = /^Max open files\s+\S+\s+(\d+)/m.exec(readFileSync('/proc/self/limits', 'utf8'))?.[1] ?? '1024';
    const args = [
      ...podman, 'run', '--rm', '--privileged', '--runtime', 'runc', '--network', 'none', '--cgroup-parent', `/${CGROUP_PARENT}`,
      '--ulimit', `nofile=${nofile}:${nofile}`, '--ulimit', 'nproc=4096:4096',
      ...binds(), ...envArgs('works'), 'localhost/berth-inside:1', ...command(true),
    ];
    const { stdout, stderr } = await exec('podman', args, { timeout: 120_000, maxBuffer: 16 << 20 }).catch((e: { stdout?: string; stderr?: string; message: string }) => {
      throw new Error(`podman run failed: ${e.message}\n${e.stdout ?? ''}\n${e.stderr ?? ''}`);
    });
    const r = parseReport(stdout, stderr);
    checkWorks(r);
    assert.equal(r.storageOnOverlayRoot.driver, 'fuse-overlayfs', '--privileged gives /dev/fuse: the overlay-root fallback is fuse-overlayfs');
    assert.deepEqual(engineCgroupsLeft().filter((p) => !p.endsWith(CGROUP_PARENT) && !p.endsWith('/conmon')), [], "the container's cgroup is left on the host");
    assert.equal((await exec('podman', [...podman, 'ps', '-aq'])).stdout.trim(), '', 'a podman container is left');
  });
});
