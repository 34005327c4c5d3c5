/**
 * Where a non-root berth keeps things, by the XDG base directory rules Podman follows too:
 * state (images, containers, volumes) under `$XDG_DATA_HOME/berth` (default
 * `~/.local/share/berth`), runtime files (the staging dir each container's root is assembled
 * under, inside its own mount namespace) under `$XDG_RUNTIME_DIR/berth`. Root keeps
 * `/var/lib/berth` and `/run/berth`.
 * @module
 */
import { homedir } from 'node:os';
import { isAbsolute, join } from 'node:path';
import { tmpdir } from 'node:os';

/** Root's state directory. */
export const ROOTFUL_STATE_DIR = '/var/lib/berth';
/** Root's runtime directory. */
export const ROOTFUL_RUNTIME_DIR = '/run/berth';

/**
 * The cgroup v1 parent an administrator makes for a non-root user in each hierarchy
 * (`mkdir /sys/fs/cgroup/<controller>/berth-<uid> && chown -R <user> …`): v1 has no delegation,
 * so this is how limits work without root there.
 */
export function delegatedCgroupParent(uid: number = process.geteuid?.() ?? 0): string {
  return `berth-${uid}`;
}

/** What the defaults depend on; every field defaults to this process. */
export interface UserDirsSource {
  uid?: number;
  env?: NodeJS.ProcessEnv;
  home?: string;
}

/** An XDG variable is used only when absolute (the spec says to ignore relative ones). */
function xdg(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name];
  return v !== undefined && v !== '' && isAbsolute(v) ? v : undefined;
}

/** The default state directory: `/var/lib/berth` for root, else `$XDG_DATA_HOME/berth` or `~/.local/share/berth`. */
export function defaultStateDir(source: UserDirsSource = {}): string {
  const uid = source.uid ?? process.geteuid?.() ?? 0;
  if (uid === 0) return ROOTFUL_STATE_DIR;
  const env = source.env ?? process.env;
  return join(xdg(env, 'XDG_DATA_HOME') ?? join(source.home ?? homedir(), '.local', 'share'), 'berth');
}

/**
 * The runtime directory: `/run/berth` for root, else `$XDG_RUNTIME_DIR/berth`, or (no
 * XDG_RUNTIME_DIR, e.g. a CI job without a login session) `<tmpdir>/berth-run-<uid>`, which
 * {@link ensurePrivateDir} refuses to use unless it is this user's and private.
 */
export function defaultRuntimeDir(source: UserDirsSource = {}): string {
  const uid = source.uid ?? process.geteuid?.() ?? 0;
  if (uid === 0) return ROOTFUL_RUNTIME_DIR;
  const env = source.env ?? process.env;
  const base = xdg(env, 'XDG_RUNTIME_DIR');
  return base !== undefined ? join(base, 'berth') : join(tmpdir(), `berth-run-${uid}`);
}
