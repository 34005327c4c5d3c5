/**
 * Every program in `examples/` runs for real, as a reader would run it (`node --import tsx
 * examples/<name>.ts`, importing 'berth' through the package's own exports, i.e. `dist/`), exits
 * 0 and leaves nothing behind: no container, volume or network (so no bridge, veth or NAT rule)
 * in its state dir, no host mount or cgroup of its own that outlives it. The guides in `docs/guides/` show these files'
 * code, so a guide whose code stops working fails here.
 *
 * Each example gets what it needs offline: a fresh state dir (`BERTH_ROOT`), a busybox rootfs
 * (`BERTH_ROOTFS`), a build context, or a loopback `docker-registry` holding a busybox image.
 * Examples that publish ports create bridges: run this file under
 * `flock /tmp/berth-net-tests.lock`.
 */
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';
import { Runtime } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { berthCgroupDirs, mountLines } from '../helpers/leaks.js';
import { writeOciLayout } from '../helpers/oci-layout.js';
import { registryToolsMissing, skopeoPush, startRegistry, type TestRegistry } from '../helpers/registry.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const EXAMPLES = join(REPO, 'examples');

/** What one run of an example is given. */
interface ExampleRun {
  args?: string[];
  env?: Record<string, string>;
}

/** Shared by the examples' set-ups; made in `before`. */
interface Fixtures {
  rootfs: string;
  scratch: string;
  registry: TestRegistry;
}

/**
 * How to run each example here. An example missing from this table fails the first test: a new
 * example must say what it needs, so that it is run too.
 */
const RUNS: Record<string, (f: Fixtures) => ExampleRun | Promise<ExampleRun>> = {
  'first-sandbox.ts': () => ({}),
  // Exits 1 when the host lacks something berth needs: this host has what the suite needs.
  'host-check.ts': () => ({}),
  'streaming-exec.ts': () => ({}),
  'untrusted-code.ts': () => ({}),
  'sandbox-pool.ts': () => ({}),
  'test-harness.ts': (f) => ({ env: { BERTH_ROOTFS: f.rootfs } }),
  'test-harness-network.ts': (f) => ({ env: { BERTH_ROOTFS: f.rootfs } }),
  'test-harness-await-using.ts': (f) => ({ env: { BERTH_ROOTFS: f.rootfs } }),
  'paas-backend.ts': () => ({}),
  'build-image.ts': (f) => {
    // A context whose image is made from nothing but the host's static busybox.
    const context = mkdtempSync(join(f.scratch, 'context-'));
    copyFileSync('/bin/busybox', join(context, 'busybox'));
    writeFileSync(join(context, 'Dockerfile'), 'FROM scratch\nCOPY busybox /bin/busybox\nRUN ["/bin/busybox", "--install", "-s", "/bin"]\nARG VERSION\nRUN echo "version $VERSION" > /version\n');
    return { args: [context, 'example/built:1'] };
  },
  'runtime-tour.ts': async (f) => {
    // The tour pulls: a one-layer image of the busybox rootfs (sh, nc, httpd), pushed by skopeo.
    const layout = join(f.scratch, 'tour-layout');
    const layer = execFileSync('tar', ['-C', f.rootfs, '--numeric-owner', '-cf', '-', '.'], { maxBuffer: 64 << 20 });
    writeOciLayout(layout, { layers: [layer], tag: 'app', config: { Cmd: ['sh'], Env: ['PATH=/bin'] } });
    await skopeoPush(layout, 'app', f.registry, 'tour/app:1');
    return { args: [`${f.registry.host}/tour/app:1`] };
  },
};

interface Outcome {
  code: number | null;
  output: string;
  /** The example's process id: `run()` cgroups are named after their owner's pid. */
  pid: number;
}

function runExample(file: string, run: ExampleRun, root: string): Promise<Outcome> {
  return new Promise((done) => {
    // A bound so that a hung example fails the test instead of hanging the suite; not a timing check.
    const child = execFile(process.execPath, ['--import', 'tsx', join(EXAMPLES, file), ...(run.args ?? [])], {
      cwd: REPO,
      env: { ...process.env, ...run.env, BERTH_ROOT: root },
      timeout: 180_000,
      killSignal: 'SIGKILL',
      maxBuffer: 16 << 20,
    }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : null) : 0;
      done({ code, output: `--- stdout\n${stdout}--- stderr\n${stderr}`, pid: child.pid! });
    });
  });
}

