/**
 * The embedded resolver's side in TypeScript (docs/design/networks.md § DNS): the name file of
 * each member of a user network (`networks/<id>.dns/<container id>`), the resolver process of
 * each network (`berth-helper dns`, started on a network's first join, gone when it has no
 * member), and the hand-over text a launch sends it.
 *
 * Why files, one per member: a join or leave writes or deletes one small file, O(1) whatever
 * the size of the network, where the /etc/hosts rewrites this replaces touched every peer
 * (O(n) per join, O(n²) per network). The resolver follows the directory with inotify.
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BerthError } from '../errors.js';
import { fromNativeError, helperExecutablePath, type NativeBinding } from '../native.js';
import { identityOf, isAlive, type ProcessIdentity } from '../state/process-identity.js';
import type { EndpointRecord, NetworkRecord, NetworkStore } from './network-store.js';

/** Where every member's resolver listens inside its own network namespace (Docker's address). */
export const RESOLVER_ADDRESS = '127.0.0.11';

/** How long a new resolver may take to say it listens. */
const READY_TIMEOUT_MS = 20_000;

/** The directory of a network's name files. */
export function nameDir(store: NetworkStore, networkId: string): string {
  return join(store.dir, `${networkId}.dns`);
}

function pidFile(store: NetworkStore, networkId: string): string {
  return join(store.dir, `${networkId}.dns.pid`);
}

/** The resolver's abstract unix socket name: per runtime (tag) and network. */
export function controlName(tag: string, networkId: string): string {
  return `berth-dns-${tag}-${networkId.slice(0, 32)}`;
}

/** The name file of an endpoint: its address, then the names it answers to, one a line. */
export function nameFileText(e: Pick<EndpointRecord, 'ip' | 'name' | 'hostname' | 'aliases'>): string {
  const names = [...new Set([...(e.name ? [e.name] : []), e.hostname, ...e.aliases].filter((n) => n !== ''))];
  return `${e.ip}\n${names.join('\n')}\n`;
}

/**
 * Writes an endpoint's name file (call with the networks lock held). Beside, then renamed:
 * the resolver reads it on IN_MOVED_TO and must never see half a file. Not fsync'd: the
 * entries belong to running containers, which a reboot ends.
 */
export function writeNameFile(store: NetworkStore, e: EndpointRecord): void {
  const dir = nameDir(store, e.networkId);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const temp = join(dir, `.${e.containerId}.${process.pid}`);
  writeFileSync(temp, nameFileText(e), { mode: 0o600 });
  renameSync(temp, join(dir, e.containerId));
}

/** Deletes an endpoint's name file (networks lock held). */
export function removeNameFile(store: NetworkStore, networkId: string, containerId: string): void {
  rmSync(join(nameDir(store, networkId), containerId), { force: true });
}

/** Deletes a removed network's directory and resolver pid file. */
export function removeNameDir(store: NetworkStore, networkId: string): void {
  rmSync(nameDir(store, networkId), { recursive: true, force: true });
  rmSync(pidFile(store, networkId), { force: true });
}

/**
 * Deletes the name files of containers that hold no live endpoint on the network any more (a
 * crashed owner's, a detached container that died with the machine's state): reconciliation,
 * networks lock held. Returns how many went.
 */
export function pruneNameFiles(store: NetworkStore, networks: readonly NetworkRecord[], live: readonly EndpointRecord[]): number {
  let removed = 0;
  for (const rec of networks) {
    if (rec.isDefault) continue;
    let names: string[];
    try {
      names = readdirSync(nameDir(store, rec.id));
    } catch {
      continue;
    }
    const members = new Set(live.filter((e) => e.networkId === rec.id).map((e) => e.containerId));
    for (const n of names) {
      if (members.has(n) && !n.startsWith('.')) continue;
      // A dot file is a writer's temp: only one whose writer is gone.
      if (n.startsWith('.') && isAlive(identityOf(Number(n.slice(n.lastIndexOf('.') + 1))))) continue;
      rmSync(join(nameDir(store, rec.id), n), { force: true });
      removed++;
    }
  }
  return removed;
}

