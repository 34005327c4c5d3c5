/**
 * Where a pooled sandbox's mount namespace ends. The last process to leave a mount namespace
 * unmounts its tree (overlay, tmpfs upper) in its own exit, before its exit is reported; a
 * pooled command must not pay that on the caller's path, so Node holds the namespace from the
 * launch on and drops it when the sandbox is released (ParkedSandbox.tornDown in
 * lib/launch/parked.ts). These tests see the reference itself: an nsfs descriptor of this
 * process naming the sandbox's namespace, held across the command's exit, gone after close().
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readlinkSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';

const skip = kernelSkipReason();

/** This process's descriptors that refer to the namespace `ns` (`mnt:[inode]`). */
function ownRefs(ns: string): string[] {
  const out: string[] = [];
  for (const fd of readdirSync('/proc/self/fd')) {
    try {
      if (readlinkSync(`/proc/self/fd/${fd}`) === ns) out.push(fd);
    } catch {
      // closed between the listing and the readlink
    }
  }
  return out;
}

describe('pool: a sandbox\'s mount namespace outlives its command until release', { skip, timeout: 120_000 }, () => {
  let root: string;
  let rt: Runtime;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'berth-pool-teardown-'));
    rt = await Runtime.open({ root });
  });

  after(async () => {
    await rt?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('the command exits without unmounting; release and close() drop the namespace', async () => {
    const pool = await rt.pool({ source: { rootfs: busyboxRootfs() }, size: 2 });
    const namespaces: string[] = [];
    for (let i = 0; i < 2; i++) {
      const sb = await pool.acquire();
      const ns = readlinkSync(`/proc/${sb.pid}/ns/mnt`);
      assert.match(ns, /^mnt:\[\d+\]$/);
      assert.notEqual(ns, readlinkSync('/proc/self/ns/mnt'), 'the sandbox has a mount namespace of its own');
      namespaces.push(ns);
      const r = await sb.run(['sh', '-c', 'echo data > /tmp/f']);
      assert.equal(r.exitCode, 0, r.stderr);
      // The command (the sandbox's only process) has exited and been reaped.
      assert.throws(() => process.kill(sb.pid, 0), /ESRCH/);
      assert.equal(ownRefs(ns).length, 1, `after the command's exit, Node still holds ${ns}: the exit did not unmount it`);
      await sb.release();
    }
    // An idle sandbox holds its namespace too, until close() destroys it.
    const idle = await pool.acquire();
    namespaces.push(readlinkSync(`/proc/${idle.pid}/ns/mnt`));
    await idle.release();
    await pool.close();
    for (const ns of namespaces) assert.deepEqual(ownRefs(ns), [], `${ns} is still held after close()`);
  });
});
