/**
 * Docker's rules for turning an image config and run options into what a container runs.
 * @module
 */
import { lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ValidationError } from '../errors.js';
import type { ContainerConfig } from '../image/manifest.js';

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
 * would show it: the topmost layer that has it wins; an overlay whiteout (a 0/0 character
 * device) hides it. Never follows a symlink out of a layer.
 */
export function readLayeredFile(lowerDirs: readonly string[], relPath: string): string | undefined {
  for (const dir of lowerDirs) {
    const path = join(dir, relPath);
    let st;
    try {
      st = lstatSync(path);
    } catch {
      continue;
    }
    if (st.isCharacterDevice() && st.rdev === 0) return undefined;
    if (!st.isFile()) return undefined;
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  }
  return undefined;
}
