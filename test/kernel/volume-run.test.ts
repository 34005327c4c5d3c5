/**
 * Volumes and mounts seen from inside real containers (`rt.run` with a busybox rootfs): every
 * mount type, data outliving runs, two running containers sharing writes, read-only, copy-up,
 * nocopy, anonymous volumes, volumesFrom, tmpfs-backed volumes, in-use refusal across
 * processes, bind propagation, and the symlink-swap attack on mount targets (CVE-2021-30465).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, chownSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConflictError, NotFoundError, Runtime, SystemError, ValidationError, isBerthError, type MountSpec, type RunOptions } from '../../lib/index.js';
import { mountAt, unmount } from '../../lib/volumes/host-mount.js';
import { releaseVolumeMounts, resolveVolumeMounts } from '../../lib/volumes/volume-mounts.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { mountLines } from '../helpers/leaks.js';

const skip = kernelSkipReason();
const LIB = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));

/** A shell loop that waits (bounded: about `seconds`) for a file, then exits 3 if it never came. */
const waitFor = (path: string, seconds = 20) => `i=0; while [ ! -e ${path} ]; do sleep 0.05; i=$((i+1)); [ $i -gt ${seconds * 20} ] && exit 3; done; true`;

/**
 * Waits for a file a container or a child process makes once it is ready. A loaded machine can
 * take many seconds to start a child Node; going on before it is ready would test nothing.
 */
async function untilExists(path: string): Promise<void> {
  for (let waited = 0; !existsSync(path); waited += 25) {
    if (waited > 120_000) throw new Error(`${path} did not appear within 120 s`);
    await sleep(25);
  }
}

function mountsUnder(root: string): string[] {
  return mountLines().map((l) => l.split(' ')[4] ?? '').filter((mp) => mp.startsWith(`${root}/`));
}

