/**
 * The `/etc` and top-level layout of a `{ host: true }` sandbox: the host's own /usr, /bin, /lib*
 * and /sbin run read-only (as with bubblewrap), and this module decides which few host files in
 * /etc the sandbox sees, which it gets generated instead, and which it must never see.
 *
 * Everything here is a plan (data); the mount code executes it. Sandbox paths equal host paths,
 * so a bind `'/etc/ld.so.cache'` means "host `<hostEtc>/ld.so.cache` read-only at
 * `/etc/ld.so.cache`"; the executor creates missing parents on the sandbox's own /etc tmpfs.
 * @module
 */

import { lstatSync, readlinkSync, realpathSync, type Stats } from 'node:fs';
import { posix } from 'node:path';
import { BerthError, ValidationError } from '../errors.js';

/**
 * Host paths under /etc that host programs need, bound read-only when they exist. Each is a leaf:
 * no entry is inside another, so mount order does not matter. Relative to /etc.
 */
export const HOST_ETC_BINDS: readonly string[] = Object.freeze([
  // The dynamic linker: without the cache, every host binary falls back to a slow path search
  // and misses libraries installed under ld.so.conf.d paths.
  'ld.so.cache',
  'ld.so.conf',
  'ld.so.conf.d',
  // Debian's alternatives: /usr/bin/editor, java, python3 ... are symlinks through this dir.
  'alternatives',
  // TLS trust anchors. Only the public halves: ssl/ and pki/tls/ as a whole hold private keys.
  'ssl/certs',
  'ssl/cert.pem',
  'ssl/ca-bundle.pem',
  'ssl/openssl.cnf',
  'ca-certificates',
  'ca-certificates.conf',
  'pki/ca-trust',
  'pki/tls/certs',
  'pki/tls/cert.pem',
  'pki/tls/openssl.cnf',
  // Fedora's openssl.cnf includes its crypto-policies back-end; without it OpenSSL refuses to load.
  'crypto-policies',
  // Resolver behaviour and the name tables libc reads with "files" in nsswitch.conf.
  'host.conf',
  'gai.conf',
  'protocols',
  'services',
  'rpc',
  // Time zone: without it, the host's programs silently run in UTC.
  'localtime',
  'timezone',
  'locale.alias',
  'mime.types',
  // fontconfig aborts with "Cannot load default config file" without fonts.conf.
  'fonts',
  'os-release',
]);

/**
 * Paths under /etc that a sandbox must never see, because they hold secrets (password hashes,
 * host keys, credentials, tokens) or identify the host (machine-id). Relative to /etc.
 * {@link isSecretEtcPath} also refuses their ancestors, since binding `ssl` would expose `ssl/private`.
 */
export const SECRET_ETC_PATHS: readonly string[] = Object.freeze([
  'shadow',
  'shadow-',
  'gshadow',
  'gshadow-',
  'security/opasswd',
  'sudoers',
  'sudoers.d',
  'ssh',
  'dropbear',
  'ssl/private',
  'pki/tls/private',
  'pki/CA/private',
  'pki/nssdb',
  'machine-id',
  'krb5.keytab',
  'sssd',
  'ldap.secret',
  'libnss-ldap.secret',
  'pam_ldap.secret',
  'ipsec.secrets',
  'ipsec.d/private',
  'swanctl/private',
  'wireguard',
  'NetworkManager/system-connections',
  'ppp/chap-secrets',
  'ppp/pap-secrets',
  'openvpn',
  'letsencrypt',
  'libvirt/secrets',
  'docker',
  'containers/auth.json',
  'mysql/debian.cnf',
  'postfix/sasl_passwd',
  'samba/smbpasswd',
  'sasldb2',
  'credstore',
  'credstore.encrypted',
  // Registry and VCS client configs routinely carry tokens.
  'npmrc',
  'pip.conf',
  'gitconfig',
  'netrc',
]);

