/**
 * Containers with volumes, on the real kernel: data kept across containers, sharing between
 * running containers, `volumesFrom`, anonymous volumes and their removal, the image's
 * `Volumes` with copy-up, in-use refusal, and a detached container's volume.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConflictError, NotFoundError, isBerthError } from '../../lib/errors.js';
import { APP_UID, busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { mountLines } from '../helpers/leaks.js';
import { openFixture, type Fixture } from '../helpers/containers-fixture.js';

const skip = kernelSkipReason();
const isErr = (cls: new (...a: never[]) => Error, pattern?: RegExp) => (e: unknown) => isBerthError(e) && e instanceof cls && (!pattern || pattern.test(e.message));

/** A shell loop that waits (bounded: about `seconds`) for a file, then exits 3 if it never came. */
const waitFor = (path: string, seconds = 20) => `i=0; while [ ! -e ${path} ]; do sleep 0.05; i=$((i+1)); [ $i -gt ${seconds * 20} ] && exit 3; done; true`;

describe('containers with volumes', { skip }, () => {
  let f: Fixture;
  /** Runs a script to its end in a new container; its exit and output. */
  const runOnce = async (script: string, options: Parameters<Fixture['sh']>[1] = {}) => {
    const c = await f.sh(script, options);
    await c.start();
    const exit = await c.wait();
    return { exit, out: await c.logs().text(), c };
  };
  const volumeNames = async () => (await f.rt.volumes.list()).map((v) => v.name);

  before(async () => {
    busyboxRootfs();
    f = await openFixture('berth-ctvol-');
  });
  after(async () => {
    for (const s of await f.rt.containers.list({ all: true }).catch(() => [])) await (await f.rt.containers.get(s.Id)).remove({ force: true, volumes: true }).catch(() => {});
    for (const v of await f.rt.volumes.list().catch(() => [])) await v.remove({ force: true }).catch(() => {});
    const root = f.root;
    await f.cleanup();
    assert.deepEqual(mountLines().filter((l) => l.includes(root)), [], 'no mount of the state dir is left');
  });

  test('a volume written by one container is read by the next, at every start, and survives both', async () => {
    const mounts = [{ type: 'volume' as const, source: 'kept', target: '/data' }];
    const w = await runOnce('echo written-once >> /data/log', { mounts });
    assert.equal(w.exit.exitCode, 0, w.out);
    // Started again, the same container finds its volume mounted again.
    await w.c.start();
    await w.c.wait();
    const r = await runOnce('cat /data/log', { mounts });
    assert.equal(r.out, 'written-once\nwritten-once\n');

    const info = await r.c.inspect();
    const vol = await f.rt.volumes.get('kept');
    assert.deepEqual(info.Mounts, [{ Type: 'volume', Name: 'kept', Driver: 'local', Source: vol.mountpoint, Destination: '/data', RW: true, Propagation: '' }]);
    const users = (await vol.inspect()).InUseBy.map((u) => u.Id).sort();
    assert.deepEqual(users, [w.c.id, r.c.id].sort(), 'stopped containers still hold their volumes');
    await assert.rejects(f.rt.volumes.remove('kept'), isErr(ConflictError));
    await assert.rejects(f.rt.volumes.remove('kept', { force: true }), isErr(ConflictError), 'force only after the containers are gone');

    await w.c.remove();
    await r.c.remove({ volumes: true });
    assert.equal(readFileSync(join(vol.mountpoint, 'log'), 'utf8'), 'written-once\nwritten-once\n', 'named volumes outlive their containers, even with volumes: true');
    assert.deepEqual((await vol.inspect()).InUseBy, []);
    await f.rt.volumes.remove('kept');
  });

  test('two running containers share a volume and see each other\'s writes at once; a read-only mount refuses writes', async () => {
    const a = await f.sh(`echo from-a > /v/a; ${waitFor('/v/b')}; cat /v/b`, { mounts: [{ type: 'volume', source: 'shared', target: '/v' }] });
    const b = await f.sh(`echo from-b > /v/b; ${waitFor('/v/a')}; cat /v/a; touch /ro/x 2>&1 || echo ro-refused`, {
      mounts: [{ type: 'volume', source: 'shared', target: '/v' }, { type: 'volume', source: 'shared', target: '/ro', readonly: true }],
    });
    await Promise.all([a.start(), b.start()]);
    const [ea, eb] = await Promise.all([a.wait(), b.wait()]);
    assert.equal(ea.exitCode, 0);
    assert.equal(eb.exitCode, 0);
    assert.equal(await a.logs().text(), 'from-b\n');
    const outB = await b.logs().text();
    assert.match(outB, /^from-a$/m);
    assert.match(outB, /Read-only file system/);
    assert.match(outB, /ro-refused/);
    const ro = (await b.inspect()).Mounts.find((m) => m.Destination === '/ro');
    assert.equal(ro?.RW, false);
  });

  test('volumesFrom inherits another container\'s volumes and binds, with :ro; its anonymous volumes stay its own', async () => {
    const hostDir = mkdtempSync(join(tmpdir(), 'berth-ctvol-host-'));
    writeFileSync(join(hostDir, 'h'), 'from-host\n');
    after(() => rmSync(hostDir, { recursive: true, force: true }));
    const dc = await f.sh('echo seeded > /anon/f; echo named > /named/f', {
      name: 'data-holder',
      mounts: [
        { type: 'volume', target: '/anon' },
        { type: 'volume', source: 'vf-named', target: '/named' },
        { type: 'tmpfs', target: '/scratch' },
        { type: 'bind', source: hostDir, target: '/hostconf' },
      ],
    });
    await dc.start();
    assert.equal((await dc.wait()).exitCode, 0);
    const anon = (await dc.inspect()).Mounts.find((m) => m.Destination === '/anon')!.Name!;
    assert.match(anon, /^[0-9a-f]{64}$/);

    const rw = await runOnce('cat /anon/f /named/f /hostconf/h; echo more > /anon/g && echo rw-ok; mount | grep -c " /scratch " || true', { volumesFrom: ['data-holder'] });
    assert.equal(rw.exit.exitCode, 0, rw.out);
    assert.equal(rw.out, 'seeded\nnamed\nfrom-host\nrw-ok\n0\n', 'volumes and binds inherited, tmpfs not');
    const ro = await runOnce('cat /anon/g; touch /anon/h 2>&1 || echo ro-refused; touch /hostconf/x 2>&1 || echo bind-ro-refused', { volumesFrom: [`${dc.id.slice(0, 12)}:ro`] });
    assert.match(ro.out, /^more$/m);
    assert.match(ro.out, /ro-refused/);
    assert.match(ro.out, /bind-ro-refused/);
    // An explicit mount wins its target over the inherited one.
    const own = await runOnce('cat /anon/f 2>&1 || echo own-volume', { volumesFrom: ['data-holder'], mounts: [{ type: 'volume', source: 'vf-own', target: '/anon' }] });
    assert.match(own.out, /own-volume/);
    await assert.rejects(f.sh('true', { volumesFrom: ['no-such-container'] }), isErr(NotFoundError, /volumesFrom/));

    // Removing the holder with its volumes leaves the anonymous one to the containers still using it.
    await dc.remove({ volumes: true });
    assert.ok((await volumeNames()).includes(anon));
    await rw.c.remove({ volumes: true });
    await ro.c.remove({ volumes: true });
    assert.ok((await volumeNames()).includes(anon), 'an inherited anonymous volume is not the inheritor\'s to remove');
    assert.ok((await f.rt.volumes.prune()).VolumesDeleted.includes(anon), 'unused now: prune takes it');
  });

  test('anonymous volumes: removed with remove({ volumes: true }) and autoRemove, kept by a plain remove()', async () => {
    const anonOf = async (c: { inspect(): Promise<{ Mounts: Array<{ Name?: string }> }> }) => (await c.inspect()).Mounts[0]!.Name!;
    const a = await runOnce('echo x > /anon/f', { mounts: [{ type: 'volume', target: '/anon' }] });
    const nameA = await anonOf(a.c);
    await assert.rejects(f.rt.volumes.remove(nameA), isErr(ConflictError), 'in use by its container');
    await a.c.remove({ volumes: true });
    assert.ok(!(await volumeNames()).includes(nameA));

    const b = await runOnce('true', { mounts: [{ type: 'volume', target: '/anon' }] });
    const nameB = await anonOf(b.c);
    await b.c.remove();
    assert.ok((await volumeNames()).includes(nameB), 'docker rm without -v keeps it');
    await f.rt.volumes.remove(nameB);

    const c = await f.sh('echo bye > /anon/f', { mounts: [{ type: 'volume', target: '/anon' }], autoRemove: true });
    const nameC = await anonOf(c);
    await c.start();
    await c.wait({ condition: 'removed' });
    assert.ok(!(await volumeNames()).includes(nameC), 'autoRemove takes the anonymous volume with the container');
  });

  test('the image\'s Volumes become anonymous volumes filled by copy-up; a named volume or nocopy overrides', async () => {
    const base = await runOnce(`mkdir -p /seed && echo from-image > /seed/file && chown ${APP_UID}:${APP_UID} /seed/file && chmod 640 /seed/file`);
    assert.equal(base.exit.exitCode, 0, base.out);
    const ref = 'localhost/berth-test/with-volume:1';
    await base.c.commit({ ref, changes: ['VOLUME ["/seed"]', 'CMD ["sh", "-c", "stat -c \'%u %a\' /seed/file; cat /seed/file"]'] });

    const c = await f.rt.containers.create({ image: ref });
    await c.start();
    await c.wait();
    assert.equal(await c.logs().text(), `${APP_UID} 640\nfrom-image\n`);
    const [m] = (await c.inspect()).Mounts;
    assert.equal(m?.Type, 'volume');
    assert.equal(m?.Destination, '/seed');
    assert.match(m!.Name!, /^[0-9a-f]{64}$/);
    assert.equal(statSync(join(m!.Source, 'file')).uid, APP_UID, 'copied with its owner');
    await c.remove({ volumes: true });
    assert.ok(!existsSync(m!.Source));

    const named = await f.rt.containers.create({ image: ref, mounts: [{ type: 'volume', source: 'seed-named', target: '/seed' }] });
    await named.start();
    await named.wait();
    assert.match(await named.logs().text(), /from-image/);
    assert.deepEqual((await named.inspect()).Mounts.map((x) => x.Name), ['seed-named'], 'the explicit mount replaces the image volume');
    const empty = await f.rt.containers.create({ image: ref, cmd: ['ls', '-A', '/seed'], mounts: [{ type: 'volume', source: 'seed-nocopy', target: '/seed', nocopy: true }] });
    await empty.start();
    await empty.wait();
    assert.equal(await empty.logs().text(), '');
    await named.remove();
    await empty.remove();
  });

  test('a detached container mounts its volumes from the same spec, and keeps them across its monitor', async () => {
    const d = await f.sh('echo detached-wrote > /dv/f', { mounts: [{ type: 'volume', source: 'detached-vol', target: '/dv' }], lifetime: 'detached' });
    await d.start();
    assert.equal((await d.wait()).exitCode, 0);
    const r = await runOnce('cat /dv/f', { mounts: [{ type: 'volume', source: 'detached-vol', target: '/dv' }] });
    assert.equal(r.out, 'detached-wrote\n');
    assert.deepEqual((await (await f.rt.volumes.get('detached-vol')).inspect()).InUseBy.map((u) => u.Id).sort(), [d.id, r.c.id].sort());
  });
});