describe('volumes in containers', { skip }, () => {
  let root: string;
  let rt: Runtime;
  let rootfs: string;
  /** A rootfs with image files at /srv/data (owners, modes, links) for copy-up. */
  let imageRootfs: string;
  let hostDir: string;
  const sh = <O extends RunOptions = RunOptions>(script: string, options?: O, source = rootfs) => rt.run({ rootfs: source }, ['sh', '-c', script], options);
  let mountsBefore: string[];

  before(async () => {
    mountsBefore = mountLines();
    root = mkdtempSync(join(tmpdir(), 'berth-volrun-'));
    rt = await Runtime.open({ root });
    rootfs = busyboxRootfs();
    imageRootfs = mkdtempSync(join(tmpdir(), 'berth-volrun-image-'));
    cpSync(rootfs, imageRootfs, { recursive: true, verbatimSymlinks: true });
    const d = join(imageRootfs, 'srv', 'data');
    mkdirSync(join(d, 'conf'), { recursive: true });
    writeFileSync(join(d, 'app.db'), 'image data\n');
    chownSync(join(d, 'app.db'), 1000, 1000);
    chmodSync(join(d, 'app.db'), 0o600);
    writeFileSync(join(d, 'conf', 'app.conf'), 'port=80\n');
    chmodSync(join(d, 'conf'), 0o2750);
    chownSync(join(d, 'conf'), 0, 50);
    symlinkSync('conf/app.conf', join(d, 'current.conf'));
    chownSync(d, 1000, 1000);
    chmodSync(d, 0o770);
    hostDir = mkdtempSync(join(tmpdir(), 'berth-volrun-host-'));
    writeFileSync(join(hostDir, 'from-host'), 'host data\n');
  });

  after(async () => {
    for (const v of await rt.volumes.list()) await v.remove({ force: true }).catch(() => undefined);
    for (const mp of mountsUnder(root).reverse()) await unmount(mp, { lazy: true }).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
    rmSync(imageRootfs, { recursive: true, force: true });
    rmSync(hostDir, { recursive: true, force: true });
    assert.deepEqual(mountLines().filter((l) => !mountsBefore.includes(l)), [], 'the suite left mounts on the host');
  });

  test('every mount type from the inside: volume, bind, tmpfs', async () => {
    const r = await sh(
      'echo v > /vol/f && cat /vol/f; cat /host/from-host; echo t > /scratch/f && cat /scratch/f; stat -c "%a" /scratch; ' +
        'grep -E " /(vol|host|scratch) " /proc/self/mountinfo | cut -d" " -f5,9 | sort',
      {
        mounts: [
          { type: 'volume', source: 'every', target: '/vol' },
          { type: 'bind', source: hostDir, target: '/host', readonly: true },
          { type: 'tmpfs', target: '/scratch', size: '1m', mode: 0o700 },
        ],
      },
    );
    assert.equal(r.exitCode, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.deepEqual(lines.slice(0, 4), ['v', 'host data', 't', '700']);
    assert.deepEqual(lines.slice(4).map((l) => l.split(' ')[0]), ['/host', '/scratch', '/vol']);
    assert.equal(lines[5], '/scratch tmpfs');
    assert.equal(readFileSync(join(root, 'volumes', 'every', '_data', 'f'), 'utf8'), 'v\n');
  });

  test('a named volume is created on first use and its data outlives the run', async () => {
    const created: string[] = [];
    rt.volumes.once('create', (v) => created.push(v.name));
    const w = await sh('echo persisted > /data/file', { mounts: [{ type: 'volume', source: 'survives', target: '/data' }] });
    assert.equal(w.exitCode, 0, w.stderr);
    assert.deepEqual(created, ['survives']);
    const other = await Runtime.open({ root });
    const r = await other.run({ rootfs }, ['cat', '/d/file'], { mounts: [{ type: 'volume', source: 'survives', target: '/d' }] });
    assert.equal(r.stdout, 'persisted\n', r.stderr);
    assert.equal((await rt.volumes.inspect('survives')).UsageData.RefCount, 0, 'released when the runs ended');
  });

  test('two running containers on one volume see each other\'s writes at once', async () => {
    const shared = await rt.volumes.create({ name: 'pingpong' });
    const mounts: MountSpec[] = [{ type: 'volume', source: shared, target: '/shared' }];
    // Both stay until the test saw them both recorded: a ping-pong done within one poll of the
    // count would otherwise end before it is seen.
    const a = sh(`${waitFor('/shared/from-b')}; echo a > /shared/from-a; cat /shared/from-b; ${waitFor('/shared/release')}`, { mounts });
    const b = sh(`echo b > /shared/from-b; ${waitFor('/shared/from-a')}; cat /shared/from-a; ${waitFor('/shared/release')}`, { mounts });
    let peak = 0;
    const watch = (async () => {
      for (let waited = 0; waited < 120_000 && peak < 2; waited += 20) {
        peak = Math.max(peak, (await shared.inspect()).UsageData.RefCount);
        await sleep(20);
      }
      writeFileSync(join((await shared.inspect()).Mountpoint, 'release'), '');
    })();
    const [ra, rb] = await Promise.all([a, b]);
    await watch;
    assert.equal(ra.exitCode, 0, ra.stderr);
    assert.equal(rb.exitCode, 0, rb.stderr);
    assert.equal(ra.stdout, 'b\n');
    assert.equal(rb.stdout, 'a\n');
    assert.equal(peak, 2, 'both runs were recorded as users while they ran');
  });

  test('read-only volume: EROFS inside, nothing written', async () => {
    const r = await sh('cat /ro/file; echo nope > /ro/new; echo rc=$?; grep " /ro " /proc/self/mountinfo | cut -d" " -f6', {
      mounts: [{ type: 'volume', source: 'survives', target: '/ro', readonly: true }],
    });
    assert.match(r.stdout, /^persisted\nrc=1\nro,/);
    assert.match(r.stderr, /Read-only file system/);
    assert.equal(existsSync(join(root, 'volumes', 'survives', '_data', 'new')), false);
  });

  test('copy-up: an empty volume over image files receives them, owners, modes and symlinks kept', async () => {
    const r = await sh(
      'cd /srv/data && stat -c "%n %u:%g %a" . app.db conf conf/app.conf && readlink current.conf && cat current.conf && echo more >> app.db',
      { mounts: [{ type: 'volume', source: 'copied', target: '/srv/data' }] },
      imageRootfs,
    );
    assert.equal(r.exitCode, 0, r.stderr);
    assert.equal(r.stdout, '. 1000:1000 770\napp.db 1000:1000 600\nconf 0:50 2750\nconf/app.conf 0:0 644\nconf/app.conf\nport=80\n');
    const data = join(root, 'volumes', 'copied', '_data');
    assert.equal(readFileSync(join(data, 'app.db'), 'utf8'), 'image data\nmore\n');
    assert.equal(readlinkSync(join(data, 'current.conf')), 'conf/app.conf');
    // Not empty any more: a second mount keeps the volume's data, the image's files stay hidden.
    const again = await sh('cat /srv/data/app.db', { mounts: [{ type: 'volume', source: 'copied', target: '/srv/data' }] }, imageRootfs);
    assert.equal(again.stdout, 'image data\nmore\n');
    assert.equal(readFileSync(join(imageRootfs, 'srv', 'data', 'app.db'), 'utf8'), 'image data\n', 'the image was never written');
  });

  test('nocopy: the volume stays empty and hides the image files', async () => {
    const r = await sh('ls -A /srv/data | wc -l', { mounts: [{ type: 'volume', source: 'not-copied', target: '/srv/data', nocopy: true }] }, imageRootfs);
    assert.equal(r.stdout.trim(), '0', r.stderr);
    assert.deepEqual(readdirSync(join(root, 'volumes', 'not-copied', '_data')), []);
  });

  test('an anonymous volume lives for the run: copied up, then removed with it', async () => {
    const events: string[] = [];
    const onCreate = (v: { name: string }) => events.push(`create ${v.name.length}`);
    const onDestroy = (v: { name: string }) => events.push(`destroy ${v.name.length}`);
    rt.volumes.on('create', onCreate).on('destroy', onDestroy);
    const r = await sh('cat /srv/data/app.db; grep -c " /srv/data " /proc/self/mountinfo', { mounts: [{ type: 'volume', target: '/srv/data' }] }, imageRootfs);
    rt.volumes.off('create', onCreate).off('destroy', onDestroy);
    assert.equal(r.stdout, 'image data\n1\n', r.stderr);
    assert.deepEqual(events, ['create 64', 'destroy 64']);
    assert.deepEqual((await rt.volumes.list()).filter((v) => v.anonymous), []);
  });

  test('image Volumes become anonymous volumes; volumesFrom shares them read-only', async () => {
    const first = await resolveVolumeMounts([{ type: 'tmpfs', target: '/srv/data/tmp' }], {
      volumes: rt.volumes,
      user: { kind: 'container', id: 'first' },
      copyUp: { layers: [imageRootfs] },
      imageVolumes: ['/srv/data', '/tmp'],
    });
    try {
      assert.deepEqual(first.mounts.map((m) => m.target), ['/tmp', '/srv/data', '/srv/data/tmp'], 'parents before children');
      const anon = first.records.filter((r) => r.type === 'volume');
      assert.equal(anon.length, 2);
      assert.ok(anon.every((r) => r.type === 'volume' && r.anonymous && /^[0-9a-f]{64}$/.test(r.name)));
      const second = await resolveVolumeMounts([], { volumes: rt.volumes, user: { kind: 'container', id: 'second' }, volumesFrom: [{ mounts: first.records, mode: 'ro' }] });
      try {
        assert.deepEqual(second.mounts.map((m) => [m.target, m.type === 'bind' && m.readonly]), [['/tmp', true], ['/srv/data', true]], 'volumes inherited read-only, tmpfs not inherited');
        const r = await sh('cat /srv/data/app.db; echo x > /srv/data/y; echo rc=$?', { mounts: second.mounts }, imageRootfs);
        assert.equal(r.stdout, 'image data\nrc=1\n');
        assert.match(r.stderr, /Read-only file system/);
      } finally {
        await second.release({ removeAnonymous: true });
      }
      for (const rec of anon) assert.ok(await rt.volumes.get(rec.type === 'volume' ? rec.name : ''), 'the inheritor does not own them');
      await assert.rejects(rt.volumes.remove(anon[0]!.type === 'volume' ? anon[0]!.name : ''), ConflictError, 'the first container still uses them');
      await releaseVolumeMounts(rt.volumes, { kind: 'container', id: 'first' }, first.records, { removeAnonymous: true });
      for (const rec of anon) await assert.rejects(rt.volumes.get(rec.type === 'volume' ? rec.name : ''), NotFoundError);
    } finally {
      await first.release({ removeAnonymous: true });
    }
  });

  test('tmpfs-backed volume with a size: shared between runs, full at its size', async () => {
    await rt.volumes.create({ name: 'ramdisk', driverOpts: { type: 'tmpfs', size: '1m' } });
    const mounts: MountSpec[] = [{ type: 'volume', source: 'ramdisk', target: '/ram' }];
    const w = await sh('echo kept > /ram/f; head -c 2097152 /dev/zero > /ram/big; echo rc=$?; grep " /ram " /proc/self/mountinfo | sed "s/.* - //" | cut -d" " -f1', { mounts });
    assert.match(w.stdout, /rc=1\ntmpfs\n/);
    const r = await sh('cat /ram/f', { mounts });
    assert.equal(r.stdout, 'kept\n');
    assert.equal(mountAt(join(root, 'volumes', 'ramdisk', '_data'))?.fstype, 'tmpfs');
    await rt.volumes.remove('ramdisk');
    assert.equal(mountAt(join(root, 'volumes', 'ramdisk', '_data')), undefined);
  });

  test('removing a volume in use is refused, in this process and in another; allowed once the run is over', async () => {
    await rt.volumes.create({ name: 'busy' });
    const release = join(root, 'volumes', 'busy', '_data', 'release');
    const running = sh(`touch /busy/started; ${waitFor('/busy/release')}; echo done`, { mounts: [{ type: 'volume', source: 'busy', target: '/busy' }] });
    await untilExists(join(root, 'volumes', 'busy', '_data', 'started'));
    await assert.rejects(rt.volumes.remove('busy'), (e: unknown) => e instanceof ConflictError && /in use by run/.test(e.message));
    await assert.rejects(rt.volumes.remove('busy', { force: true }), ConflictError);
    assert.equal((await rt.volumes.prune({ all: true })).VolumesDeleted.includes('busy'), false);
    const code = `import { Runtime } from ${JSON.stringify(LIB)};
      const rt = await Runtime.open({ root: process.argv[1] });
      try { await rt.volumes.remove('busy'); console.log('removed'); } catch (e) { console.log(e.code); }`;
    const child = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, root], { encoding: 'utf8' });
    assert.equal(child.stdout.trim(), 'ERR_CONFLICT', child.stderr);
    writeFileSync(release, '');
    const r = await running;
    assert.equal(r.stdout, 'done\n', r.stderr);
    await rt.volumes.remove('busy');
  });

  test('a run in another process holds its volume until that process is gone', async () => {
    await rt.volumes.create({ name: 'held-elsewhere' });
    const data = join(root, 'volumes', 'held-elsewhere', '_data');
    const code = `import { Runtime } from ${JSON.stringify(LIB)};
      const rt = await Runtime.open({ root: process.argv[1] });
      const r = await rt.run({ rootfs: process.argv[2] }, ['sh', '-c', ${JSON.stringify(`touch /v/started; ${waitFor('/v/release')}`)}], { mounts: [{ type: 'volume', source: 'held-elsewhere', target: '/v' }] });
      console.log(r.exitCode);`;
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, root, rootfs], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    const exited = new Promise((resolve) => child.on('close', resolve));
    await untilExists(join(data, 'started'));
    await assert.rejects(rt.volumes.remove('held-elsewhere'), ConflictError);
    writeFileSync(join(data, 'release'), '');
    await exited;
    assert.equal(out.trim(), '0');
    await rt.volumes.remove('held-elsewhere');
  });

  test('typed errors: missing bind source, relative paths, berth-managed targets, unknown volume object', async () => {
    await assert.rejects(sh('true', { mounts: [{ type: 'bind', source: join(hostDir, 'missing'), target: '/x' }] }), NotFoundError);
    await assert.rejects(sh('true', { mounts: [{ type: 'bind', source: 'relative/dir', target: '/x' }] }), (e: unknown) => e instanceof ValidationError && e.option === 'mounts[0].source');
    await assert.rejects(sh('true', { mounts: [{ type: 'volume', source: 'x1', target: 'relative' }] }), (e: unknown) => e instanceof ValidationError && e.option === 'mounts[0].target');
    await assert.rejects(sh('true', { mounts: [{ type: 'volume', source: 'x1', target: '/proc' }] }), (e: unknown) => e instanceof ValidationError && e.option === 'mounts[0].target');
    await assert.rejects(sh('true', { mounts: [{ type: 'volume', source: 'x1', target: '/sys/' }] }), ValidationError);
    const gone = await rt.volumes.create({ name: 'gone-already' });
    await gone.remove();
    await assert.rejects(sh('true', { mounts: [{ type: 'volume', source: gone, target: '/x' }] }), NotFoundError, 'a removed Volume object is not silently re-created');
    assert.equal(existsSync(join(root, 'volumes', 'x1')), false, 'validation happens before any volume is created');
  });

  test('bind propagation: rslave shows host mounts made after the start; the default does not', async () => {
    const src = mkdtempSync(join(tmpdir(), 'berth-volrun-prop-'));
    const sub = join(src, 'sub');
    spawnSync('mount', ['-t', 'tmpfs', 'berth-prop', src]);
    spawnSync('mount', ['--make-shared', src]);
    mkdirSync(sub);
    try {
      const attempt = async (propagation: 'rslave' | 'rprivate') => {
        rmSync(join(src, 'ready'), { force: true });
        const script = `touch /src/ready; i=0; while [ ! -f /src/sub/marker ]; do sleep 0.05; i=$((i+1)); [ $i -gt 100 ] && { echo unseen; exit 0; }; done; echo seen`;
        const running = sh(script, { mounts: [{ type: 'bind', source: src, target: '/src', propagation }] });
        await untilExists(join(src, 'ready'));
        spawnSync('mount', ['-t', 'tmpfs', 'berth-prop-sub', sub]);
        writeFileSync(join(sub, 'marker'), '');
        const r = await running;
        spawnSync('umount', [sub]);
        return r.stdout.trim();
      };
      assert.equal(await attempt('rslave'), 'seen');
      assert.equal(await attempt('rprivate'), 'unseen');
      await assert.rejects(sh('true', { mounts: [{ type: 'bind', source: src, target: '/src', propagation: 'rshared' }] }), (e: unknown) => isBerthError(e) && e.code === 'ERR_UNSUPPORTED');
    } finally {
      spawnSync('umount', ['-l', sub]);
      spawnSync('umount', ['-l', src]);
      rmSync(src, { recursive: true, force: true });
    }
  });

  test('a volume target behind an image symlink lands inside the container', async () => {
    // The busybox rootfs has /link -> /tmp: resolved on the host, /link/x would be the host's /tmp/x.
    const name = `berth-vol-symlink-${process.pid}`;
    const r = await sh(`echo in > /tmp/${name}/f && grep -c " /tmp/${name} " /proc/self/mountinfo`, { mounts: [{ type: 'volume', source: 'via-link', target: `/link/${name}` }] });
    assert.equal(r.stdout, '1\n', r.stderr);
    assert.equal(existsSync(join('/tmp', name)), false, 'a mount point was created on the host');
    assert.equal(readFileSync(join(root, 'volumes', 'via-link', '_data', 'f'), 'utf8'), 'in\n');
  });

  test('CVE-2021-30465: a container swapping a symlink into a shared volume cannot redirect another container\'s mount', async (t) => {
    // The attacker shares `race` with the victim and flips /race/sub between a directory, a
    // symlink to a path that exists nowhere (the lure, in a host dir) and a symlink to
    // /home/app, which exists in the container only. The victim mounts a tmpfs at /race/sub.
    // Resolved on the host (or resolved once and mounted by path later), the mount point would
    // be created on the host (in the canary dir, or as /home/app) and the tmpfs would land
    // outside the container's root.
    const canary = mkdtempSync(join(tmpdir(), 'berth-canary-'));
    writeFileSync(join(canary, 'still-here'), 'canary\n');
    const lure = join(canary, 'made-by-mkdir');
    const hostHomeApp = existsSync('/home/app');
    const mounts: MountSpec[] = [{ type: 'volume', source: 'race', target: '/race' }];
    const attacker = sh(`touch /race/started; while [ ! -e /race/stop ]; do rm -rf /race/sub; mkdir /race/sub; rm -rf /race/sub; ln -s ${lure} /race/sub; rm -f /race/sub; ln -s /home/app /race/sub; done`, { mounts, timeout: 60_000 });
    const data = join(root, 'volumes', 'race', '_data');
    await untilExists(join(data, 'started'));
    const landed = new Map<string, number>();
    let refused = 0;
    t.after(() => rmSync(canary, { recursive: true, force: true }));
    try {
      for (let i = 0; i < 30; i++) {
        try {
          // Where did the victim's tmpfs (recognised by its size) end up, seen from inside?
          const r = await sh('grep "size=1236k" /proc/self/mountinfo | cut -d" " -f5; test -f /etc/secret-in-image && echo own-root', {
            mounts: [...mounts, { type: 'tmpfs', target: '/race/sub', size: '1236k' }],
          });
          const lines = r.stdout.trim().split('\n');
          const own = lines.pop();
          // Inside the container: at /race/sub, or through the attacker's link at the lure path
          // *inside the root*. Or gone: deleting a mount point in another namespace (the
          // attacker's rm -rf) detaches the mounts on it (Linux >= 3.18).
          const where = lines[0] ?? 'detached by the attacker';
          assert.ok(lines.length <= 1 && ['/race/sub', '/home/app', lure, 'detached by the attacker'].includes(where), `iteration ${i}: unexpected mount table: ${JSON.stringify(r.stdout)}`);
          assert.equal(own, 'own-root', `iteration ${i}: the victim does not see its own root`);
          landed.set(where, (landed.get(where) ?? 0) + 1);
        } catch (error) {
          if (error instanceof assert.AssertionError) throw error;
          // Losing the race may fail the setup (ENOENT through a dangling link, ENOTDIR): typed, never an escape.
          assert.ok(error instanceof SystemError || error instanceof NotFoundError, String(error));
          refused++;
        }
        assert.deepEqual(readdirSync(canary), ['still-here'], `iteration ${i}: something was created in the host's canary dir`);
        assert.equal(existsSync('/home/app'), hostHomeApp, `iteration ${i}: /home/app was created on the host`);
      }
    } finally {
      writeFileSync(join(data, 'stop'), '');
      await attacker;
    }
    assert.equal([...landed.values()].reduce((a, b) => a + b, 0) + refused, 30);
    t.diagnostic(`outcomes: ${JSON.stringify({ ...Object.fromEntries(landed), refused })}`);
    assert.ok(lstatSync(canary).isDirectory());
    assert.deepEqual(mountLines().filter((l) => l.includes(canary)), []);
  });
});
