/**
 * The volume store on a real kernel, as root: metadata layout, events, inspect, filters and
 * prune; tmpfs- and loop-backed volumes (host mounts made, limited, unmounted, remounted after
 * a simulated reboot); crash leftovers reconciled; create/remove and in-use bookkeeping raced
 * from several processes.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConflictError, NotFoundError, Runtime, ValidationError, Volume, type VolumeMountEvent } from '../../lib/index.js';
import { mountAt, unmount } from '../../lib/volumes/host-mount.js';
import type { VolumeMeta } from '../../lib/volumes/volume-store.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';

const skip = kernelSkipReason();
const LIB = fileURLToPath(new URL('../../lib/index.ts', import.meta.url));

/** Runs an ES module snippet in a fresh Node process with `rt` opened on `root`; resolves with its stdout. */
function inChild(root: string, body: string): Promise<string> {
  const code = `import { Runtime, isBerthError } from ${JSON.stringify(LIB)};\nconst rt = await Runtime.open({ root: process.argv[1] });\n${body}`;
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code, root], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c));
    child.stderr.on('data', (c: Buffer) => (err += c));
    child.on('close', (code) => (code === 0 ? resolve(out) : reject(new Error(`child exited ${code}: ${err}`))));
  });
}

/** A pid that no process has now. */
function deadPid(): number {
  const r = spawnSync('/bin/true');
  return r.pid!;
}

function mountsUnder(root: string): string[] {
  return readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[4] ?? '')
    .filter((mp) => mp.startsWith(`${root}/`));
}

function readMeta(root: string, name: string): VolumeMeta {
  return JSON.parse(readFileSync(join(root, 'volumes', name, 'meta.json'), 'utf8')) as VolumeMeta;
}

