/**
 * The networks' part of the state directory:
 *
 *   networks/<id>.json        one network: its config, its address plan, and the containers
 *                             connected to it while stopped (durable: fsync'd)
 *   networks/endpoints.log    the live endpoints of every network: address leases, host veth
 *                             names, published ports, and the process holding each lease, as
 *                             an append-only log (endpoint-log.ts): a join or leave appends
 *                             its change, whatever the number of endpoints
 *   locks/networks.lock       every change to either holds it (flock, see state/lock.ts)
 *
 * Endpoints belong to running containers, which do not survive a reboot, so their log is not
 * fsync'd: a container start pays no disk flush. The log records the kernel's boot id; a log
 * from an earlier boot holds only stale leases and is read as empty. `endpoints.json`, the
 * whole-file table of earlier versions, is read while no log exists and removed by the first
 * write.
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { ProcessIdentity } from '../state/process-identity.js';
import { TEMP_NAME, writeFileAtomic, writeJsonAtomic } from '../state/atomic-file.js';
import { LockDir } from '../state/lock.js';
import type { PublishedPort } from './types.js';
import { EndpointLog } from './endpoint-log.js';

export const NETWORKS_LOCK = 'networks';

/** A connection that outlives the container's runs (`network.connect()` on any container). */
export interface MemberRecord {
  name: string;
  aliases: string[];
  /** A static address. */
  ip?: string;
}

/** `networks/<id>.json`. */
export interface NetworkRecord {
  version: 1;
  id: string;
  name: string;
  driver: 'bridge';
  /** RFC 3339. */
  created: string;
  subnet: string;
  gateway: string;
  ipRange?: string;
  internal: boolean;
  mtu?: number;
  labels: Record<string, string>;
  /** The Linux bridge: `berth-` + 9 hex digits of the id. */
  bridge: string;
  bridgeMac: string;
  /** The runtime's default `bridge` network: no name resolution between containers (as Docker's). */
  isDefault: boolean;
  /** Containers connected with `network.connect()`, by container id: attached at each start. */
  members: Record<string, MemberRecord>;
}

/** One container's interface on one network, while the container runs. */
export interface EndpointRecord {
  id: string;
  networkId: string;
  /** The container's id (for `run()`: the launch id). */
  containerId: string;
  /** The container's name ('' for `run()`). */
  name: string;
  hostname: string;
  aliases: string[];
  ip: string;
  mac: string;
  /** Host end of the veth pair. */
  hostIfname: string;
  /** Name inside the container. */
  ifname: string;
  /** Published on this endpoint's address (only on the container's primary network). */
  ports: PublishedPort[];
  /** The process that made the lease: it holds it until the container's PID 1 is known. */
  owner: ProcessIdentity;
  /** The container's PID 1, once started: the lease lives as long as it does. */
  pid?: ProcessIdentity;
  /**
   * The monitor of a detached container: the lease lives as long as it does, for the monitor
   * restarts PID 1 (a new pid) with the same interfaces and addresses.
   */
  monitor?: ProcessIdentity;
  /** RFC 3339. */
  created: string;
}

/** The endpoint table (`networks/endpoints.log`, replayed). */
export interface EndpointTable {
  version: 1;
  bootId: string;
  /** The last address handed out per network (allocation continues after it). */
  cursors: Record<string, number>;
  endpoints: EndpointRecord[];
}

export interface NetworkState {
  networks: NetworkRecord[];
  endpoints: EndpointTable;
}

let bootId: string | undefined;
export function currentBootId(): string {
  bootId ??= readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim();
  return bootId;
}

const ID_FILE = /^[0-9a-f]{64}\.json$/;

function emptyTable(): EndpointTable {
  return { version: 1, bootId: currentBootId(), cursors: {}, endpoints: [] };
}

export class NetworkStore {
  readonly root: string;
  readonly dir: string;
  readonly locks: LockDir;
  #made = false;
  readonly #log: EndpointLog;

  constructor(root: string) {
    this.root = root;
    this.dir = join(root, 'networks');
    this.locks = new LockDir(root);
    this.#log = new EndpointLog(join(this.dir, 'endpoints.log'), currentBootId);
  }

  async init(): Promise<void> {
    if (this.#made) return;
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    this.#made = true;
  }

  networkPath(id: string): string {
    return join(this.dir, `${id}.json`);
  }
  /** The endpoint log. */
  get endpointsPath(): string {
    return this.#log.path;
  }
  /** The whole-file table of earlier versions. */
  get legacyEndpointsPath(): string {
    return join(this.dir, 'endpoints.json');
  }

  /** Every network and the endpoint table, as one consistent snapshot when the lock is held. */
  async read(): Promise<NetworkState> {
    await this.init();
    const names = (await readdir(this.dir)).filter((n) => ID_FILE.test(n));
    const networks: NetworkRecord[] = [];
    for (const n of names) {
      try {
        networks.push(JSON.parse(await readFile(join(this.dir, n), 'utf8')) as NetworkRecord);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
      }
    }
    networks.sort((a, b) => a.created.localeCompare(b.created) || a.name.localeCompare(b.name));
    return { networks, endpoints: await this.readEndpoints() };
  }

  async readEndpoints(): Promise<EndpointTable> {
    await this.init();
    if (!existsSync(this.#log.path) && existsSync(this.legacyEndpointsPath)) {
      // Only a power cut can leave a torn table (writes were renames), and then every lease in it is stale.
      const table = EndpointLog.readLegacy(this.legacyEndpointsPath) ?? emptyTable();
      if (table.bootId !== currentBootId()) return { ...emptyTable(), cursors: table.cursors ?? {} };
      return table;
    }
    return this.#log.read();
  }

  /** Runs `fn` holding the networks lock, with a fresh snapshot. */
  async locked<T>(fn: (state: NetworkState) => Promise<T>): Promise<T> {
    await this.init();
    return this.locks.with(NETWORKS_LOCK, async () => fn(await this.read()));
  }

  /** Runs `fn` holding the networks lock, with a fresh endpoint table only (a container's start and exit). */
  async lockedEndpoints<T>(fn: (table: EndpointTable) => Promise<T>): Promise<T> {
    await this.init();
    return this.locks.with(NETWORKS_LOCK, async () => fn(await this.readEndpoints()));
  }

  async writeNetwork(rec: NetworkRecord): Promise<void> {
    await this.init();
    await writeJsonAtomic(this.networkPath(rec.id), rec);
  }

  async deleteNetwork(id: string): Promise<void> {
    await rm(this.networkPath(id), { force: true });
  }

  /** Makes the stored table `table` (the lock held): appends the difference to the log. */
  async writeEndpoints(table: EndpointTable): Promise<void> {
    await this.init();
    // Not durable: see the module comment.
    await this.#log.write(table, (text) => writeFileAtomic(this.#log.path, text, { durable: false }));
    if (existsSync(this.legacyEndpointsPath)) await rm(this.legacyEndpointsPath, { force: true });
  }

  /** Temp files of writers that died mid-write. */
  async removeStaleTemps(isAlive: (pid: number) => boolean): Promise<void> {
    await this.init();
    for (const n of await readdir(this.dir)) {
      const m = TEMP_NAME.exec(n);
      if (m && !isAlive(Number(m[1]))) await rm(join(this.dir, n), { force: true });
    }
  }
}
