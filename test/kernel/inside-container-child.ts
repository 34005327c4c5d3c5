/**
 * The berth program `inside-container.test.ts` runs inside a Docker or Podman container. It
 * prints one JSON line (`InsideReport`) and exits 0, whatever it found: the outer test judges.
 *
 * `BERTH_INSIDE_ROOT` is the state dir, `BERTH_INSIDE_EXPECT` is `works` (cgroups writable:
 * limits, a bridge network, cleanup) or `read-only` (the engine's read-only cgroupfs: a run
 * that asks for a limit fails with the typed error, under `limits: 'best-effort'` it runs
 * without one, and nothing is left behind).
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { isBerthError } from '../../lib/errors.js';
import { Runtime } from '../../lib/runtime.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';

export interface InsideReport {
  /** `rt.info()`'s cgroup parents and the usability of memory and pids. */
  parents: readonly string[];
  memoryUsable: boolean;
  /** What `cat` of the cgroup files printed inside a berth container run with memory 32m, pids 20. */
  memoryLimit?: string;
  pidsLimit?: string;
  /** The berth cgroup directories that existed while that container ran. */
  cgroupDirsWhileRunning?: string[];
  /** What a container on a bridge network fetched from a peer by its alias. */
  bridgeFetch?: string;
  /** The typed error a run with `memory` met under `limits: 'strict'` (`read-only` case). */
  error?: { name: string; code: string; message: string };
  /** The same run under `limits: 'best-effort'`: its output and the limits it ran without. */
  bestEffort?: { stdout: string; skipped: readonly string[] };
  /** Left after rt.close(): berth cgroups, network links other than lo, new mounts. */
  leftCgroups: string[];
  leftLinks: string[];
  leftMounts: string[];
  /** Storage of the state dir; and of one on the container's overlay root, with a sandbox run there. */
  stateDirFs: string;
  /** `rt.info().Storage` of the tmpfs state dir, and of one on the container's own overlay root. */
  storage: { driver: string; usable: boolean; backingFilesystem: string };
  storageOnOverlayRoot: { driver: string; usable: boolean; backingFilesystem: string; reason: string; run: string };
  /** Whether this container has a FUSE device (the probe may then pick fuse-overlayfs). */
  hasFuse: boolean;
  /** fuse-overlayfs processes still running after rt.close() (pids in this container). */
  leftFuseDaemons: number[];
}

/** fuse-overlayfs processes (berth's, the only ones here). */
function fuseDaemons(): number[] {
  return readdirSync('/proc').filter((n) => /^\d+$/.test(n)).filter((n) => {
    try {
      return /(^|\/)fuse-overlayfs$/.test(readFileSync(`/proc/${n}/cmdline`, 'utf8').split('\0')[0] ?? '') && !/^\S+ \(.*\) Z/.test(readFileSync(`/proc/${n}/stat`, 'utf8'));
    } catch {
      return false;
    }
  }).map(Number);
}

const mountPoints = (): Set<string> => new Set(readFileSync('/proc/self/mountinfo', 'utf8').split('\n').filter(Boolean).map((l) => l.split(' ')[4]!));

/** Every `berth` directory (and what is in it) under the cgroup mounts. */
function berthCgroups(): string[] {
  const out: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries: string[];
    try {
      entries = readdirSync(dir, { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name);
    } catch {
      return;
    }
    for (const name of entries) {
      const p = `${dir}/${name}`;
      if (name === 'berth') {
        out.push(p);
        for (const id of readdirSync(p, { withFileTypes: true }).filter((d) => d.isDirectory())) out.push(`${p}/${id.name}`);
      } else if (depth > 0) walk(p, depth - 1);
    }
  };
  for (const h of readdirSync('/sys/fs/cgroup')) walk(`/sys/fs/cgroup/${h}`, 2);
  walk('/sys/fs/cgroup', 0);
  return [...new Set(out)].sort();
}

