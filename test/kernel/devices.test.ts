/**
 * Device nodes as an attacker with CAP_MKNOD uses them (the hostile-code issue, item 2): every
 * filesystem a container can write is nodev and nosuid in every mode, and on cgroup v2 a
 * BPF_CGROUP_DEVICE program enforces the device allow-list even where a mount would allow
 * devices.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { run, Runtime, type RunOptions } from '../../lib/index.js';
import { ContainerProcess } from '../../lib/launch/container-process.js';
import { planLaunch } from '../../lib/launch/launch-plan.js';
import { normalizeRunOptions } from '../../lib/launch/run-options.js';
import { nodeCgroupFs } from '../../lib/cgroup/index.js';
import { native } from '../../lib/native.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { cgroup2Mount } from '../helpers/cgroup2-mount.js';

const skip = kernelSkipReason();

/** Tries, in each directory, to make /dev/zero's node (c 1:5, on the allow-list) and read it. */
const mknodProbe = (dirs: string[]) => dirs.map((d) =>
  `mkdir -p ${d} 2>/dev/null; if mknod ${d}/zero-node c 1 5 2>/dev/null && head -c 4 ${d}/zero-node >/dev/null 2>&1; then echo "OPENED ${d}"; else echo "refused ${d}"; fi`).join('; ');

/** The mount options of every mount the container can write, as `target opts`. */
const writableMounts = 'while read -r _ _ _ src target opts _; do case ",$opts," in *,rw,*) echo "$target $opts $src";; esac; done < /proc/self/mountinfo';

describe('devices: every writable filesystem is nodev and nosuid', { skip }, () => {
  let rt: Runtime;
  let root: string;
  let hostDir: string;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'berth-dev-'));
    hostDir = mkdtempSync(join(tmpdir(), 'berth-dev-bind-'));
    rt = await Runtime.open({ root });
  });
  after(async () => {
    rmSync(root, { recursive: true, force: true });
    rmSync(hostDir, { recursive: true, force: true });
  });

  const cases: Array<{ name: string; source: () => { rootfs: string } | { host: true }; dirs: string[]; options?: RunOptions }> = [
    { name: 'host mode: /, /root, /etc, /var/tmp, /tmp', source: () => ({ host: true }), dirs: ['/root', '/etc', '/var/tmp', '/tmp', '/newdir'] },
    { name: 'rootfs (overlay root), /dev/shm, a tmpfs and a bind mount', source: () => ({ rootfs: busyboxRootfs() }), dirs: ['/root', '/tmp', '/dev/shm', '/scratch', '/bound'] },
  ];
  for (const c of cases) {
    test(`${c.name}: a node made with CAP_MKNOD cannot be opened; mounts say nodev,nosuid`, async () => {
      const mounts = [
        { type: 'tmpfs' as const, target: '/scratch' },
        { type: 'bind' as const, source: hostDir, target: '/bound' },
      ];
      const r = await run(c.source(), ['sh', '-c', `${mknodProbe(c.dirs)}; echo ---; ${writableMounts}`], { mounts });
      assert.equal(r.exitCode, 0, r.stderr);
      const [probe, mountsOut] = r.stdout.split('---\n');
      assert.doesNotMatch(probe!, /OPENED/, probe);
      assert.equal(probe!.trim().split('\n').length, c.dirs.length);
      for (const line of mountsOut!.trim().split('\n')) {
        const [target, opts, src] = line.split(' ');
        // The standard devices are single-node binds of the host's (as are masked files, which
        // get /dev/null): the only device nodes a container may open.
        if (/^\/(null|zero|full|random|urandom|tty|ptmx|console)$/.test(src!)) continue;
        // The container's own devpts holds its terminals and refuses mknod by itself.
        if (target === '/dev/pts') continue;
        const flags = opts!.split(',');
        assert.ok(flags.includes('nodev'), `${target} is writable without nodev (${opts})`);
        assert.ok(flags.includes('nosuid'), `${target} is writable without nosuid (${opts})`);
      }
    });
  }

  test('a volume: nodev and nosuid', async () => {
    const r = await rt.run({ rootfs: busyboxRootfs() }, ['sh', '-c', `${mknodProbe(['/vol'])}; grep ' /vol ' /proc/self/mountinfo`], {
      mounts: [{ type: 'volume', source: 'devtest', target: '/vol' }],
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /refused \/vol/);
    assert.match(r.stdout, / \/vol [^ ]*nodev/);
    assert.match(r.stdout, / \/vol [^ ]*nosuid/);
  });
});


