/**
 * `top()`: the processes in a container's cgroup, read from /proc, in the shape of
 * `docker top` (the titles and columns of `ps -ef`) plus typed fields.
 * @module
 */
import { readFileSync } from 'node:fs';
import { statFields } from '../state/process-identity.js';

/** Linux's USER_HZ on every architecture berth supports. */
const CLK_TCK = 100;

export interface TopProcess {
  /** Host pid. */
  pid: number;
  /** The pid inside the container's pid namespace. */
  nsPid: number | undefined;
  ppid: number;
  uid: number;
  gid: number;
  /** `R`, `S`, `D`, `Z`, ... */
  state: string;
  /** CPU time used, milliseconds. */
  cpuTimeMs: number;
  /** Resident memory, bytes. */
  rssBytes: number;
  /** argv (empty for kernel threads and zombies). */
  args: string[];
  /** The command name (`comm`). */
  command: string;
}

/** Docker's `ContainerTopOKBody`, plus typed entries. */
export interface TopResult {
  Titles: string[];
  Processes: string[][];
  processes: TopProcess[];
}

function bootTimeSec(): number {
  const m = /^btime (\d+)$/m.exec(readFileSync('/proc/stat', 'utf8'));
  return m ? Number(m[1]) : 0;
}

function clock(totalSec: number): string {
  const s = Math.floor(totalSec);
  const hh = Math.floor(s / 3600);
  const mm = Math.floor((s % 3600) / 60);
  const ss = s % 60;
  const days = Math.floor(hh / 24);
  const base = `${String(hh % 24).padStart(2, '0')}:${String(mm).padStart(2, '0')}:${String(ss).padStart(2, '0')}`;
  return days > 0 ? `${days}-${base}` : base;
}

function readProcess(pid: number): (TopProcess & { startSec: number; ttyNr: number }) | undefined {
  const fields = statFields(pid);
  let status: string;
  let cmdline: string;
  let comm: string;
  try {
    status = readFileSync(`/proc/${pid}/status`, 'utf8');
    cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    comm = readFileSync(`/proc/${pid}/comm`, 'utf8').trim();
  } catch {
    return undefined; // exited meanwhile
  }
  if (!fields) return undefined;
  const idLine = (key: string) => /^(\S+):\s+(.*)$/m.exec(status.split('\n').find((l) => l.startsWith(`${key}:`)) ?? '')?.[2]?.split(/\s+/) ?? [];
  const nsPids = idLine('NSpid');
  return {
    pid,
    nsPid: nsPids.length > 0 ? Number(nsPids[nsPids.length - 1]) : undefined,
    ppid: Number(fields[1]),
    uid: Number(idLine('Uid')[0] ?? 0),
    gid: Number(idLine('Gid')[0] ?? 0),
    state: fields[0]!,
    cpuTimeMs: ((Number(fields[11]) + Number(fields[12])) / CLK_TCK) * 1000,
    rssBytes: Number(fields[21]) * 4096,
    args: cmdline === '' ? [] : cmdline.replace(/\0$/, '').split('\0'),
    command: comm,
    startSec: Number(fields[19]) / CLK_TCK,
    ttyNr: Number(fields[4]),
  };
}

/** The processes `pids` (a cgroup's members) as `docker top` shows them. */
export function topOf(pids: number[]): TopResult {
  const boot = bootTimeSec();
  const now = Date.now() / 1000;
  const processes: TopProcess[] = [];
  const rows: string[][] = [];
  for (const pid of [...pids].sort((a, b) => a - b)) {
    const p = readProcess(pid);
    if (!p) continue;
    const { startSec, ttyNr, ...proc } = p;
    processes.push(proc);
    const started = new Date((boot + startSec) * 1000);
    const elapsed = Math.max(1, now - (boot + startSec));
    const major = (ttyNr >> 8) & 0xfff;
    const minor = (ttyNr & 0xff) | ((ttyNr >> 12) & 0xfff00);
    rows.push([
      String(proc.uid),
      String(proc.pid),
      String(proc.ppid),
      String(Math.floor((proc.cpuTimeMs / 1000 / elapsed) * 100)),
      `${String(started.getHours()).padStart(2, '0')}:${String(started.getMinutes()).padStart(2, '0')}`,
      ttyNr === 0 ? '?' : major >= 136 && major <= 143 ? `pts/${(major - 136) * 256 + minor}` : `${major}:${minor}`,
      clock(proc.cpuTimeMs / 1000),
      proc.args.length > 0 ? proc.args.join(' ') : `[${proc.command}]`,
    ]);
  }
  return { Titles: ['UID', 'PID', 'PPID', 'C', 'STIME', 'TTY', 'TIME', 'CMD'], Processes: rows, processes };
}
