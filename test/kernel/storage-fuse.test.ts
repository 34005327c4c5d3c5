/**
 * What only the fuse-overlayfs storage driver has: a daemon per mounted root, running on the
 * host side. On this machine, with Debian's fuse-overlayfs: a detached container's daemon
 * outlives the Node process that started it and ends with the container's removal; a process
 * killed between the mount and the spawn leaves a mount and a daemon that the next
 * `Runtime.open()` sweeps; a hostile container reaches neither its daemon nor another
 * container's upper dir; a stopped container's files are copied through a mount that lives as
 * long as the copy. Leak checks: no fuse mount in mountinfo, no fuse-overlayfs of ours.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Runtime } from '../../lib/index.js';
import { MERGED_DIR, OWNER_FILE, readOwner } from '../../lib/storage/fuse-mount.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { eventually } from '../helpers/containers-fixture.js';
import { mountLines } from '../helpers/leaks.js';

function fuseSkipReason(): string | false {
  if (!existsSync('/usr/bin/fuse-overlayfs')) return 'fuse-overlayfs is missing: apt-get install fuse-overlayfs (scripts/test-deps.sh)';
  if (!existsSync('/dev/fuse')) return 'needs /dev/fuse';
  return false;
}
const skip = kernelSkipReason() || fuseSkipReason();
const LIB = join(process.cwd(), 'lib');
/** A shell command printing the filesystem type of the container's root (mountinfo's field after ' - '). */
const ROOT_FSTYPE = "awk '$5 == \"/\" { for (i = 7; i <= NF; i++) if ($i == \"-\") { print $(i + 1); exit } }' /proc/self/mountinfo";

/** fuse-overlayfs processes whose mount point is below `dir`, with their parent pid and session. */
function daemonsUnder(dir: string): Array<{ pid: number; ppid: number; sid: number; mount: string }> {
  const out: Array<{ pid: number; ppid: number; sid: number; mount: string }> = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    let argv: string[];
    let stat: string;
    try {
      argv = readFileSync(`/proc/${name}/cmdline`, 'utf8').split('\0').filter((a) => a !== '');
      stat = readFileSync(`/proc/${name}/stat`, 'utf8');
    } catch {
      continue;
    }
    const mount = argv[argv.length - 1] ?? '';
    if (!argv[0]?.endsWith('fuse-overlayfs') || !mount.startsWith(dir)) continue;
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (fields[0] === 'Z') continue;
    out.push({ pid: Number(name), ppid: Number(fields[1]), sid: Number(fields[3]), mount });
  }
  return out;
}

function procGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return /^[ZX]/.test(stat.slice(stat.lastIndexOf(')') + 2));
  } catch {
    return true;
  }
}

function fuseMountsUnder(dir: string): string[] {
  return mountLines().filter((l) => l.includes(dir) && l.includes('fuse'));
}

/** Runs an ES module script with tsx in a child Node process; its last stdout line is JSON. */
function child(script: string): { status: number | null; signal: NodeJS.Signals | null; out: unknown; stderr: string } {
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 120_000 });
  const last = r.stdout.trim().split('\n').pop() ?? '';
  let out: unknown;
  try {
    out = JSON.parse(last);
  } catch {
    out = undefined;
  }
  return { status: r.status, signal: r.signal, out, stderr: r.stderr };
}

