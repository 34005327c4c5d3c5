/**
 * The distribution's name, as `docker info`'s `OperatingSystem`.
 * @module
 */
import { readFileSync } from 'node:fs';

/** `PRETTY_NAME` of `/etc/os-release` (or `/usr/lib/os-release`); `Linux` when neither says. */
export function operatingSystem(): string {
  for (const path of ['/etc/os-release', '/usr/lib/os-release']) {
    try {
      const name = /^PRETTY_NAME="?([^"\n]*)"?$/m.exec(readFileSync(path, 'utf8'))?.[1];
      if (name) return name;
    } catch {
      // try the next location
    }
  }
  return 'Linux';
}