const mount = cgroup2Mount();

describe('devices: the cgroup v2 BPF allow-list', { skip: skip || (mount ? false : 'no cgroup2 mount on this host') }, () => {
  let nodes: string;
  before(() => {
    // Device nodes made on the host, bound into a privileged container (whose mounts allow
    // devices): only the cgroup's device program stands between the container and them.
    nodes = mkdtempSync(join(tmpdir(), 'berth-dev-nodes-'));
    execFileSync('mknod', [join(nodes, 'kmsg'), 'c', '1', '11']);
    execFileSync('mknod', [join(nodes, 'zero'), 'c', '1', '5']);
  });
  after(() => rmSync(nodes, { recursive: true, force: true }));

  /** Runs a privileged busybox container in a fresh cgroup2 directory; `filter` attaches the program. */
  async function inCgroup(filter: boolean, script: string): Promise<string> {
    const dir = `${mount}/berth-devfilter-test-${process.pid}-${filter ? 'on' : 'off'}`;
    mkdirSync(dir);
    try {
      if (filter) nodeCgroupFs.attachDeviceFilter(dir);
      const { spec } = planLaunch({
        root: { kind: 'rootfs', dir: busyboxRootfs() },
        argv: ['sh', '-c', script],
        options: normalizeRunOptions({ privileged: true, mounts: [{ type: 'bind', source: nodes, target: '/nodes' }] }),
        stagingDir: '/run/berth/rootfs',
        cgroupProcs: [],
        cgroupMounts: [],
        stdinPiped: false,
      });
      spec.cgroupDir = dir;
      spec.stdio[1] = { mode: 1 };
      const proc = new ContainerProcess(await native().spawn(spec));
      const chunks: Buffer[] = [];
      proc.stdout!.on('data', (c: Buffer) => chunks.push(c));
      const [status] = await Promise.all([proc.exited, new Promise((r) => proc.stdout!.on('close', r))]);
      assert.equal(status.exitCode, 0);
      return Buffer.concat(chunks).toString();
    } finally {
      for (let i = 0; i < 100; i++) {
        try {
          rmdirSync(dir);
          break;
        } catch {
          await sleep(10);
        }
      }
    }
  }

  const script = [
    'head -c 1 /nodes/kmsg >/dev/null 2>&1 && echo "read kmsg" || echo "no kmsg"',
    'head -c 1 /nodes/zero >/dev/null 2>&1 && echo "read zero" || echo "no zero"',
    'mknod /tmp/disk b 8 0 2>/dev/null && echo "made block" || echo "no block"',
    'mknod /tmp/z c 1 5 2>/dev/null && echo "made zero" || echo "no zero node"',
  ].join('; ');

  test('without the program, a privileged container opens and makes any device (the attack works)', async () => {
    const out = await inCgroup(false, script);
    assert.match(out, /read kmsg/);
    assert.match(out, /made block/);
  });

  test('with it, only the allow-list: /dev/zero yes, kmsg and block devices no', async () => {
    const out = await inCgroup(true, script);
    assert.match(out, /no kmsg/);
    assert.match(out, /read zero/);
    assert.match(out, /no block/);
    // mknod follows the same list: allowed for c 1:5 (rwm), refused for anything else.
    assert.match(out, /made zero/);
  });
});
