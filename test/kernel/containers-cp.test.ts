/**
 * `docker cp` semantics of putArchive / getArchive / statPath / copyTo / copyFrom (issue 12
 * §2), on the real kernel, checked from inside the container and on the host: destination
 * rules, what is preserved, ownership, every container state, read-only places, and that a
 * stopped container's copy leaves nothing mounted or open. The attacks are in
 * containers-cp-attack.test.ts.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { chmodSync, chownSync, existsSync, linkSync, lstatSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, readlinkSync, rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { openFixture, type Fixture } from '../helpers/containers-fixture.js';
import { buildTar } from '../helpers/tar-builder.js';
import { writeOciLayout } from '../helpers/oci-layout.js';
import { execFileSync } from 'node:child_process';
import { AbortError, ConflictError, NotFoundError, SystemError, UnsupportedError, ValidationError } from '../../lib/errors.js';
import { ArchiveConflictError, UnsafeArchiveEntryError } from '../../lib/containers/archive-errors.js';
import type { Container } from '../../lib/containers/container.js';

const skip = kernelSkipReason();

const MTIME = 1_600_000_000;

async function sh(c: Container, script: string): Promise<string> {
  const r = await c.exec(['sh', '-c', script]);
  assert.equal(r.exitCode, 0, `${script}: ${r.stderr}`);
  return r.stdout.trim();
}

function fdCount(): number {
  return readdirSync('/proc/self/fd').length;
}

/** A host tree: d/{a.txt (0640), x.sh (04755), sub/b.txt, rel -> a.txt, abs -> /etc/passwd, hard -> a.txt} */
function hostTree(dir: string): void {
  mkdirSync(join(dir, 'd/sub'), { recursive: true });
  writeFileSync(join(dir, 'd/a.txt'), 'alpha');
  chmodSync(join(dir, 'd/a.txt'), 0o640);
  writeFileSync(join(dir, 'd/x.sh'), '#!/bin/sh\n');
  chmodSync(join(dir, 'd/x.sh'), 0o4755);
  writeFileSync(join(dir, 'd/sub/b.txt'), 'beta');
  symlinkSync('a.txt', join(dir, 'd/rel'));
  symlinkSync('/etc/passwd', join(dir, 'd/abs'));
  linkSync(join(dir, 'd/a.txt'), join(dir, 'd/hard'));
  chmodSync(join(dir, 'd/sub'), 0o750);
  for (const p of ['d/a.txt', 'd/sub/b.txt', 'd/sub', 'd']) utimesSync(join(dir, p), MTIME, MTIME);
}

