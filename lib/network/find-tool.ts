/**
 * Finding the host programs networks run (`nft`, `iptables`, `pasta`, ...).
 * @module
 */
import { existsSync } from 'node:fs';

// Root's sbin directories are often missing from a Node service's PATH.
const SBIN = ['/usr/sbin', '/sbin', '/usr/bin', '/bin'];

/** The path of the program `name` in PATH or the system dirs; `undefined` when absent. */
export function findTool(name: string): string | undefined {
  const dirs = [...(process.env['PATH'] ?? '').split(':').filter(Boolean), ...SBIN];
  for (const d of dirs) if (existsSync(`${d}/${name}`)) return `${d}/${name}`;
  return undefined;
}