describe('the fuse-overlayfs storage driver', { skip }, () => {
  let base: string;
  let root: string;
  let rt: Runtime;
  before(async () => {
    base = mkdtempSync(join(tmpdir(), 'berth-storage-fuse-'));
    root = join(base, 'state');
    rt = await Runtime.open({ root, storageDriver: 'fuse-overlayfs' });
  });
  after(async () => {
    await rt?.close();
    // Nothing of ours may be left whatever failed: end what a failed test left, then report it.
    const left = daemonsUnder(base);
    for (const m of fuseMountsUnder(base)) spawnSync('umount', ['-l', m.split(' ')[4]!]);
    for (const d of left) process.kill(d.pid, 'SIGKILL');
    if (fuseMountsUnder(base).length === 0) rmSync(base, { recursive: true, force: true });
    assert.deepEqual(left, [], 'no fuse-overlayfs daemon was left by the tests');
  });

  it('runs a detached container whose daemon outlives the Node process that started it, and ends it at removal', async () => {
    const made = child(`
      import { Runtime } from ${JSON.stringify(join(LIB, 'index.ts'))};
      const rt = await Runtime.open({ root: ${JSON.stringify(root)}, storageDriver: 'fuse-overlayfs' });
      const c = await rt.containers.create({ image: { rootfs: ${JSON.stringify(busyboxRootfs())} }, cmd: ['sh', '-c', 'echo kept > /kept; while :; do sleep 0.05; done'], lifetime: 'detached' });
      await c.start();
      console.log(JSON.stringify({ id: c.id, node: process.pid }));`);
    assert.equal(made.status, 0, made.stderr);
    const { id, node } = made.out as { id: string; node: number };
    const layerDir = join(root, 'containers', id);
    const daemons = daemonsUnder(layerDir);
    assert.equal(daemons.length, 1, JSON.stringify(daemons));
    // In no session or process group of the Node process: its end did not end the daemon.
    assert.notEqual(daemons[0]!.sid, node);
    assert.equal(daemons[0]!.mount, join(layerDir, MERGED_DIR));
    assert.equal(readOwner(layerDir)?.daemon?.pid, daemons[0]!.pid, 'merged.owner names the daemon');
    const c = await rt.containers.get(id);
    assert.equal((await c.exec(['cat', '/kept'])).stdout, 'kept\n', 'the root still works after its starter exited');
    assert.equal((await c.exec(['sh', '-c', ROOT_FSTYPE])).stdout, 'fuse.fuse-overlayfs\n', 'the root is the fuse-overlayfs mount');
    await c.restart({ timeout: 1 });
    assert.equal((await c.exec(['cat', '/kept'])).stdout, 'kept\n', 'a restart keeps the layer');
    assert.equal(daemonsUnder(layerDir).length, 1, 'one daemon after a restart');
    assert.equal((await rt.info()).Driver, 'fuse-overlayfs');
    assert.equal((await c.inspect()).GraphDriver.Name, 'fuse-overlayfs');
    await c.stop({ timeout: 1 });
    await c.remove();
    assert.deepEqual(daemonsUnder(layerDir), [], 'removal ends the daemon');
    assert.deepEqual(fuseMountsUnder(base), [], 'removal leaves no mount');
    assert.equal(existsSync(layerDir), false, 'removal leaves no directory');
  });

  it('sweeps the mount and the daemon of a process SIGKILLed between the mount and the spawn at the next Runtime.open()', async () => {
    // The window a crash can hit: the driver mounted the root on the host side and the spawn
    // never came. The child does exactly that (with a run layer's name), then is SIGKILLed.
    const killed = child(`
      import { mkdirSync } from 'node:fs';
      import { fuseOverlayfsDriver } from ${JSON.stringify(join(LIB, 'storage/fuse-overlayfs-driver.ts'))};
      import { processStartTime } from ${JSON.stringify(join(LIB, 'state/process-identity.ts'))};
      const dir = ${JSON.stringify(join(root, 'tmp'))} + '/run-layer-' + process.pid + '-' + processStartTime(process.pid) + '-crash';
      mkdirSync(dir + '/root', { recursive: true });
      mkdirSync(dir + '/work');
      await fuseOverlayfsDriver.mountHostRoot({ upperDir: dir + '/root', workDir: dir + '/work' }, [${JSON.stringify(busyboxRootfs())}]);
      console.log(JSON.stringify({ dir }));
      process.kill(process.pid, 'SIGKILL');`);
    assert.equal(killed.signal, 'SIGKILL', killed.stderr);
    const { dir } = killed.out as { dir: string };
    assert.equal(fuseMountsUnder(dir).length, 1, 'the killed process left its mount');
    const left = daemonsUnder(dir);
    assert.equal(left.length, 1, 'and its daemon');
    assert.ok(existsSync(join(dir, OWNER_FILE)));
    const again = await Runtime.open({ root });
    await again.close();
    assert.deepEqual(fuseMountsUnder(dir), [], 'Runtime.open() unmounted it');
    assert.ok(await eventually(() => daemonsUnder(dir).length === 0), 'and the daemon is gone');
    assert.equal(existsSync(join(dir, OWNER_FILE)), false);
    assert.equal(existsSync(join(dir, MERGED_DIR)), false);
    rmSync(dir, { recursive: true, force: true });
  });

  it('a sweep leaves the daemon of a detached container that still runs after its monitor was SIGKILLed; removal ends it', async () => {
    const c = await rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd: ['sh', '-c', 'echo alive > /alive; while :; do sleep 0.05; done'], lifetime: 'detached' });
    try {
      await c.start();
      const layerDir = join(root, 'containers', c.id);
      const state = JSON.parse(readFileSync(join(layerDir, 'state.json'), 'utf8')) as { monitor?: { pid: number }; pid: number };
      assert.ok(state.monitor && state.monitor.pid > 0, 'a detached container has a monitor');
      assert.equal(readOwner(layerDir)?.owner.pid, state.monitor.pid, 'the monitor holds the host-side mount');
      const daemon = daemonsUnder(layerDir)[0]!;
      process.kill(state.monitor.pid, 'SIGKILL');
      assert.ok(await eventually(() => procGone(state.monitor!.pid)), 'the monitor is gone');
      const again = await Runtime.open({ root });
      await again.close();
      assert.deepEqual(fuseMountsUnder(layerDir), [], 'the sweep unmounted the host side');
      // A container outlives its monitor (PID 1 has no parent-death signal from it): its root
      // must still work, served by the same daemon.
      assert.equal(procGone(state.pid), false, 'the container runs on without its monitor');
      assert.equal(daemonsUnder(layerDir)[0]?.pid, daemon.pid, 'the daemon serving a live container is left');
      assert.equal((await c.exec(['cat', '/alive'])).stdout, 'alive\n');
    } finally {
      await c.remove({ force: true });
    }
    assert.deepEqual(daemonsUnder(join(root, 'containers', c.id)), [], 'removal ended the daemon');
    assert.deepEqual(fuseMountsUnder(base), []);
  });

  it('attack: a container reaches neither its daemon nor another container\'s upper dir', async () => {
    const other = await rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd: ['sh', '-c', 'echo secret > /secret; while :; do sleep 0.05; done'], lifetime: 'detached' });
    try {
      await other.start();
      await eventually(async () => (await other.exec(['cat', '/secret'])).stdout === 'secret\n');
      const otherUpper = join(root, 'containers', other.id, 'upper');
      assert.equal(readFileSync(join(otherUpper, 'secret'), 'utf8'), 'secret\n', 'the secret is in its upper dir on the host');
      const daemon = daemonsUnder(join(root, 'containers', other.id))[0]!;
      const script = [
        `kill -0 ${daemon.pid} 2>/dev/null && echo reached-daemon`,
        `kill -9 ${daemon.pid} 2>/dev/null && echo killed-daemon`,
        // The pattern is not its own text: this script's cmdline must not match it.
        'for p in /proc/[0-9]*; do grep -q "fuse-[o]verlayfs" $p/cmdline 2>/dev/null && echo sees-daemon; done',
        '[ -e /dev/fuse ] && echo has-fuse-device',
        // The other container's host-side mount was in the namespace this one was cloned from.
        `grep -q ${other.id} /proc/self/mountinfo && echo sees-other-mount`,
        `cat ${otherUpper}/secret 2>/dev/null && echo reached-upper`,
        `ln -s ${otherUpper} /up && cat /up/secret 2>/dev/null && echo reached-upper-by-link`,
        `cat /../../../../..${otherUpper}/secret 2>/dev/null && echo reached-upper-by-dots`,
        'mkdir /wh && touch /.wh.hide 2>/dev/null && echo made-whiteout-name',
        ROOT_FSTYPE,
      ].join('; ');
      const r = await rt.run({ rootfs: busyboxRootfs() }, ['sh', '-c', script]);
      assert.equal(r.stdout, 'fuse.fuse-overlayfs\n', `nothing reached: ${r.stdout}${r.stderr}`);
      assert.equal((await other.exec(['cat', '/secret'])).stdout, 'secret\n', 'the other container\'s root still works');
      assert.equal(daemonsUnder(join(root, 'containers', other.id))[0]?.pid, daemon.pid);
    } finally {
      await other.remove({ force: true });
    }
    assert.deepEqual(daemonsUnder(base), []);
  });

  it('copies files into and out of a stopped container through a mount that lives as long as the copy', async () => {
    const c = await rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd: ['sh', '-c', 'echo inside > /made && rm /bin/cat'] });
    try {
      await c.start();
      assert.equal((await c.wait()).exitCode, 0);
      const host = join(base, 'cp');
      mkdirSync(host);
      writeFileSync(join(host, 'in.txt'), 'from host\n');
      await c.copyTo(join(host, 'in.txt'), '/in.txt');
      await c.copyFrom('/made', join(host, 'made'));
      assert.equal(readFileSync(join(host, 'made'), 'utf8'), 'inside\n');
      await assert.rejects(c.copyFrom('/bin/cat', join(host, 'cat')), /not|exist/i, 'a deleted file stays deleted');
      // A copy's mount goes with its last fd; the kernel then ends the connection and the daemon exits.
      assert.ok(await eventually(() => daemonsUnder(base).length === 0), 'no daemon outlives the copies');
      assert.deepEqual(fuseMountsUnder(base), [], 'no mount outlives the copies');
      assert.deepEqual(readdirSync(join(root, 'containers', c.id)).filter((n) => n.startsWith('fuse-open-') || n === MERGED_DIR || n === OWNER_FILE), []);
      assert.deepEqual((await c.diff()).map((d) => `${d.kind} ${d.path}`), ['C /bin', 'D /bin/cat', 'A /in.txt', 'A /made']);
    } finally {
      await c.remove({ force: true });
    }
  });

  it('runs attached containers and run()s with exec, and leaves nothing when they end', async () => {
    const c = await rt.containers.create({ image: { rootfs: busyboxRootfs() }, cmd: ['sh', '-c', 'while :; do sleep 0.05; done'] });
    await c.start();
    assert.equal((await c.exec(['sh', '-c', 'echo x > /x && cat /x'])).stdout, 'x\n');
    // Attached: the host side let go after the spawn; the container's namespace holds the root.
    assert.deepEqual(fuseMountsUnder(join(root, 'containers', c.id)), []);
    await c.remove({ force: true });
    const r = await rt.run({ rootfs: busyboxRootfs() }, ['sh', '-c', 'echo run > /r && cat /r']);
    assert.equal(r.stdout, 'run\n', r.stderr);
    assert.ok(await eventually(() => daemonsUnder(base).length === 0), 'the daemons ended with their containers');
    assert.deepEqual(fuseMountsUnder(base), []);
    assert.deepEqual(readdirSync(join(root, 'tmp')).filter((n) => n.startsWith('run-layer-')), []);
  });
});