describe('docker cp rules on a running container', { skip }, () => {
  let f: Fixture;
  let host: string;
  let c: Container;

  before(async () => {
    f = await openFixture('berth-cp-');
    host = mkdtempSync(join(tmpdir(), 'berth-cp-host-'));
    hostTree(host);
    c = await f.sh('mkdir -p /dst /files && echo old > /files/old.txt && exec sleep 1000');
    await c.start();
    await c.exec(['sh', '-c', 'until [ -f /files/old.txt ]; do sleep 0.05; done']);
  });
  after(async () => {
    await f?.cleanup();
    if (host) rmSync(host, { recursive: true, force: true });
  });

  test('a directory into an existing directory lands under its own name, with modes, mtimes, symlinks and hard links', async () => {
    await c.copyTo(join(host, 'd'), '/dst');
    assert.equal(await sh(c, 'cat /dst/d/a.txt /dst/d/sub/b.txt'), 'alphabeta');
    assert.equal(await sh(c, 'stat -c "%a %u:%g %Y" /dst/d/a.txt'), `640 0:0 ${MTIME}`);
    assert.equal(await sh(c, 'stat -c "%a %Y" /dst/d/sub'), `750 ${MTIME}`);
    assert.equal(await sh(c, 'stat -c %a /dst/d/x.sh'), '4755', 'set-id bits are kept going into a container');
    assert.equal(await sh(c, 'readlink /dst/d/rel; readlink /dst/d/abs'), 'a.txt\n/etc/passwd');
    assert.equal(await sh(c, '[ /dst/d/hard -ef /dst/d/a.txt ] && echo same'), 'same');
  });

  test('a directory\'s contents (`/.`) merge into an existing directory', async () => {
    await sh(c, 'mkdir -p /merge && echo keep > /merge/keep');
    await c.copyTo(`${join(host, 'd')}/.`, '/merge');
    assert.equal(await sh(c, 'ls /merge | sort | tr "\\n" " "'), 'a.txt abs hard keep rel sub x.sh');
  });

  test('a directory to a new name is created with the contents; a file to a new name, renamed', async () => {
    await c.copyTo(join(host, 'd'), '/newdir');
    assert.equal(await sh(c, 'cat /newdir/sub/b.txt'), 'beta');
    await c.copyTo(join(host, 'd/a.txt'), '/files/renamed.txt');
    assert.equal(await sh(c, 'cat /files/renamed.txt'), 'alpha');
  });

  test('a file over an existing file replaces it', async () => {
    await c.copyTo(join(host, 'd/a.txt'), '/files/old.txt');
    assert.equal(await sh(c, 'cat /files/old.txt'), 'alpha');
  });

  test('refusals name the path: missing parent, missing `…/` directory, directory onto a file, `…/` on a file, missing source', async () => {
    await assert.rejects(c.copyTo(join(host, 'd/a.txt'), '/nope/x'), (e) => e instanceof NotFoundError && /\/nope\/x/.test(e.message));
    await assert.rejects(c.copyTo(join(host, 'd/a.txt'), '/nodir/'), (e) => e instanceof NotFoundError && e.path === '/nodir/');
    await assert.rejects(c.copyTo(join(host, 'd'), '/files/old.txt'), (e) => e instanceof ArchiveConflictError && e.path === '/files/old.txt');
    await assert.rejects(c.copyFrom('/etc/passwd/', join(host, 'x')), (e) => e instanceof ArchiveConflictError && e.path === '/etc/passwd/');
    await assert.rejects(c.copyFrom('/no/such', join(host, 'x')), (e) => e instanceof NotFoundError && e.path === '/no/such');
    await assert.rejects(c.copyTo(join(host, 'missing'), '/dst'), (e) => e instanceof NotFoundError);
    await assert.rejects(c.putArchive(buildTar([{ name: 'f', content: 'x' }]), { path: '/files/old.txt' }), (e) => e instanceof ArchiveConflictError);
    await assert.rejects(c.putArchive(buildTar([{ name: 'f', content: 'x' }]), { path: '/absent' }), (e) => e instanceof NotFoundError && e.path === '/absent');
    await assert.rejects(c.putArchive(Buffer.from('not a tar archive at all'.repeat(40)), { path: '/dst' }), (e) => e instanceof ValidationError && e.option === 'tar');
    await assert.rejects(c.putArchive(buildTar([]), { path: '' }), (e) => e instanceof ValidationError && e.option === 'path');
  });

  test('an archive never replaces a directory with a file or the reverse', async () => {
    await sh(c, 'mkdir -p /dd/sub && echo f > /dd/file');
    await assert.rejects(c.putArchive(buildTar([{ name: 'sub', content: 'x' }]), { path: '/dd' }), (e) => e instanceof ArchiveConflictError && /cannot overwrite directory/.test(e.message));
    await assert.rejects(c.putArchive(buildTar([{ name: 'file', type: 'dir' }]), { path: '/dd' }), (e) => e instanceof ArchiveConflictError && /non-directory/.test(e.message));
    assert.equal(await sh(c, 'cat /dd/file; [ -d /dd/sub ] && echo dir'), 'f\ndir');
  });

  test('ownership: the container\'s root by default, the source ids with archive / putArchive', async () => {
    const owned = join(host, 'owned.txt');
    writeFileSync(owned, 'o');
    chownSync(owned, 1234, 2345);
    await c.copyTo(owned, '/files/default.txt');
    await c.copyTo(owned, '/files/archive.txt', { archive: true });
    await c.putArchive(buildTar([{ name: 'tarred', content: 't', uid: 1000, gid: 1001 }]), { path: '/files' });
    assert.equal(await sh(c, 'stat -c %u:%g /files/default.txt /files/archive.txt /files/tarred'), '0:0\n1234:2345\n1000:1001');
  });

  test('copyFrom: the invoking user owns the copy, set-id bits and non-user xattrs are not copied, symlinks stay symlinks', async () => {
    await sh(c, 'mkdir -p /src/in && echo s > /src/suid && chmod 4755 /src/suid && chown 1000:1000 /src/suid && ln -s /etc/shadow /src/link && echo i > /src/in/f');
    const out = mkdtempSync(join(tmpdir(), 'berth-cp-out-'));
    try {
      await c.copyFrom('/src', join(out, 'copy'));
      const st = statSync(join(out, 'copy/suid'));
      assert.equal(st.mode & 0o7777, 0o755);
      assert.equal(st.uid, process.getuid!());
      assert.equal(readlinkSync(join(out, 'copy/link')), '/etc/shadow');
      assert.equal(readFileSync(join(out, 'copy/in/f'), 'utf8'), 'i\n');
      await c.copyFrom('/src/suid', join(out, 'kept'), { archive: true });
      assert.equal(statSync(join(out, 'kept')).uid, 1000);
      // Into an existing directory: under the source's name.
      await c.copyFrom('/src/in/f', out);
      assert.equal(readFileSync(join(out, 'f'), 'utf8'), 'i\n');
      assert.deepEqual(readdirSync(out).filter((n) => n.startsWith('.berth-cp-')), []);
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });

  test('getArchive and statPath: a tar named after the path, and Docker\'s path stat', async () => {
    const s = await c.getArchive({ path: '/dst/d' });
    assert.equal(s.stat.name, 'd');
    assert.equal(s.stat.mode & 0o170000, 0o040000);
    const parts: Buffer[] = [];
    for await (const chunk of s) parts.push(chunk as Buffer);
    const tar = Buffer.concat(parts);
    assert.ok(tar.includes('d/sub/b.txt') && tar.includes('alpha'));
    const link = await c.statPath('/dst/d/abs');
    assert.equal(link.linkTarget, '/etc/passwd');
    assert.equal(link.mode & 0o170000, 0o120000);
    const roundTrip = await c.getArchive({ path: '/dst/d/.' });
    await c.putArchive(roundTrip, { path: '/files' });
    assert.equal(await sh(c, 'cat /files/sub/b.txt'), 'beta');
  });

  test('a large file streams through intact, and an aborted copy leaves no half-written file', async () => {
    const big = join(host, 'big.bin');
    const data = Buffer.alloc(48 * 1024 * 1024);
    for (let i = 0; i < data.length; i += 4096) data.writeUInt32LE(i, i);
    writeFileSync(big, data);
    await c.copyTo(big, '/files/big.bin');
    assert.equal(await sh(c, 'sha256sum /files/big.bin | cut -d" " -f1'), createHash('sha256').update(data).digest('hex'));
    const out = mkdtempSync(join(tmpdir(), 'berth-cp-out-'));
    try {
      await c.copyFrom('/files/big.bin', join(out, 'big.bin'));
      assert.ok(readFileSync(join(out, 'big.bin')).equals(data));
      const ac = new AbortController();
      const slow = Readable.from((async function* () {
        const tar = buildTar([{ name: 'partial.bin', content: data.subarray(0, 8 * 1024 * 1024) }]);
        yield tar.subarray(0, 4 * 1024 * 1024);
        ac.abort();
        yield tar.subarray(4 * 1024 * 1024);
      })());
      await assert.rejects(c.putArchive(slow, { path: '/files', signal: ac.signal }), (e) => e instanceof AbortError);
      assert.equal(await sh(c, 'ls -a /files | grep -c -e partial -e .berth-cp- || true'), '0');

      // A directory copied to a new name appears whole or not at all: aborted once its
      // temporary name exists on the host, nothing is left under either name.
      await sh(c, 'mkdir -p /tree && echo first > /tree/a && cp /files/big.bin /tree/big.bin');
      const abort = new AbortController();
      let settled = false;
      const copying = c.copyFrom('/tree', join(out, 'tree-copy'), { signal: abort.signal }).finally(() => {
        settled = true;
      });
      const watch = (async () => {
        while (!settled && !readdirSync(out).some((n) => n.startsWith('.berth-cp-'))) await new Promise((r) => setImmediate(r));
        abort.abort();
      })();
      await assert.rejects(copying, (e) => e instanceof AbortError);
      await watch;
      assert.deepEqual(readdirSync(out).filter((n) => n.startsWith('.berth-cp-') || n === 'tree-copy'), []);
      await c.copyFrom('/tree', join(out, 'tree-copy'));
      assert.equal(readFileSync(join(out, 'tree-copy/a'), 'utf8'), 'first\n');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
  });
});

describe('docker cp in every container state', { skip }, () => {
  let f: Fixture;
  let host: string;

  before(async () => {
    f = await openFixture('berth-cp-states-');
    host = mkdtempSync(join(tmpdir(), 'berth-cp-host-'));
    hostTree(host);
  });
  after(async () => {
    await f?.cleanup();
    if (host) rmSync(host, { recursive: true, force: true });
  });

  test('created, paused and exited containers, with nothing left mounted or open', async () => {
    const mountsBefore = readFileSync('/proc/self/mountinfo', 'utf8');
    const fdsBefore = fdCount();
    const c = await f.sh('cat /etc/created.txt /tmp/d/sub/b.txt; echo; echo run > /ran; exec sleep 1000');
    await c.putArchive(buildTar([{ name: 'created.txt', content: 'made before start\n' }]), { path: '/etc' });
    await c.copyTo(join(host, 'd'), '/tmp');
    assert.equal((await c.statPath('/etc/created.txt')).size, 18);
    const s = await c.getArchive({ path: '/etc/created.txt' });
    for await (const _ of s) void _;
    // Destroyed unread: its root (a detached mount, the lock) must still be let go.
    (await c.getArchive({ path: '/etc' })).destroy();
    await new Promise((r) => setImmediate(r));
    assert.equal(readFileSync('/proc/self/mountinfo', 'utf8'), mountsBefore, 'a copy left a mount behind');
    assert.equal(fdCount(), fdsBefore, 'a copy of a created container left an fd open');
    await c.start();
    await c.waitForLog('beta');
    assert.equal(await sh(c, 'cat /etc/created.txt'), 'made before start');

    await c.pause();
    await c.copyTo(join(host, 'd/a.txt'), '/paused.txt');
    const out = mkdtempSync(join(tmpdir(), 'berth-cp-out-'));
    try {
      await c.copyFrom('/ran', join(out, 'ran'));
      assert.equal(readFileSync(join(out, 'ran'), 'utf8'), 'run\n');
      await c.unpause();
      assert.equal(await sh(c, 'cat /paused.txt'), 'alpha');

      await c.stop({ timeout: 100 });
      const fdsExited = fdCount();
      await c.copyFrom('/paused.txt', join(out, 'exited.txt'));
      assert.equal(readFileSync(join(out, 'exited.txt'), 'utf8'), 'alpha');
      await c.copyTo(join(host, 'd/sub/b.txt'), '/after-exit.txt');
      assert.equal(fdCount(), fdsExited, 'a copy of an exited container left an fd open');
      // A deleted image file stays deleted (the overlay's whiteout) and can be replaced.
      await c.start();
      await sh(c, 'rm /etc/created.txt');
      await c.stop({ timeout: 100 });
      await assert.rejects(c.statPath('/etc/created.txt'), NotFoundError);
      await c.putArchive(buildTar([{ name: 'created.txt', content: 'again' }]), { path: '/etc' });
      await c.start();
      assert.equal(await sh(c, 'cat /after-exit.txt /etc/created.txt'), 'betaagain');
      await c.stop({ timeout: 100 });
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    assert.equal(readFileSync('/proc/self/mountinfo', 'utf8'), mountsBefore, 'a copy left a mount behind');
  });

  test('read-only places give EROFS naming the path; a stopped container\'s volume paths are refused', async () => {
    const ro = mkdtempSync(join(tmpdir(), 'berth-cp-ro-'));
    try {
      const c = await f.sh('exec sleep 1000', { readonlyRootfs: true, mounts: [{ type: 'bind', source: ro, target: '/ro', readonly: true }] });
      await assert.rejects(c.copyTo(join(host, 'd/a.txt'), '/etc/'), (e) => e instanceof SystemError && e.code === 'EROFS' && /\/etc/.test(e.message));
      await c.start();
      await assert.rejects(c.copyTo(join(host, 'd/a.txt'), '/etc/'), (e) => e instanceof SystemError && e.code === 'EROFS' && /\/etc/.test(e.message));
      await assert.rejects(c.putArchive(buildTar([{ name: 'x', content: 'x' }]), { path: '/ro' }), (e) => e instanceof SystemError && e.code === 'EROFS' && /\/ro/.test(e.message));
      assert.deepEqual(readdirSync(ro), []);
      await c.stop({ timeout: 100 });
      await assert.rejects(c.putArchive(buildTar([{ name: 'x', content: 'x' }]), { path: '/ro' }), (e) => e instanceof UnsupportedError && e.path === '/ro');
    } finally {
      rmSync(ro, { recursive: true, force: true });
    }
  });

  test('a { host: true } container: copies while it runs, a typed refusal while stopped', async () => {
    const c = await f.rt.containers.create({ image: { host: true }, cmd: ['sleep', '1000'] });
    try {
      await assert.rejects(c.copyTo(join(host, 'd/a.txt'), '/tmp/'), UnsupportedError);
      await c.start();
      await c.copyTo(join(host, 'd/a.txt'), '/tmp/');
      assert.equal((await c.exec(['cat', '/tmp/a.txt'])).stdout, 'alpha');
      assert.ok(!existsSync('/tmp/a.txt') || readFileSync('/tmp/a.txt', 'utf8') !== 'alpha' || lstatSync('/tmp/a.txt').mtimeMs / 1000 !== MTIME, "the copy went to the container's /tmp, not the host's");
    } finally {
      await c.remove({ force: true });
    }
  });

  test('a removed container refuses', async () => {
    const c = await f.sh('true');
    await c.remove();
    await assert.rejects(c.statPath('/'), (e) => e instanceof NotFoundError || e instanceof ConflictError);
  });

  test('an unprivileged container refuses device nodes; an unmapped owner is refused in a user namespace', async () => {
    const c = await f.sh('exec sleep 1000', { userns: { uidMap: [{ containerId: 0, hostId: 200000, size: 65536 }], gidMap: [{ containerId: 0, hostId: 200000, size: 65536 }] } });
    await c.start();
    await c.putArchive(buildTar([{ name: 'mapped', content: 'm', uid: 1000, gid: 1000 }]), { path: '/tmp' });
    assert.equal(await sh(c, 'stat -c %u:%g /tmp/mapped'), '1000:1000');
    const pid = (await c.inspect()).State.Pid;
    assert.equal(statSync(`/proc/${pid}/root/tmp/mapped`).uid, 201000, 'the host sees the mapped id');
    await assert.rejects(c.putArchive(buildTar([{ name: 'unmapped', content: 'u', uid: 70000, gid: 0 }]), { path: '/tmp' }), UnsafeArchiveEntryError);
    const out = mkdtempSync(join(tmpdir(), 'berth-cp-out-'));
    try {
      await c.copyFrom('/tmp/mapped', join(out, 'm'), { archive: true });
      assert.equal(statSync(join(out, 'm')).uid, 1000, 'archive mode gives the container\'s id, not the host\'s');
    } finally {
      rmSync(out, { recursive: true, force: true });
    }
    await c.stop({ timeout: 100 });
    assert.equal((await c.statPath('/tmp/mapped')).size, 1);
  });

  test('a stopped container of a multi-layer image: the merged view, whiteouts included', async () => {
    const layout = mkdtempSync(join(tmpdir(), 'berth-cp-layout-'));
    try {
      writeOciLayout(layout, {
        tag: 'layers',
        config: { Env: ['PATH=/bin'] },
        layers: [
          buildTar([
            { name: 'bin/', type: 'dir' },
            { name: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
            ...['sh', 'cat', 'sleep'].map((a) => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
            { name: 'etc/', type: 'dir' },
            { name: 'top', content: 'base' },
          ]),
          buildTar([{ name: 'gone', content: 'deleted above' }, { name: 'top', content: 'middle' }]),
          buildTar([{ name: '.wh.gone', content: '' }, { name: 'top', content: 'upper' }]),
        ],
      });
      const archive = join(layout, '..', `${layout.split('/').pop()}.tar`);
      execFileSync('tar', ['-C', layout, '-cf', archive, '.']);
      const [image] = await f.rt.images.load(archive);
      rmSync(archive, { force: true });
      const c = await f.rt.containers.create({ image: image!.id, cmd: ['sleep', '1000'] });
      try {
        await assert.rejects(c.statPath('/gone'), NotFoundError);
        const tar = await c.getArchive({ path: '/top' });
        const parts: Buffer[] = [];
        for await (const chunk of tar) parts.push(chunk as Buffer);
        assert.ok(Buffer.concat(parts).includes('upper') && !Buffer.concat(parts).includes('middle'));
        await c.copyTo(join(host, 'd/a.txt'), '/gone');
        await c.start();
        assert.equal((await c.exec(['cat', '/gone', '/top'])).stdout, 'alphaupper');
      } finally {
        await c.remove({ force: true });
      }
    } finally {
      rmSync(layout, { recursive: true, force: true });
    }
  });
});
