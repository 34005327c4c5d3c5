/**
 * `images.unpack(ref, dest)` writes an image's files onto the host (issue 10, item 11). An
 * image with a block device (the host's disk, 8:0) and a setuid-root shell must not hand
 * either to another host user: `dest` is 0700 (as umoci makes it), device nodes are skipped
 * unless `devices: true`, and a `dest` someone else owns is refused.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { chmodSync, chownSync, copyFileSync, lstatSync, mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ImageService } from '../../lib/image/image-service.js';
import { isBerthError, ValidationError } from '../../lib/errors.js';
import { tempDir } from '../helpers/registry.js';
import { buildTar } from '../helpers/tar-builder.js';

const NOBODY = 65534;
let work: { path: string; remove: () => void };
let svc: ImageService;
const REF = 'localhost/hostile-unpack:1';

before(async () => {
  work = tempDir('berth-unpack-dest-');
  // Reachable by every host user, like a home or project directory: only dest's own mode
  // stands between another user and the image's files.
  chmodSync(work.path, 0o755);
  svc = new ImageService(join(work.path, 'state'));
  const tarPath = join(work.path, 'rootfs.tar');
  writeFileSync(tarPath, buildTar([
    { name: 'dev/', type: 'dir' },
    { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0, mode: 0o666 },
    { name: 'dev/mem', type: 'char', devmajor: 1, devminor: 1, mode: 0o666 },
    { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 },
    { name: 'dev/alias', type: 'link', linkname: 'dev/sda' },
    { name: 'run/', type: 'dir' },
    { name: 'run/fifo', type: 'fifo', mode: 0o644 },
    { name: 'bin/', type: 'dir' },
    { name: 'bin/rootshell', content: '#!/bin/sh\nexec /bin/sh -p\n', mode: 0o4755, uid: 0, gid: 0 },
    { name: 'etc/', type: 'dir' },
    { name: 'etc/motd', content: 'hello\n' },
  ]));
  await svc.import(tarPath, { ref: REF });
});
after(() => work?.remove());

let n = 0;
const dest = () => join(work.path, `dest-${n++}`);

function types(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  const walk = (rel: string) => {
    for (const name of readdirSync(join(dir, rel)).sort()) {
      const path = rel === '' ? name : `${rel}/${name}`;
      const st = lstatSync(join(dir, path));
      const type = st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isBlockDevice() ? 'block' : st.isCharacterDevice() ? 'char' : st.isFIFO() ? 'fifo' : 'other';
      out.set(path, type);
      if (type === 'dir') walk(path);
    }
  };
  walk('');
  return out;
}

/** What another host user (nobody) gets when it tries to open `path`: 'ok' or the errno code. */
function openAsNobody(path: string): string {
  const r = spawnSync(process.execPath, ['-e', `try { require('fs').closeSync(require('fs').openSync(${JSON.stringify(path)}, 'r')); console.log('ok'); } catch (e) { console.log(e.code); }`], { uid: NOBODY, gid: NOBODY, encoding: 'utf8' });
  return r.stdout.trim();
}

test('unpack: dest is created 0700, devices are skipped, the setuid file keeps its bits', async () => {
  const d = dest();
  await svc.unpack(REF, d);
  assert.equal(lstatSync(d).mode & 0o7777, 0o700, 'dest mode');
  const tree = types(d);
  const devices = [...tree].filter(([, t]) => t === 'block' || t === 'char').map(([p]) => p);
  assert.deepEqual(devices, [], 'no device node on the host');
  assert.ok(!tree.has('dev/alias'), 'a hard link to a skipped device is skipped too');
  assert.equal(tree.get('run/fifo'), 'fifo');
  assert.equal(tree.get('etc/motd'), 'file');
  const su = lstatSync(join(d, 'bin/rootshell'));
  assert.equal(su.mode & 0o7777, 0o4755, 'setuid bit as in the image');
  assert.equal(su.uid, 0);
  // The attack: another host user reaching the image's setuid-root file (or a device) below dest.
  assert.equal(openAsNobody(join(d, 'bin/rootshell')), 'EACCES');
  assert.equal(openAsNobody(join(d, 'etc/motd')), 'EACCES');
});

test('unpack: { devices: true } creates the device nodes, still under a 0700 dest', async () => {
  const d = dest();
  await svc.unpack(REF, d, { devices: true });
  assert.equal(lstatSync(d).mode & 0o7777, 0o700);
  const sda = lstatSync(join(d, 'dev/sda'));
  assert.ok(sda.isBlockDevice());
  assert.equal(sda.rdev, (8 << 8) | 0);
  assert.ok(lstatSync(join(d, 'dev/null')).isCharacterDevice());
  assert.equal(lstatSync(join(d, 'dev/alias')).ino, sda.ino);
  assert.equal(openAsNobody(join(d, 'dev/sda')), 'EACCES');
});

test('unpack: an existing empty dest at 0755 is tightened to 0700', async () => {
  const d = dest();
  mkdirSync(d, { mode: 0o755 });
  chmodSync(d, 0o755);
  await svc.unpack(REF, d);
  assert.equal(lstatSync(d).mode & 0o7777, 0o700);
  assert.equal(openAsNobody(join(d, 'bin/rootshell')), 'EACCES');
});

test('unpack: a dest owned by another user is refused (it could reopen it to others at will)', async () => {
  const d = dest();
  mkdirSync(d, { mode: 0o700 });
  chownSync(d, NOBODY, NOBODY);
  await assert.rejects(svc.unpack(REF, d), (e: unknown) => e instanceof ValidationError && e.option === 'destDir' && /belongs to uid 65534/.test(e.message));
  assert.deepEqual(readdirSync(d), []);
});

test('unpack: a non-empty dest is refused and its mode left alone', async () => {
  const d = dest();
  mkdirSync(d, { mode: 0o755 });
  chmodSync(d, 0o755);
  copyFileSync(join(work.path, 'rootfs.tar'), join(d, 'keep'));
  await assert.rejects(svc.unpack(REF, d), (e: unknown) => isBerthError(e) && /not empty/.test(e.message));
  assert.equal(lstatSync(d).mode & 0o7777, 0o755);
});

test('unpack: devices must be a boolean', async () => {
  await assert.rejects(svc.unpack(REF, dest(), { devices: 'yes' as unknown as boolean }), (e: unknown) => e instanceof ValidationError && e.option === 'devices');
});
