/**
 * Device modes a rootless test needs. Debian's udev makes /dev/net/tun and /dev/fuse 0666; a
 * host without udev (this VM) leaves them 0600, which berth reports (rt.info(), typed errors)
 * but which would stop the tests of what works with the usual mode. The test opens the device
 * while it runs and puts the original mode back.
 * @module
 */
import { chmodSync, statSync } from 'node:fs';

/** Makes `path` readable and writable by everyone unless it is; returns what restores its mode. */
export function openToUsers(path: string): () => void {
  const mode = statSync(path).mode & 0o777;
  if ((mode & 0o006) === 0o006) return () => {};
  chmodSync(path, 0o666);
  return () => chmodSync(path, mode);
}