/**
 * True when `path` (absolute, inside the sandbox) is a secret path, lies under one, or contains
 * one: binding `/etc`, `/etc/ssl` or `/etc/ssh/sshd_config` are all refused.
 */
export function isSecretEtcPath(path: string): boolean {
  const p = posix.normalize(path).replace(/\/+$/, '') || '/';
  return SECRET_ETC_PATHS.some((rel) => {
    const secret = `/etc/${rel}`;
    return p === secret || p.startsWith(`${secret}/`) || secret.startsWith(p === '/' ? '/' : `${p}/`);
  });
}

function assertNotSecret(path: string): void {
  if (isSecretEtcPath(path)) {
    throw new BerthError('ERR_INTERNAL', `refusing to expose ${path} to a host sandbox: it is or contains a secret`, { path });
  }
}

// Checked at load, so an edit that adds e.g. 'ssl' to the bind list fails every test at import.
for (const rel of HOST_ETC_BINDS) assertNotSecret(`/etc/${rel}`);

/** The identity the sandbox runs as, for its generated passwd and group. */
export interface HostEtcUser {
  uid: number;
  gid: number;
  /**
   * Login name; `'user'` when absent. `root`, `nobody` and `nogroup` are reserved for their ids,
   * and uids 0 and 65534 always appear as `root` and `nobody`.
   */
  name?: string;
  /** `$HOME`, an absolute path. */
  home: string;
}

/** Options of {@link planHostEtc}. */
export interface HostEtcOptions {
  /** The sandbox's hostname (RFC 1123, at most 64 bytes). */
  hostname: string;
  user: HostEtcUser;
  /** Where the host's /etc is; default `'/etc'`. Injectable for tests. */
  hostEtc?: string;
  /** Content for /etc/resolv.conf once sandboxes get a network; default: a comment, no servers. */
  resolvConf?: string;
}

/** A file berth writes into the sandbox's /etc. */
export interface GeneratedFile {
  path: string;
  content: string;
  mode: number;
}

/** A symlink to create in the sandbox. `target` is the host's link text, unchanged. */
export interface PlannedSymlink {
  path: string;
  target: string;
}

/** What the sandbox's /etc holds: read-only binds from the host, generated files, symlinks. */
export interface HostEtcPlan {
  binds: string[];
  files: GeneratedFile[];
  symlinks: PlannedSymlink[];
}

const FILE_MODE = 0o644;

/**
 * Plans the /etc of a host sandbox.
 *
 * - `binds`: the entries of {@link HOST_ETC_BINDS} that exist on the host, never a secret one
 *   (checked again after following symlinks, so `ssl/cert.pem -> private/key.pem` is dropped).
 * - `symlinks`: host entries that are symlinks into /usr (`localtime`, `os-release`) are
 *   reproduced as symlinks, since /usr is the host's in the sandbox too.
 * - `files`: generated passwd, group, hosts, hostname, resolv.conf and nsswitch.conf, mode 0644.
 *   The host's own passwd/group would leak every account name and home directory.
 * @throws {ValidationError} for a malformed hostname or user (they end up in line-based files).
 */
export function planHostEtc(options: HostEtcOptions): HostEtcPlan {
  const hostname = checkHostname(options.hostname);
  const user = checkUser(options.user);
  const hostEtc = options.hostEtc ?? '/etc';

  const { binds, symlinks } = scanHostEtc(hostEtc);
  const files: GeneratedFile[] = [
    { path: '/etc/passwd', content: passwdFile(user), mode: FILE_MODE },
    { path: '/etc/group', content: groupFile(user), mode: FILE_MODE },
    { path: '/etc/hosts', content: hostsFile(hostname), mode: FILE_MODE },
    { path: '/etc/hostname', content: `${hostname}\n`, mode: FILE_MODE },
    { path: '/etc/resolv.conf', content: resolvConfFile(options.resolvConf), mode: FILE_MODE },
    { path: '/etc/nsswitch.conf', content: NSSWITCH_CONF, mode: FILE_MODE },
  ];
  return { binds: [...binds], files, symlinks: [...symlinks] };
}