async function main(): Promise<InsideReport> {
  const root = process.env.BERTH_INSIDE_ROOT!;
  const expect = process.env.BERTH_INSIDE_EXPECT;
  const rootfs = { rootfs: busyboxRootfs() };
  const mountsBefore = mountPoints();
  const rt = await Runtime.open({ root });
  const info = await rt.info();
  const stateDirFs = readFileSync('/proc/self/mountinfo', 'utf8').split('\n').map((l) => l.split(' ')).filter((f) => f[4] !== undefined && root.startsWith(f[4])).sort((a, b) => b[4]!.length - a[4]!.length)[0]?.slice(-3, -2)[0] ?? '?';
  // A state dir on the container's own root (an overlay), which cannot hold overlay upper dirs:
  // the storage probe falls back to another driver, and a sandbox runs on it.
  const onOverlay = await Runtime.open({ root: '/var/lib/berth-on-overlay-root' });
  const overlayInfo = (await onOverlay.info()).Storage;
  let overlayRun: string;
  try {
    const r = await onOverlay.run(rootfs, ['sh', '-c', 'echo written > /f && cat /f']);
    overlayRun = `${r.exitCode}:${r.stdout.trim()}`;
  } finally {
    await onOverlay.close();
  }
  const report: Partial<InsideReport> = {
    parents: info.Cgroups.parents,
    memoryUsable: info.Cgroups.controllers.memory.usable,
    stateDirFs,
    storage: { driver: info.Storage.driver, usable: info.Storage.usable, backingFilesystem: info.Storage.backingFilesystem },
    storageOnOverlayRoot: { driver: overlayInfo.driver, usable: overlayInfo.usable, backingFilesystem: overlayInfo.backingFilesystem, reason: overlayInfo.reason, run: overlayRun },
  };
  try {
    if (expect === 'read-only') {
      try {
        await rt.run(rootfs, ['true'], { memory: '32m' });
      } catch (err) {
        if (!isBerthError(err)) throw err;
        report.error = { name: err.name, code: err.code, message: err.message };
      }
      const r = await rt.run(rootfs, ['echo', 'ran-without-limits'], { memory: '32m', limits: 'best-effort' });
      report.bestEffort = { stdout: r.stdout.trim(), skipped: r.limitsSkipped?.options ?? [] };
    } else {
      const c = await rt.containers.create({
        image: rootfs,
        cmd: ['sh', '-c', 'cat /sys/fs/cgroup/memory/memory.limit_in_bytes /sys/fs/cgroup/pids/pids.max; echo started; exec sleep 600'],
        memory: '32m',
        pids: 20,
      });
      try {
        await c.start();
        await c.waitForLog(/started/, { timeout: 30_000 });
        report.cgroupDirsWhileRunning = berthCgroups();
        const [mem, pids] = (await c.logs().text()).trim().split('\n');
        report.memoryLimit = mem;
        report.pidsLimit = pids;
      } finally {
        await c.remove({ force: true });
      }
      const net = await rt.networks.create({ name: 'inside' });
      try {
        const web = await rt.containers.create({
          image: rootfs,
          cmd: ['sh', '-c', 'mkdir -p /www && echo from-the-bridge > /www/index.html && exec httpd -f -p 8080 -h /www'],
          networks: [{ network: net, aliases: ['web'] }],
        });
        const client = await rt.containers.create({ image: rootfs, cmd: ['sleep', '600'], network: net, init: true });
        try {
          await web.start();
          await web.waitForPort(8080, { timeout: 30_000 });
          await client.start();
          const r = await client.exec(['wget', '-q', '-O-', 'http://web:8080/']);
          report.bridgeFetch = r.exitCode === 0 ? r.stdout.trim() : `exit ${r.exitCode}: ${r.stderr}`;
        } finally {
          await client.remove({ force: true });
          await web.remove({ force: true });
        }
      } finally {
        await net.remove();
      }
    }
  } finally {
    await rt.close();
  }
  const mountsAfter = mountPoints();
  return {
    ...(report as InsideReport),
    leftCgroups: berthCgroups(),
    leftLinks: readdirSync('/sys/class/net').filter((l) => l !== 'lo'),
    leftMounts: [...mountsAfter].filter((m) => !mountsBefore.has(m)),
    hasFuse: existsSync('/dev/fuse'),
    leftFuseDaemons: fuseDaemons(),
  };
}

const report = await main();
// The parent of berth's cgroups goes when this process exits (removeParentAtExit): the outer
// test checks the host's tree after the container is gone.
process.stdout.write(`${JSON.stringify(report)}\n`);
