/**
 * Which user-mode network stack a rootless container gets, and why: `pasta` (Debian `passt`)
 * when installed, else `slirp4netns`. Both give a network namespace owned by an unprivileged
 * user a tap device whose traffic a host process carries through ordinary sockets, so outbound
 * connections and published ports need no root, no bridge and no packet filter.
 *
 * pasta is preferred, as Podman 5 does: it keeps the host's addresses (no NAT subnet of its
 * own), takes its port list on the command line (slirp4netns needs one API request per port
 * after it started), and is the maintained one. It is not faster on every host: on the test VM
 * it took longer to start (docs/design/networks.md § Rootless has the numbers). Both need `/dev/net/tun` open to the user: Debian's udev
 * rule makes it 0666, but a host without udev (containers, minimal VMs) may leave it 0600.
 * @module
 */
import { accessSync, constants } from 'node:fs';
import { UnsupportedError } from '../errors.js';

/** The user-mode network stacks berth can start. */
export type UserModeStackName = 'pasta' | 'slirp4netns';

/** The stack a rootless container's network would use on this host, for `rt.info()`. */
export interface UserModeStackInfo {
  /** The stack berth starts, or `null` when none can run. */
  readonly stack: UserModeStackName | null;
  /** Its path, or `null`. */
  readonly path: string | null;
  /** Why this stack, or what is missing and the fix. */
  readonly reason: string;
  /** Whether this process can open `/dev/net/tun`, which both stacks need; `fix` when it cannot. */
  readonly tun: { readonly usable: boolean; readonly detail: string; readonly fix?: string };
}

/** Where the stacks were found (`null`: not installed). */
export interface UserModeTools {
  readonly pasta: string | null;
  readonly slirp4netns: string | null;
}

/** Default path of the tun device both stacks open. */
export const TUN_DEVICE = '/dev/net/tun';

/** The fix when neither stack is installed. */
export const INSTALL_FIX = 'apt-get install passt (or slirp4netns)';

function probeTun(path: string): UserModeStackInfo['tun'] {
  try {
    accessSync(path, constants.R_OK | constants.W_OK);
    return { usable: true, detail: `${path} is readable and writable` };
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? 'error';
    const fix = code === 'ENOENT' ? 'modprobe tun' : `chmod 0666 ${path} (Debian's udev default)`;
    return { usable: false, detail: `${path}: ${code}`, fix };
  }
}

/**
 * The stack to use: `prefer` when it is installed, else pasta, else slirp4netns. Never throws.
 * @param tunPath the tun device to probe (default {@link TUN_DEVICE}).
 */
export function describeUserModeStack(tools: UserModeTools, prefer?: UserModeStackName, tunPath = TUN_DEVICE): UserModeStackInfo {
  const tun = probeTun(tunPath);
  const order: UserModeStackName[] = prefer === 'slirp4netns' ? ['slirp4netns', 'pasta'] : ['pasta', 'slirp4netns'];
  const found = order.find((n) => tools[n] !== null);
  if (found === undefined) {
    return { stack: null, path: null, reason: `neither pasta nor slirp4netns is installed; fix: ${INSTALL_FIX}`, tun };
  }
  if (!tun.usable) return { stack: null, path: tools[found], reason: `${found} is installed but cannot open the tun device: ${tun.detail}; fix: ${tun.fix}`, tun };
  const why =
    found === 'pasta'
      ? prefer === undefined || prefer === 'pasta'
        ? 'pasta is installed (preferred: the host\'s addresses, ports given at start, maintained)'
        : 'slirp4netns was asked for but is not installed; pasta is'
      : prefer === 'slirp4netns'
        ? 'slirp4netns was asked for'
        : 'pasta (Debian passt) is not installed; slirp4netns is the fallback';
  return { stack: found, path: tools[found], reason: why, tun };
}

/**
 * The stack to start, or a typed refusal naming the package or the device fix.
 * @throws UnsupportedError (code `ERR_UNSUPPORTED`) when no stack can run here.
 */
export function requireUserModeStack(info: UserModeStackInfo): { stack: UserModeStackName; path: string } {
  if (info.stack === null || info.path === null) {
    throw new UnsupportedError(`rootless networking needs a user-mode network stack: ${info.reason}`, info.tun.usable ? {} : { path: TUN_DEVICE });
  }
  return { stack: info.stack, path: info.path };
}