const scanCache = new Map<string, { binds: readonly string[]; symlinks: readonly PlannedSymlink[] }>();

/**
 * The host-dependent half of {@link planHostEtc}: which /etc entries exist and how to give them.
 * It is the same for every sandbox of a process and costs ~0.6 ms of lstat/realpath calls, so it
 * is computed once per host /etc path (host mode's start path is hot).
 */
function scanHostEtc(hostEtc: string): { binds: readonly string[]; symlinks: readonly PlannedSymlink[] } {
  const cached = scanCache.get(hostEtc);
  if (cached) return cached;
  const binds: string[] = [];
  const symlinks: PlannedSymlink[] = [];
  let hostEtcReal: string | undefined;
  for (const rel of HOST_ETC_BINDS) {
    const path = `/etc/${rel}`;
    const source = posix.join(hostEtc, rel);
    assertNotSecret(path);
    const stats = tryLstat(source);
    if (stats === undefined) continue;
    if (stats.isSymbolicLink()) {
      const target = readlinkSync(source);
      const resolved = posix.resolve(posix.dirname(path), target);
      if (resolved === '/usr' || resolved.startsWith('/usr/')) {
        symlinks.push({ path, target });
        continue;
      }
      if (isSecretEtcPath(resolved)) continue;
      // The mount would follow the link on the host, so vet where it really lands.
      let real: string;
      try {
        real = realpathSync(source);
        hostEtcReal ??= realpathSync(hostEtc);
      } catch {
        continue;
      }
      const inEtc = posix.relative(hostEtcReal, real);
      if (!inEtc.startsWith('..') && !posix.isAbsolute(inEtc) && isSecretEtcPath(`/etc/${inEtc}`)) continue;
      const followed = tryLstat(real);
      if (followed === undefined || !(followed.isFile() || followed.isDirectory())) continue;
      binds.push(path);
      continue;
    }
    if (stats.isFile() || stats.isDirectory()) binds.push(path);
  }

  const result = { binds: Object.freeze(binds), symlinks: Object.freeze(symlinks) };
  scanCache.set(hostEtc, result);
  return result;
}

// Not the host's: it may name sss, ldap, winbind or systemd modules whose daemons the sandbox
// cannot reach (lookups stall until a timeout) or that answer with host accounts our generated
// passwd does not have.
const NSSWITCH_CONF = `# Generated by berth: passwd, group and hosts are berth's own files.
passwd:     files
group:      files
shadow:     files
hosts:      files dns
networks:   files
protocols:  files
services:   files
ethers:     files
rpc:        files
netgroup:   files
`;

const RESERVED_NAMES: ReadonlyMap<string, number> = new Map([['root', 0], ['nobody', 65534], ['nogroup', 65534]]);
const NOBODY = 65534;

interface CheckedUser {
  uid: number;
  gid: number;
  name: string;
  home: string;
}

function checkUser(user: HostEtcUser): CheckedUser {
  if (typeof user !== 'object' || user === null) throw new ValidationError('user', 'must be an object { uid, gid, home, name? }');
  for (const key of ['uid', 'gid'] as const) {
    const id = user[key];
    if (!Number.isSafeInteger(id) || id < 0 || id > 2 ** 32 - 2) {
      throw new ValidationError(`user.${key}`, `must be an integer in 0..${2 ** 32 - 2}, got ${String(id)}`);
    }
  }
  const name = user.name ?? 'user';
  // The name and home land in colon- and newline-separated files; one stray ':' or '\n' would
  // let a caller forge an extra passwd line, such as a second uid 0.
  if (typeof name !== 'string' || !/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$/.test(name)) {
    throw new ValidationError('user.name', `invalid user name ${JSON.stringify(name)}: use letters, digits, '_', '.', '-' (at most 32)`);
  }
  const reservedId = RESERVED_NAMES.get(name);
  if (reservedId !== undefined && reservedId !== user.uid) {
    throw new ValidationError('user.name', `the name ${JSON.stringify(name)} is reserved for id ${reservedId}`);
  }
  if (typeof user.home !== 'string' || !user.home.startsWith('/') || /[:\n\r\0]/.test(user.home)) {
    throw new ValidationError('user.home', `invalid home ${JSON.stringify(user.home)}: must be an absolute path without ':' or newlines`);
  }
  return { uid: user.uid, gid: user.gid, name, home: user.home };
}

