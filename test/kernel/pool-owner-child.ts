/**
 * The owner process of `pool-crash.test.ts`: opens a pool of 3 in the given state directory,
 * acquires one sandbox and starts a long command in it, prints `ready <pid1> <pid1> …` (the
 * PID 1 of every sandbox it made) once they all run, and waits to be SIGKILLed.
 *   node --import tsx pool-owner-child.ts <root>
 * With `close` as second argument it uses two pools and closes its runtime instead (the test
 * then expects the process to exit by itself: nothing of a closed pool keeps Node alive).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { Runtime } from '../../lib/index.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';

const [root, mode] = process.argv.slice(2);
const rt = await Runtime.open({ root: root! });
if (mode === 'close') {
  // Use a pool fully, close it, and do nothing else: the process must then exit by itself.
  const pool = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 2, main: ['cat'] });
  const sb = await pool.acquire();
  sb.stdin!.end('x');
  for await (const _ of sb.stdout!) void _;
  await sb.exited;
  await sb.release();
  const other = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 2 });
  await (await other.acquire()).run(['true']);
  await rt.close();
  console.log('closed');
} else {
const pool = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 3, options: { memory: '32m' } });
const held = await pool.acquire();
void held.run(['sleep', '1000']);
// Wait (bounded) for the refill to bring the pool back to 3 idle beside the one held.
for (let i = 0; i < 200 && pool.stats().idle < 3; i++) await sleep(20);
const pids: number[] = [held.pid];
// Read the idle ones' PID 1s through the cgroups this process owns: children of this process.
const { readdirSync, readFileSync } = await import('node:fs');
for (const name of readdirSync('/proc')) {
  if (!/^\d+$/.test(name)) continue;
  try {
    const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
    // Only the sandboxes' PID 1s (berth's parked init), not tsx's own helper processes.
    const parked = readFileSync(`/proc/${name}/cmdline`, 'utf8') === 'berth-init\0park\0';
    if (ppid === process.pid && parked && Number(name) !== held.pid) pids.push(Number(name));
  } catch {
    // gone meanwhile
  }
}
console.log(`ready ${pids.join(' ')}`);
await sleep(120_000);
}
