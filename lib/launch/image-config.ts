/**
 * Docker's rules for turning an image config and run options into what a container runs.
 * @module
 */
import { ValidationError } from '../errors.js';
import type { ContainerConfig } from '../image/manifest.js';
import { readRootFile } from '../rootfs/root-files.js';

/**
 * The argv: `Entrypoint` + `Cmd`, where a `cmd` given by the caller replaces the image's Cmd,
 * and an `entrypoint` given by the caller replaces the image's Entrypoint *and* drops its Cmd
 * (Docker: `--entrypoint` resets the default command).
 * @throws ValidationError when nothing is left to run.
 */
export function commandFor(config: ContainerConfig | undefined, cmd?: string[], entrypoint?: string[]): string[] {
  const ep = entrypoint ?? config?.Entrypoint ?? [];
  const args = cmd ?? (entrypoint === undefined ? (config?.Cmd ?? []) : []);
  const argv = [...ep, ...args];
  if (argv.length === 0) {
    throw new ValidationError('cmd', 'no command specified: the image has no Entrypoint or Cmd, pass one');
  }
  return argv;
}

/**
 * Reads a small file from a stack of overlay lower dirs (top first) the way the merged view
 * would show it: the topmost layer that has it wins; whiteouts and opaque directories hide;
 * symlinks (of the file or of a directory on the way) resolve inside the image, never on the
 * host. See lib/rootfs/root-files.ts.
 */
export function readLayeredFile(lowerDirs: readonly string[], relPath: string): string | undefined {
  return readRootFile(lowerDirs, `/${relPath}`);
}
