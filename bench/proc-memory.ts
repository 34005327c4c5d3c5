import { readdirSync, readFileSync } from 'node:fs';

/** Pids whose full argv is exactly `argv`. */
export function findByArgv(argv: readonly string[]): number[] {
  const want = `${argv.join('\0')}\0`;
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/cmdline`, 'latin1') === want) out.push(Number(d));
    } catch {
      // exited while we looked
    }
  }
  return out;
}

export function parentOf(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
  // comm may hold spaces and parentheses: the fields after the last ')' are fixed.
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

export function commOf(pid: number): string {
  return readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
}

/**
 * The processes that keep a container going on the host: the ancestors of its main process,
 * stopping below PID 1 and below this benchmark's own process (Node is the caller, not a helper).
 * A runtime that leaves no monitor behind (crun/runc --detach) has none.
 */
export function helperChain(containerPid: number): number[] {
  const chain: number[] = [];
  let p = parentOf(containerPid);
  while (p > 1 && p !== process.pid && chain.length < 16) {
    chain.push(p);
    p = parentOf(p);
  }
  return chain;
}

/** Unique set size in KiB: memory only this process maps (Private_Clean + Private_Dirty + Private_Hugetlb). */
export function ussKiB(pid: number): number {
  const text = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8');
  let kib = 0;
  for (const m of text.matchAll(/^Private_(?:Clean|Dirty|Hugetlb):\s+(\d+) kB/gm)) kib += Number(m[1]);
  return kib;
}
