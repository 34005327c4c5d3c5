/**
 * A real btrfs for tests: a sparse image file in /tmp made with `mkfs.btrfs` (btrfs-progs, see
 * scripts/test-deps.sh), attached to a loop device and mounted on a temp directory. `remove()`
 * unmounts, detaches and deletes everything, and a failed set-up undoes what it did; whatever
 * is left on the filesystem (a leaked subvolume) goes with it, so tests assert on
 * `subvolumes()` before removing.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface BtrfsLoop {
  /** The mounted filesystem's root directory. */
  readonly mountPoint: string;
  /** The loop device (`/dev/loopN`). */
  readonly device: string;
  /** Every subvolume's path relative to the filesystem root (`btrfs subvolume list`). */
  subvolumes(): string[];
  /** Unmounts, detaches the loop device, deletes the image; safe to call twice. */
  remove(): void;
}

function sh(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

/** Why btrfs tests cannot run here, or '' when they can. */
export function btrfsSkipReason(): string {
  if ((process.geteuid?.() ?? 0) !== 0) return 'needs root (losetup, mount)';
  for (const tool of ['mkfs.btrfs', 'btrfs', 'losetup']) {
    try {
      sh('sh', ['-c', `command -v ${tool}`]);
    } catch {
      return `${tool} is missing (scripts/test-deps.sh installs btrfs-progs)`;
    }
  }
  return '';
}

/** Makes, attaches and mounts a btrfs of `sizeMiB` (sparse: only what is written takes disk). */
export function makeBtrfsLoop(sizeMiB = 1024): BtrfsLoop {
  const dir = mkdtempSync(join(tmpdir(), 'berth-btrfs-'));
  const image = join(dir, 'fs.img');
  const mountPoint = join(dir, 'mnt');
  let device = '';
  let mounted = false;
  const remove = (): void => {
    if (mounted) {
      sh('umount', [mountPoint]);
      mounted = false;
    }
    if (device !== '') {
      sh('losetup', ['-d', device]);
      device = '';
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    writeFileSync(image, '');
    truncateSync(image, sizeMiB * 1024 * 1024);
    sh('mkfs.btrfs', ['-q', '-f', image]);
    device = sh('losetup', ['--find', '--show', image]).trim();
    sh('mkdir', [mountPoint]);
    sh('mount', ['-t', 'btrfs', device, mountPoint]);
    mounted = true;
  } catch (error) {
    remove();
    throw error;
  }
  const dev = device;
  return {
    mountPoint,
    device: dev,
    subvolumes: () =>
      sh('btrfs', ['subvolume', 'list', mountPoint])
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => l.replace(/^.* path /, '')),
    remove,
  };
}
