/**
 * One `NetworkService` per state directory per process, so that every `Runtime.open()` of a
 * root, and `run()` through the default root, share its events and its reconciliation.
 * @module
 */
import { resolve } from 'node:path';
import { NetworkService } from './network-service.js';

const services = new Map<string, NetworkService>();

/** The network service of the state directory `root`. */
export function networkServiceFor(root: string): NetworkService {
  const key = resolve(root);
  let s = services.get(key);
  if (!s) {
    s = new NetworkService(key);
    services.set(key, s);
  }
  return s;
}

/** The default runtime's service (`/var/lib/berth`), for `run()` with network names. */
export async function defaultNetworkService(): Promise<NetworkService> {
  // Imported lazily: runtime.ts imports run.ts, which imports the launcher, which imports this.
  const { DEFAULT_ROOT } = await import('../runtime.js');
  return networkServiceFor(DEFAULT_ROOT);
}

/** Every service of this process (a `container:<id>` reference may name a container of any of them). */
export function openNetworkServices(): NetworkService[] {
  return [...services.values()];
}
