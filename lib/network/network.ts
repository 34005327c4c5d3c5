/**
 * `Network`: one bridge network of a runtime, as `rt.networks` hands it out.
 * @module
 */
import { EventEmitter } from 'eventemitter3';
import type { NetworkService } from './network-service.js';
import type { NetworkInspect } from './types.js';

/** A container as `network.connect()` needs it: `rt.containers`' `Container` fits. */
export interface ConnectableContainer {
  readonly id: string;
  readonly name: string;
  inspect(): Promise<{
    State: { Running: boolean; Pid: number };
    Config: { Hostname: string };
    HostConfig?: { NetworkMode?: string };
  }>;
}

/** Options of {@link Network.connect}. */
export interface ConnectOptions {
  /** More names the container answers to on this network. */
  aliases?: string[];
  /** A static IPv4 address inside the network's subnet. */
  ip?: string;
}

/** A container joining or leaving a network (in this process). */
export interface NetworkEndpointEvent {
  /** Container id (for `run()`, its launch id). */
  containerId: string;
  /** Container name, or its hostname when it has no name (`run()`). */
  name: string;
  /** Its address on the network. */
  ip: string;
}

/** Events of a {@link Network}. */
export interface NetworkEvents {
  connect: [NetworkEndpointEvent];
  disconnect: [NetworkEndpointEvent];
  destroy: [];
}

/** @internal What a Network delegates to its service. */
export interface NetworkOps {
  inspect(id: string): Promise<NetworkInspect>;
  connect(id: string, container: ConnectableContainer, options: ConnectOptions): Promise<void>;
  disconnect(id: string, container: ConnectableContainer | string): Promise<void>;
  remove(id: string): Promise<void>;
}

/** A bridge network. Get one from `rt.networks.create()`, `get()` or `list()`. */
export class Network extends EventEmitter<NetworkEvents> {
  readonly id: string;
  readonly name: string;
  /** RFC 3339. */
  readonly created: string;
  /** @internal The runtime's network service: a container option `network: thisNetwork` resolves through it. */
  readonly service: NetworkService;
  readonly #ops: NetworkOps;

  /** @internal */
  constructor(ops: NetworkOps, record: { id: string; name: string; created: string }, service: NetworkService) {
    super();
    this.#ops = ops;
    this.service = service;
    this.id = record.id;
    this.name = record.name;
    this.created = record.created;
  }

  /** Docker's `network inspect`: subnet, gateway, options, and the running containers with their addresses. */
  inspect(): Promise<NetworkInspect> {
    return this.#ops.inspect(this.id);
  }

  /**
   * Connects a container: at once if it runs (a new interface appears in it, `eth1`…), and at
   * every later start. Peers on the network resolve it by name, hostname and `aliases`; a
   * running container that started on a user network resolves this network's names at once too.
   * @throws ConflictError when already connected or its network mode is none/host/container;
   *   ValidationError for a bad `ip`.
   */
  connect(container: ConnectableContainer, options: ConnectOptions = {}): Promise<void> {
    return this.#ops.connect(this.id, container, options);
  }

  /** Disconnects a container (its id or name works too), removing its interface if it runs. @throws NotFoundError when not connected */
  disconnect(container: ConnectableContainer | string): Promise<void> {
    return this.#ops.disconnect(this.id, container);
  }

  /** Removes the network and its bridge. @throws ConflictError while containers use it. */
  remove(): Promise<void> {
    return this.#ops.remove(this.id);
  }

  /** In stored options a network is its name. */
  toJSON(): string {
    return this.name;
  }
}