describe('volume store', { skip }, () => {
  let root: string;
  let rt: Runtime;
  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'berth-volstore-'));
    rt = await Runtime.open({ root });
  });
  after(async () => {
    for (const mp of mountsUnder(root).reverse()) await unmount(mp, { lazy: true }).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
  });

  test('create: layout on disk, Docker inspect fields, create of an existing name reuses it', async () => {
    const created: string[] = [];
    rt.volumes.on('create', (v) => created.push(v.name));
    const v = await rt.volumes.create({ name: 'layout', labels: { app: 'web' } });
    assert.ok(v instanceof Volume);
    assert.equal(v.mountpoint, join(root, 'volumes', 'layout', '_data'));
    assert.ok(statSync(v.mountpoint).isDirectory());
    assert.equal(readMeta(root, 'layout').name, 'layout');
    const info = await v.inspect({ size: true });
    assert.equal(info.Name, 'layout');
    assert.equal(info.Driver, 'local');
    assert.equal(info.Mountpoint, v.mountpoint);
    assert.deepEqual(info.Labels, { app: 'web' });
    assert.ok(!Number.isNaN(Date.parse(info.CreatedAt)));
    assert.deepEqual(info.UsageData, { Size: 0, RefCount: 0 });
    assert.deepEqual(info.InUseBy, []);
    assert.equal(info.Options, null);
    assert.equal(await rt.volumes.create({ name: 'layout' }), v, 'the same Volume object for the same volume');
    await assert.rejects(rt.volumes.create({ name: 'layout', labels: { app: 'db' } }), ConflictError);
    await assert.rejects(rt.volumes.create({ name: 'layout', driverOpts: { type: 'tmpfs' } }), ConflictError);
    assert.deepEqual(created, ['layout']);
    const unnamed = await rt.volumes.create();
    assert.match(unnamed.name, /^[0-9a-f]{64}$/);
    assert.equal(unnamed.anonymous, false, 'Docker: an unnamed create() is not anonymous');
    await unnamed.remove();
    await v.remove();
  });

  test('validation and not-found are typed', async () => {
    await assert.rejects(rt.volumes.create({ name: '/abs' }), (e: unknown) => e instanceof ValidationError && e.option === 'name');
    await assert.rejects(rt.volumes.create({ labels: { a: 1 } as never }), (e: unknown) => e instanceof ValidationError && e.option === 'labels.a');
    await assert.rejects(rt.volumes.create({ driverOpts: { type: 'zfs' } as never }), (e: unknown) => e instanceof ValidationError && e.option === 'driverOpts.type');
    await assert.rejects(rt.volumes.get('nope'), NotFoundError);
    await assert.rejects(rt.volumes.remove('nope'), NotFoundError);
    await rt.volumes.remove('nope', { force: true });
  });

  test('list with filters, and the events of attach / detach / remove', async () => {
    const a = await rt.volumes.create({ name: 'list-a', labels: { env: 'prod' } });
    const b = await rt.volumes.create({ name: 'list-b', labels: { env: 'dev' } });
    const events: string[] = [];
    a.on('mount', (e: VolumeMountEvent) => events.push(`mount ${e.user.id} ${e.target}`));
    a.on('unmount', (e: VolumeMountEvent) => events.push(`unmount ${e.user.id} ${e.target}`));
    a.on('destroy', (v) => events.push(`destroy ${v.name}`));
    await rt.volumes.attach('list-a', { kind: 'run', id: 'r1' }, { target: '/data' });
    assert.deepEqual((await rt.volumes.list({ filters: { name: 'list-' } })).map((v) => v.name), ['list-a', 'list-b']);
    assert.deepEqual((await rt.volumes.list({ filters: { label: 'env=prod' } })).map((v) => v.name), ['list-a']);
    assert.deepEqual((await rt.volumes.list({ filters: { name: 'list-', dangling: true } })).map((v) => v.name), ['list-b']);
    assert.deepEqual((await rt.volumes.list({ filters: { name: 'list-', dangling: false } })).map((v) => v.name), ['list-a']);
    const info = await a.inspect();
    assert.equal(info.UsageData.RefCount, 1);
    assert.deepEqual(info.InUseBy.map((u) => [u.Kind, u.Id, u.Pid, u.Targets]), [['run', 'r1', process.pid, ['/data']]]);
    await assert.rejects(a.remove(), (e: unknown) => e instanceof ConflictError && /in use by run r1/.test(e.message));
    await assert.rejects(a.remove({ force: true }), ConflictError, 'force never removes a volume in use');
    await rt.volumes.detach('list-a', { kind: 'run', id: 'r1' }, { target: '/data', readonly: false });
    await a.remove();
    await b.remove();
    assert.deepEqual(events, ['mount r1 /data', 'unmount r1 /data', 'destroy list-a']);
    assert.equal(existsSync(join(root, 'volumes', 'list-a')), false);
  });

  test('prune: anonymous unused volumes by default, every unused one with all, label filters', async () => {
    const anon = await rt.volumes.attach('f'.repeat(64), { kind: 'run', id: 'p0' }, { target: '/x', create: { anonymous: true } });
    await rt.volumes.detach(anon.volume.name, { kind: 'run', id: 'p0' }, { target: '/x', readonly: false });
    const inUseAnon = await rt.volumes.attach('e'.repeat(64), { kind: 'run', id: 'p1' }, { target: '/y', create: { anonymous: true } });
    await rt.volumes.create({ name: 'prune-named', labels: { keep: 'no' } });
    await rt.volumes.create({ name: 'prune-kept', labels: { keep: 'yes' } });
    writeFileSync(join(anon.volume.mountpoint, 'f'), 'x'.repeat(1000));
    const first = await rt.volumes.prune();
    assert.deepEqual(first.VolumesDeleted, [anon.volume.name]);
    assert.equal(first.SpaceReclaimed, 1000);
    const second = await rt.volumes.prune({ all: true, filters: { 'label!': 'keep=yes' } });
    assert.deepEqual(second.VolumesDeleted, ['prune-named']);
    assert.deepEqual((await rt.volumes.list()).map((v) => v.name).sort(), ['e'.repeat(64), 'prune-kept'].sort());
    await rt.volumes.detach(inUseAnon.volume.name, { kind: 'run', id: 'p1' }, { target: '/y', readonly: false, removeAnonymous: true });
    assert.deepEqual((await rt.volumes.list()).map((v) => v.name), ['prune-kept'], 'an anonymous volume goes with its last user when asked');
    await rt.volumes.remove('prune-kept');
  });

  test('tmpfs-backed volume: a host tmpfs with its size while the volume exists, unmounted on remove', async () => {
    const v = await rt.volumes.create({ name: 'tmpfs-vol', driverOpts: { type: 'tmpfs', size: '1m', mode: '0750' } });
    const m = mountAt(v.mountpoint);
    assert.equal(m?.fstype, 'tmpfs');
    assert.match(m!.superOptions, /size=1024k/);
    assert.equal(statSync(v.mountpoint).mode & 0o7777, 0o750);
    const info = await v.inspect();
    assert.deepEqual(info.Status, { Backend: 'tmpfs', SizeLimit: 1024 * 1024, Mounted: true });
    assert.deepEqual(info.Options, { type: 'tmpfs', size: '1m', mode: '0750' });
    writeFileSync(join(v.mountpoint, 'kept'), 'in memory');
    // A reboot (or an unmount by hand) takes the tmpfs away: the next runtime mounts a fresh one.
    await unmount(v.mountpoint);
    const again = await Runtime.open({ root });
    const report = await again.volumes.ready();
    assert.deepEqual(report.remounted, ['tmpfs-vol']);
    assert.equal(mountAt(v.mountpoint)?.fstype, 'tmpfs');
    assert.deepEqual(readdirSync(v.mountpoint), []);
    await v.remove();
    assert.equal(mountAt(v.mountpoint), undefined);
    assert.deepEqual(mountsUnder(root), []);
  });

  test('size-limited volume: loop-mounted ext4 image, full at its size, data kept across a remount', async () => {
    const v = await rt.volumes.create({ name: 'sized', driverOpts: { size: '4m' } });
    const info = await v.inspect();
    assert.equal(info.Status.Backend, 'loop', 'this host has no project quota: berth says which backend it used');
    assert.equal(info.Status.SizeLimit, 4 * 1024 * 1024);
    assert.equal(mountAt(v.mountpoint)?.fstype, 'ext4');
    assert.deepEqual(readdirSync(v.mountpoint), [], 'a new volume is empty (no lost+found)');
    assert.throws(() => writeFileSync(join(v.mountpoint, 'big'), Buffer.alloc(8 * 1024 * 1024)), /ENOSPC/);
    rmSync(join(v.mountpoint, 'big'), { force: true });
    writeFileSync(join(v.mountpoint, 'kept'), 'on disk');
    await unmount(v.mountpoint);
    const again = await Runtime.open({ root });
    assert.deepEqual((await again.volumes.ready()).remounted, ['sized']);
    assert.equal(readFileSync(join(v.mountpoint, 'kept'), 'utf8'), 'on disk');
    await v.remove();
    assert.deepEqual(mountsUnder(root), []);
  });

  test('a crash mid-create or mid-remove leaves nothing a new runtime does not clean up', async () => {
    const dead = deadPid();
    const halfNew = join(root, 'volumes', `.new-half-${dead}-0badc0de`);
    const halfTrash = join(root, 'volumes', `.trash-gone-${dead}-0badc0de`);
    mkdirSync(join(halfNew, '_data'), { recursive: true });
    spawnSync('mount', ['-t', 'tmpfs', 'berth-volume', join(halfNew, '_data')]);
    mkdirSync(join(halfTrash, '_data'), { recursive: true });
    writeFileSync(join(halfTrash, '_data', 'x'), 'x');
    assert.equal(mountAt(join(halfNew, '_data'))?.fstype, 'tmpfs');
    const again = await Runtime.open({ root });
    assert.deepEqual((await again.volumes.list()).map((v) => v.name), [], 'half volumes are never listed');
    const report = await again.volumes.ready();
    assert.deepEqual(report.cleaned.sort(), [`.new-half-${dead}-0badc0de`, `.trash-gone-${dead}-0badc0de`]);
    assert.equal(existsSync(halfNew), false);
    assert.equal(existsSync(halfTrash), false);
    assert.deepEqual(mountsUnder(root), []);
  });

  test('a copy-up that died half-way is wiped and done again', async () => {
    const src = mkdtempSync(join(tmpdir(), 'berth-copysrc-'));
    try {
      mkdirSync(join(src, 'data'));
      writeFileSync(join(src, 'data', 'a'), 'A');
      writeFileSync(join(src, 'data', 'b'), 'B');
      const v = await rt.volumes.create({ name: 'halfcopy' });
      writeFileSync(join(v.mountpoint, 'a'), 'partial');
      const meta = readMeta(root, 'halfcopy');
      meta.copyUp = { owner: { pid: deadPid(), startTime: '1' }, target: '/data' };
      writeFileSync(join(root, 'volumes', 'halfcopy', 'meta.json'), JSON.stringify(meta));
      const r = await rt.volumes.attach('halfcopy', { kind: 'run', id: 'c1' }, { target: '/data', copyUp: { source: { layers: [src] }, target: '/data' } });
      assert.equal(r.copied, true);
      assert.deepEqual(readdirSync(v.mountpoint).sort(), ['a', 'b']);
      assert.equal(readFileSync(join(v.mountpoint, 'a'), 'utf8'), 'A');
      assert.equal(readMeta(root, 'halfcopy').copyUp, undefined);
      await rt.volumes.detach('halfcopy', { kind: 'run', id: 'c1' }, { target: '/data', readonly: false });
      await v.remove();
    } finally {
      rmSync(src, { recursive: true, force: true });
    }
  });

  test('in-use records of a process that died are stale: the volume can be removed', async () => {
    await rt.volumes.create({ name: 'stale-user' });
    const out = await inChild(root, `await rt.volumes.attach('stale-user', { kind: 'run', id: 'child' }, { target: '/d' }); console.log('attached');`);
    assert.equal(out.trim(), 'attached');
    assert.equal(readMeta(root, 'stale-user').users.length, 1, 'the record is still there');
    assert.equal((await rt.volumes.inspect('stale-user')).UsageData.RefCount, 0);
    await rt.volumes.remove('stale-user');
  });

  test('two processes racing create/attach/remove of one name: no lost update, no half volume', async () => {
    const body = (tag: string) => `
      const out = { created: 0, removed: 0, conflict: 0, notFound: 0 };
      for (let i = 0; i < 15; i++) {
        await rt.volumes.create({ name: 'contended', driverOpts: { type: 'tmpfs', size: '1m' } });
        out.created++;
        await rt.volumes.attach('shared-users', { kind: 'container', id: '${tag}-' + i }, { target: '/d', create: {} });
        try {
          await rt.volumes.remove('contended');
          out.removed++;
        } catch (e) {
          if (!isBerthError(e)) throw e;
          if (e.code === 'ERR_NOT_FOUND') out.notFound++; else throw e;
        }
      }
      console.log(JSON.stringify(out));`;
    // Container users whose containers exist are never stale, whichever process attached them.
    for (const tag of ['a', 'b']) for (let i = 0; i < 15; i++) {
      mkdirSync(join(root, 'containers', `${tag}-${i}`), { recursive: true });
      writeFileSync(join(root, 'containers', `${tag}-${i}`, 'config.json'), '{}');
    }
    const results = (await Promise.all([inChild(root, body('a')), inChild(root, body('b'))])).map((s) => JSON.parse(s) as { created: number; removed: number; notFound: number });
    for (const r of results) assert.equal(r.created, 15);
    assert.equal(results[0]!.removed + results[1]!.removed + results[0]!.notFound + results[1]!.notFound, 30);
    // Every attach of both processes is in the metadata: the lock serialised the read-modify-writes.
    assert.equal(readMeta(root, 'shared-users').users.length, 30);
    await assert.rejects(rt.volumes.remove('shared-users'), ConflictError, 'containers that exist hold the volume');
    rmSync(join(root, 'containers'), { recursive: true });
    assert.deepEqual(readdirSync(join(root, 'volumes')).filter((n) => n.startsWith('.')), [], 'no .new-/.trash- leftovers');
    const contended = existsSync(join(root, 'volumes', 'contended'));
    assert.equal(mountsUnder(root).length, contended ? 1 : 0, 'exactly one tmpfs per existing volume, none for removed ones');
    await rt.volumes.remove('contended', { force: true });
    await rt.volumes.remove('shared-users');
    assert.deepEqual(mountsUnder(root), []);
  });

  test('a volume from another runtime is refused as a mount source', async () => {
    const otherRoot = mkdtempSync(join(tmpdir(), 'berth-volstore-other-'));
    try {
      const other = await Runtime.open({ root: otherRoot });
      const foreign = await other.volumes.create({ name: 'foreign' });
      await assert.rejects(
        rt.run({ rootfs: busyboxRootfs() }, ['true'], { mounts: [{ type: 'volume', source: foreign, target: '/x' }] }),
        (e: unknown) => e instanceof ValidationError && e.option === 'mounts[0].source',
      );
      await foreign.remove();
    } finally {
      rmSync(otherRoot, { recursive: true, force: true });
    }
  });
});