/**
 * The hand-over text of a member (src-native/dns-protocol.h): its networks (the resolver's
 * first), whether anything may be forwarded (not when every network is internal), and its
 * own upstream servers (`dns`), IPv4 only.
 */
export function handOverMessage(containerId: string, networks: readonly NetworkRecord[], dns?: readonly string[]): string {
  const lines = [`member ${containerId}`];
  for (const n of networks) lines.push(`net ${n.id} ${n.name.toLowerCase()}`);
  lines.push(`forward ${networks.some((n) => !n.internal) ? 1 : 0}`);
  for (const s of dns ?? []) if (/^\d{1,3}(\.\d{1,3}){3}$/.test(s)) lines.push(`upstream ${s}`);
  return `${lines.join('\n')}\n`;
}

/** The `update` text for a running member whose user networks are now `networks`. */
export function updateMessage(containerId: string, networks: readonly NetworkRecord[]): string {
  const lines = [`update ${containerId}`];
  for (const n of networks) lines.push(`net ${n.id} ${n.name.toLowerCase()}`);
  lines.push(`forward ${networks.some((n) => !n.internal) ? 1 : 0}`);
  return `${lines.join('\n')}\n`;
}

/**
 * After `connect()` / `disconnect()` of a running container: the resolver that serves it (the
 * one of the first user network it started on, which berth does not record) learns its
 * networks now, so its own lookups of a newly connected network's names resolve. Each
 * candidate's resolver is asked in turn; only the one serving the member says yes. A container
 * that started with no user network has no member socket anywhere: nothing to tell.
 */
export async function tellResolvers(binding: NativeBinding, tag: string, containerId: string, candidates: readonly NetworkRecord[], networks: readonly NetworkRecord[]): Promise<boolean> {
  const message = updateMessage(containerId, networks);
  for (const n of candidates) {
    if (n.isDefault) continue;
    try {
      if (await binding.dnsUpdate({ control: controlName(tag, n.id), message })) return true;
    } catch (error) {
      throw fromNativeError(error);
    }
  }
  return false;
}

/**
 * Makes sure the network's resolver runs (networks lock held, so that it cannot decide to exit
 * meanwhile: it exits only under the same lock, and only with no name file left, and the
 * caller wrote one). Started detached in a session of its own: it serves detached containers
 * after this process is gone, and no Node process needs to keep running for names to resolve.
 */
export async function ensureResolver(store: NetworkStore, tag: string, networkId: string): Promise<string> {
  const control = controlName(tag, networkId);
  const path = pidFile(store, networkId);
  try {
    const held = JSON.parse(readFileSync(path, 'utf8')) as ProcessIdentity;
    if (isAlive(held)) return control;
  } catch {
    // No resolver yet, or a torn file: start one.
  }
  const child = spawn(helperExecutablePath(), ['dns', store.root, networkId, control], {
    detached: true,
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const said = await new Promise<string>((resolve) => {
    let text = '';
    const timer = setTimeout(() => resolve('timeout'), READY_TIMEOUT_MS);
    const done = (word: string): void => {
      clearTimeout(timer);
      resolve(word);
    };
    child.stdout.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.includes('\n')) done(text.trim().split('\n')[0]!);
    });
    child.once('error', (e) => done(`error: ${e.message}`));
    child.once('exit', (code) => done(text.trim() || `exit ${code}`));
  });
  child.stdout.destroy();
  child.unref();
  if (said === 'ready') {
    const identity = identityOf(child.pid!);
    if (identity) writeFileSync(path, JSON.stringify(identity), { mode: 0o600 });
    return control;
  }
  if (said === 'running') return control;
  if (said === 'timeout' && child.pid !== undefined) child.kill('SIGKILL');
  throw new BerthError('ERR_HELPER', `could not start the DNS resolver of network ${networkId} (berth-helper dns): ${said}`);
}
