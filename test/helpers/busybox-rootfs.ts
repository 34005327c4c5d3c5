/**
 * A throw-away root filesystem built from the host's static busybox (Debian's `busybox-static`).
 *
 * Built once per process under `os.tmpdir()/berth-busybox-<pid>` and removed when the process
 * exits. Suites should treat it as read-only: berth promises never to write to a rootfs, and
 * `run-isolation.test.ts` checks exactly that against this directory.
 * @module
 */
import { execFileSync } from 'node:child_process';
import { accessSync, chmodSync, constants, copyFileSync, existsSync, mkdirSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** The host binary the rootfs is built from. */
export const BUSYBOX = '/bin/busybox';

/** Uid/gid of the unprivileged account in the rootfs's /etc/passwd. */
export const APP_UID = 1000;
export const APP_GID = 1000;
/** A supplementary group `app` belongs to (`staff`). */
export const STAFF_GID = 50;

/** Content of `/etc/secret-in-image`, so tests can recognise it. */
export const SECRET_IN_IMAGE = 'berth-test-secret-in-image\n';

/** True when a static busybox is present and executable. */
export function hasBusybox(): boolean {
  try {
    accessSync(BUSYBOX, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** A skip reason for `describe(..., { skip })`, or false when the kernel suites can run. */
export function kernelSkipReason(): string | false {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root';
  if (!hasBusybox()) return `${BUSYBOX} is missing: install busybox-static (apt-get install busybox-static)`;
  return false;
}

let cached: string | undefined;

const DIR_PREFIX = 'berth-busybox-';

/** Removes rootfs dirs of test processes that died without running their exit handler. */
function removeStale(): void {
  for (const name of readdirSync(tmpdir())) {
    if (!name.startsWith(DIR_PREFIX)) continue;
    const pid = Number(name.slice(DIR_PREFIX.length));
    if (!Number.isInteger(pid) || pid <= 0 || pid === process.pid || existsSync(`/proc/${pid}`)) continue;
    rmSync(join(tmpdir(), name), { recursive: true, force: true });
  }
}

/**
 * The path of this process's busybox rootfs, building it on first use.
 * @throws Error when /bin/busybox is missing (check {@link hasBusybox} first).
 */
export function busyboxRootfs(): string {
  if (cached !== undefined && existsSync(join(cached, 'bin', 'busybox'))) return cached;
  if (!hasBusybox()) throw new Error(`${BUSYBOX} not found: install busybox-static`);
  removeStale();
  const dir = join(tmpdir(), `${DIR_PREFIX}${process.pid}`);
  rmSync(dir, { recursive: true, force: true });
  for (const d of ['bin', 'etc', 'tmp', 'home/app', 'root', 'proc', 'sys', 'dev']) mkdirSync(join(dir, d), { recursive: true });
  chmodSync(join(dir, 'tmp'), 0o1777);
  chmodSync(join(dir, 'home/app'), 0o755);

  copyFileSync(BUSYBOX, join(dir, 'bin', 'busybox'));
  chmodSync(join(dir, 'bin', 'busybox'), 0o755);
  const applets = execFileSync(BUSYBOX, ['--list'], { encoding: 'utf8' })
    .split('\n')
    .map((s) => s.trim())
    // `busybox --list` names busybox itself: a symlink there would replace the binary.
    .filter((s) => s !== '' && s !== 'busybox' && !s.includes('/'));
  for (const a of applets) {
    const link = join(dir, 'bin', a);
    if (!existsSync(link)) symlinkSync('busybox', link);
  }

  writeFileSync(
    join(dir, 'etc', 'passwd'),
    'root:x:0:0:root:/root:/bin/sh\n' +
      `app:x:${APP_UID}:${APP_GID}:app:/home/app:/bin/sh\n` +
      'nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n',
  );
  writeFileSync(
    join(dir, 'etc', 'group'),
    'root:x:0:\n' + `staff:x:${STAFF_GID}:app\n` + `app:x:${APP_GID}:\n` + 'nogroup:x:65534:\n',
  );
  writeFileSync(join(dir, 'etc', 'secret-in-image'), SECRET_IN_IMAGE, { mode: 0o600 });
  writeFileSync(join(dir, 'bin', 'notexec'), '#!/bin/sh\necho should-not-run\n', { mode: 0o644 });
  chmodSync(join(dir, 'bin', 'notexec'), 0o644);
  // An absolute symlink that would point at the host's /tmp if anything resolved it on the host.
  symlinkSync('/tmp', join(dir, 'link'));

  cached = dir;
  process.once('exit', () => {
    try {
      rmSync(dir, { recursive: true, force: true });
    } catch {
      // best effort at exit
    }
  });
  return dir;
}
