import { spawnSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capture } from './spawn-timed.js';

/** Docker's default capability set (the 14 that berth also grants). */
export const DEFAULT_CAPS = [
  'CAP_CHOWN', 'CAP_DAC_OVERRIDE', 'CAP_FSETID', 'CAP_FOWNER', 'CAP_MKNOD', 'CAP_NET_RAW',
  'CAP_SETGID', 'CAP_SETUID', 'CAP_SETFCAP', 'CAP_SETPCAP', 'CAP_NET_BIND_SERVICE',
  'CAP_SYS_CHROOT', 'CAP_KILL', 'CAP_AUDIT_WRITE',
];

/** The pids limit written into the peers' bundle, so that they create and fill a pids cgroup as berth does. */
export const PIDS_LIMIT = 4096;

export interface Fixtures {
  dir: string;
  /** busybox root filesystem shared by every subject (never written by /bin/true). */
  rootfs: string;
  /** OCI bundle for crun and runc: config.json whose root.path is `rootfs`. */
  bundle: string;
  /** The same bundle without the seccomp filter, to show what compiling the profile costs crun. */
  bundleNoSeccomp: string;
  /** The same rootfs as a tar, for `podman import` and `docker import`. */
  rootfsTar: string;
  /** Where the seccomp profile given to crun/runc came from, or why there is none. */
  seccompSource: string;
}

export function makeTempDir(): string {
  return mkdtempSync(join(tmpdir(), 'berth-bench-'));
}

/** A busybox rootfs: the static busybox plus one symlink per applet, /etc basics, empty mount points. */
export function makeBusyboxRootfs(root: string): void {
  const busybox = ['/bin/busybox', '/usr/bin/busybox'].find((p) => existsSync(p));
  if (!busybox) throw new Error('no /bin/busybox: apt-get install busybox-static');
  for (const d of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'root', 'var', 'run']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync(busybox, join(root, 'bin/busybox'));
  spawnSyncOk('chmod', ['0755', join(root, 'bin/busybox')]);
  // Run the rootfs's own busybox, chrooted, so the links are relative to the new root and the
  // binary proves it is static (a dynamic one would fail here, not in the middle of a run).
  spawnSyncOk('chroot', [root, '/bin/busybox', '--install', '-s', '/bin']);
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\nnogroup:x:65534:\n');
  writeFileSync(join(root, 'etc/hostname'), 'bench\n');
}

function spawnSyncOk(cmd: string, args: string[]): void {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.error?.message ?? r.stderr.trim()}`);
}

/**
 * Docker's default seccomp profile in OCI form. containers-common ships it as
 * /usr/share/containers/seccomp.json in Docker's own format (entries gated on capabilities and
 * architectures); resolve those gates for the default capabilities on x86_64, as Docker does
 * when it builds a container's spec.
 */
export function dockerDefaultSeccomp(): { profile: object; source: string } | { profile: undefined; source: string } {
  const file = '/usr/share/containers/seccomp.json';
  if (!existsSync(file)) return { profile: undefined, source: `none (${file} missing: apt-get install golang-github-containers-common)` };
  interface Gate { caps?: string[]; arches?: string[]; minKernel?: string }
  interface Entry { names: string[]; action: string; args?: object[] | null; errnoRet?: number; includes?: Gate; excludes?: Gate }
  const src = JSON.parse(readFileSync(file, 'utf8')) as { defaultAction: string; defaultErrnoRet?: number; syscalls: Entry[] };
  const caps = new Set(DEFAULT_CAPS);
  const arch = 'amd64';
  const syscalls = src.syscalls
    .filter((e) => {
      const inc = e.includes ?? {};
      const exc = e.excludes ?? {};
      if (inc.caps?.length && !inc.caps.every((c) => caps.has(c))) return false;
      if (inc.arches?.length && !inc.arches.includes(arch)) return false;
      if (exc.caps?.some((c) => caps.has(c))) return false;
      if (exc.arches?.includes(arch)) return false;
      return true;
    })
    .map((e) => ({
      names: e.names,
      action: e.action,
      ...(e.args && e.args.length ? { args: e.args } : {}),
      ...(e.errnoRet !== undefined ? { errnoRet: e.errnoRet } : {}),
    }));
  return {
    profile: {
      defaultAction: src.defaultAction,
      ...(src.defaultErrnoRet !== undefined ? { defaultErrnoRet: src.defaultErrnoRet } : {}),
      architectures: ['SCMP_ARCH_X86_64', 'SCMP_ARCH_X86', 'SCMP_ARCH_X32'],
      syscalls,
    },
    source: `Docker's default profile from ${file}, resolved for the 14 default capabilities on x86_64 (${syscalls.length} rules)`,
  };
}