/**
 * Berth cgroups of this example that are still there once removals settle. Other engineers'
 * tests create berth cgroups on this machine at the same time, so only the example's own count:
 * `run-<pid>-…` (a `run()`, `spawn()` or build step of the example's process) and those named
 * by the id of a container of its state dir.
 */
async function cgroupsLeft(beforeRun: Set<string>, ownerPid: number, containerIds: Set<string>): Promise<string[]> {
  const ours = (dir: string) => {
    const name = dir.slice(dir.lastIndexOf('/') + 1);
    return name.startsWith(`run-${ownerPid}-`) || containerIds.has(name);
  };
  let left: string[] = [];
  // A cgroup is removed after its exit is reported; give the last one a moment.
  for (let i = 0; i < 50; i++) {
    left = berthCgroupDirs().filter((d) => !beforeRun.has(d) && ours(d));
    if (left.length === 0) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  return left;
}

/** What an example left in its state dir: containers, volumes, networks (the default bridge too). */
async function stateLeftovers(root: string): Promise<{ left: string[]; containerIds: Set<string> }> {
  const containerIds = new Set<string>();
  if (!existsSync(root)) return { left: [], containerIds };
  const rt = await Runtime.open({ root });
  try {
    for await (const e of rt.events({ since: 0, until: new Date() })) containerIds.add(e.id);
    const out: string[] = [];
    for (const c of await rt.containers.list({ all: true })) out.push(`container ${c.Names.join(',')} (${c.State})`);
    for (const v of await rt.volumes.list()) out.push(`volume ${v.name}`);
    // The default `bridge` network is listed once it was made (a Linux bridge and NAT rules).
    for (const n of await rt.networks.list()) out.push(`network ${n.name}`);
    return { left: out, containerIds };
  } finally {
    await rt.close();
  }
}

/**
 * After the checks, pass or fail: what a failed example left in its state dir goes, so that it
 * does not outlive the state dir on this shared host (opening the runtime reconciles what a
 * crashed owner left; then containers, networks and volumes are removed).
 */
async function clearRoot(root: string): Promise<void> {
  if (!existsSync(root)) return;
  const rt = await Runtime.open({ root });
  try {
    for (const c of await rt.containers.list({ all: true })) await (await rt.containers.get(c.Id)).remove({ force: true });
    for (const n of await rt.networks.list()) await rt.networks.remove(n.id);
    for (const v of await rt.volumes.list()) await rt.volumes.remove(v.name, { force: true });
  } finally {
    await rt.close();
  }
}

const skip = kernelSkipReason() || registryToolsMissing() || false;

describe('examples/', { skip }, () => {
  let fixtures: Fixtures;
  before(async () => {
    const scratch = mkdtempSync(join(tmpdir(), 'berth-examples-'));
    fixtures = { rootfs: busyboxRootfs(), scratch, registry: await startRegistry() };
  });
  after(async () => {
    await fixtures?.registry.stop();
    if (fixtures) rmSync(fixtures.scratch, { recursive: true, force: true });
  });

  it('every example in examples/ is run by this file', () => {
    const files = readdirSync(EXAMPLES).filter((f) => f.endsWith('.ts')).sort();
    assert.deepEqual(Object.keys(RUNS).sort(), files);
  });

  for (const [file, setUp] of Object.entries(RUNS)) {
    it(`${file} exits 0 and leaves nothing behind`, async (t) => {
      const run = await setUp(fixtures);
      const root = join(fixtures.scratch, `root-${file.replace(/\.ts$/, '')}`);
      const cgroupsBefore = new Set(berthCgroupDirs());
      const mountsBefore = new Set(mountLines());

      const outcome = await runExample(file, run, root);
      t.after(() => clearRoot(root));
      assert.equal(outcome.code, 0, `${file} failed:\n${outcome.output}`);

      // A network's record goes only after its bridge, veths and rules: an empty network list
      // is the check for those (the machine's other tests make bridges of their own meanwhile).
      const { left, containerIds } = await stateLeftovers(root);
      assert.deepEqual(left, [], `${file} left objects in its state dir\n${outcome.output}`);
      assert.deepEqual(await cgroupsLeft(cgroupsBefore, outcome.pid, containerIds), [], `${file} left cgroups`);
      const mountsLeft = mountLines().filter((m) => !mountsBefore.has(m) && (m.includes(root) || m.includes(fixtures.scratch)));
      assert.deepEqual(mountsLeft, [], `${file} left host mounts`);
    });
  }
});