function checkHostname(hostname: string): string {
  const label = /^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
  if (typeof hostname !== 'string' || hostname.length === 0 || hostname.length > 64 || !hostname.split('.').every((l) => label.test(l))) {
    throw new ValidationError('hostname', `invalid hostname ${JSON.stringify(hostname)}: use dot-separated labels of letters, digits and '-', at most 64 characters`);
  }
  return hostname;
}

function passwdFile(user: CheckedUser): string {
  const lines = [`root:x:0:0:root:${user.uid === 0 ? user.home : '/root'}:/bin/sh`];
  if (user.uid !== 0 && user.uid !== NOBODY) {
    lines.push(`${user.name}:x:${user.uid}:${user.gid}:${user.name}:${user.home}:/bin/sh`);
  }
  lines.push(`nobody:x:${NOBODY}:${NOBODY}:nobody:${user.uid === NOBODY ? user.home : '/nonexistent'}:/usr/sbin/nologin`);
  return `${lines.join('\n')}\n`;
}

function groupFile(user: CheckedUser): string {
  const lines = ['root:x:0:'];
  if (user.gid !== 0 && user.gid !== NOBODY) {
    // A user without its own passwd line (root, nobody) cannot lend its name to the group.
    const name = user.uid === 0 || user.uid === NOBODY ? `group${user.gid}` : user.name;
    lines.push(`${name}:x:${user.gid}:`);
  }
  lines.push(`nogroup:x:${NOBODY}:`);
  return `${lines.join('\n')}\n`;
}

function hostsFile(hostname: string): string {
  const name = hostname === 'localhost' ? '' : ` ${hostname}`;
  return `127.0.0.1\tlocalhost${name}\n::1\tlocalhost ip6-localhost ip6-loopback${name}\n`;
}

function resolvConfFile(resolvConf: string | undefined): string {
  if (resolvConf === undefined) return '# Generated by berth: this sandbox has no network, so no name servers.\n';
  if (typeof resolvConf !== 'string') throw new ValidationError('resolvConf', 'must be a string');
  return resolvConf.endsWith('\n') ? resolvConf : `${resolvConf}\n`;
}

function tryLstat(path: string): Stats | undefined {
  try {
    return lstatSync(path);
  } catch {
    // Missing, or unreadable by this user: the sandbox simply goes without it.
    return undefined;
  }
}

/** The top-level directories a host sandbox takes from the host. None is inside another, so order is free. */
export const HOST_ROOT_ENTRIES: readonly string[] = Object.freeze(['/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32', '/usr']);

/**
 * Decides, for each of {@link HOST_ROOT_ENTRIES}, how the sandbox gets it: a symlink where the
 * host has one (merged-/usr systems: `/bin -> usr/bin`), reproduced with the host's link text, or
 * a read-only bind of the host directory. Missing entries (and odd ones: files, devices) are
 * skipped. Paths are sandbox paths; the host source of a bind is `hostRoot` + path.
 * @param hostRoot the host's root; injectable for tests.
 */
export function planHostRootSymlinks(hostRoot = '/'): { symlinks: PlannedSymlink[]; binds: string[] } {
  const symlinks: PlannedSymlink[] = [];
  const binds: string[] = [];
  for (const path of HOST_ROOT_ENTRIES) {
    const source = posix.join(hostRoot, path);
    const stats = tryLstat(source);
    if (stats === undefined) continue;
    if (stats.isSymbolicLink()) symlinks.push({ path, target: readlinkSync(source) });
    else if (stats.isDirectory()) binds.push(path);
  }
  return { symlinks, binds };
}