/**
 * The OCI config for crun and runc, written by hand rather than by `crun spec` so that it does
 * not depend on which runtime is installed and says every choice in one place. Chosen to match
 * what berth sets up: namespaces pid, mount, uts, ipc, net, cgroup (no user namespace); Docker's
 * 14 capabilities and default seccomp profile; no_new_privs; masked and read-only paths; a pids
 * limit (so a cgroup is created, filled and removed); /proc, /dev tmpfs, /dev/pts, /dev/shm,
 * /dev/mqueue, read-only /sys. The rootfs is the plain directory (root.readonly false, no overlay).
 */
export function ociConfig(rootfs: string, args: string[], seccomp: object | undefined): object {
  return {
    ociVersion: '1.0.2',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args,
      env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      cwd: '/',
      capabilities: { bounding: DEFAULT_CAPS, effective: DEFAULT_CAPS, permitted: DEFAULT_CAPS },
      noNewPrivileges: true,
    },
    root: { path: rootfs, readonly: false },
    hostname: 'bench',
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      { destination: '/dev', type: 'tmpfs', source: 'tmpfs', options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'] },
      { destination: '/dev/pts', type: 'devpts', source: 'devpts', options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'] },
      { destination: '/dev/shm', type: 'tmpfs', source: 'shm', options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'] },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
    ],
    linux: {
      namespaces: [{ type: 'pid' }, { type: 'network' }, { type: 'ipc' }, { type: 'uts' }, { type: 'mount' }, { type: 'cgroup' }],
      resources: { devices: [{ allow: false, access: 'rwm' }], pids: { limit: PIDS_LIMIT } },
      maskedPaths: [
        '/proc/acpi', '/proc/asound', '/proc/kcore', '/proc/keys', '/proc/latency_stats', '/proc/timer_list',
        '/proc/timer_stats', '/proc/sched_debug', '/proc/scsi', '/sys/firmware',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
      ...(seccomp ? { seccomp } : {}),
    },
  };
}

/** Write a bundle directory whose config runs `args` in `rootfs`. */
export function writeBundle(bundle: string, rootfs: string, args: string[], seccomp: object | undefined): void {
  mkdirSync(bundle, { recursive: true });
  writeFileSync(join(bundle, 'config.json'), JSON.stringify(ociConfig(rootfs, args, seccomp), null, 1));
}

export async function makeFixtures(dir: string): Promise<Fixtures> {
  const rootfs = join(dir, 'rootfs');
  makeBusyboxRootfs(rootfs);
  const sec = dockerDefaultSeccomp();
  const bundle = join(dir, 'bundle-true');
  writeBundle(bundle, rootfs, ['/bin/true'], sec.profile);
  const bundleNoSeccomp = join(dir, 'bundle-true-noseccomp');
  writeBundle(bundleNoSeccomp, rootfs, ['/bin/true'], undefined);
  const rootfsTar = join(dir, 'rootfs.tar');
  await capture(['tar', '-C', rootfs, '--numeric-owner', '-cf', rootfsTar, '.']);
  return { dir, rootfs, bundle, bundleNoSeccomp, rootfsTar, seccompSource: sec.source };
}
