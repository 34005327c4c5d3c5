/**
 * The applier options a rootless unpack uses (lib/rootless/userns-worker.ts): the opaque
 * marker's spelling, devices made as whiteouts in layer mode, and owners past the id map
 * refused with the entry named. Run against a real directory (the kernel, no namespace needed:
 * the user xattr and the 0/0 whiteout are what an unprivileged user may make too).
 */
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { closeSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LayerApplier, applyLayer, type ApplierOptions } from '../../lib/image/unpack.js';
import { fsOps } from '../../lib/image/fs-ops.js';
import { isBerthError } from '../../lib/errors.js';
import { buildTar } from '../helpers/tar-builder.js';
import { xattrNames } from '../helpers/xattr-names.js';

let work: string;
before(() => {
  work = mkdtempSync(join(tmpdir(), 'berth-unpack-userns-'));
});
after(() => rmSync(work, { recursive: true, force: true }));

let n = 0;
async function apply(tar: Buffer, options: ApplierOptions): Promise<string> {
  const dir = join(work, `d${n++}`);
  mkdirSync(dir);
  const fs = fsOps();
  const root = fs.fsOpenRoot(dir);
  try {
    const applier = new LayerApplier(root, 'layer', 'sha256:t', fs, options);
    try {
      await applyLayer([tar], applier, { layer: 'sha256:t', compression: 'none' });
      applier.resolveAgainstLowers([]);
      applier.finish();
    } finally {
      applier.abort();
    }
  } finally {
    closeSync(root);
  }
  return dir;
}

test("opaqueXattr: a rootless layer marks opaque dirs with user.overlay.opaque, never trusted's", async () => {
  const dir = await apply(buildTar([{ name: 'd/', type: 'dir', mode: 0o755 }, { name: 'd/.wh..wh..opq', content: '' }, { name: 'd/f', content: 'x' }]), { opaqueXattr: 'user.overlay.opaque' });
  assert.deepEqual(xattrNames(dir, 'd').filter((x) => x.includes('overlay')), ['user.overlay.opaque']);
  const root = await apply(buildTar([{ name: 'd/', type: 'dir', mode: 0o755 }, { name: 'd/.wh..wh..opq', content: '' }]), {});
  assert.deepEqual(xattrNames(root, 'd').filter((x) => x.includes('overlay')), ['trusted.overlay.opaque']);
});

test('devices: false in layer mode: a device becomes a whiteout, which hides the lower entry as the device would', async () => {
  const dir = await apply(buildTar([{ name: 'dev/', type: 'dir', mode: 0o755 }, { name: 'dev/sda', type: 'block', devmajor: 8, devminor: 0, mode: 0o660 }, { name: 'dev/null', type: 'char', devmajor: 1, devminor: 3, mode: 0o666 }, { name: 'dev/fifo', type: 'fifo', mode: 0o600 }]), { devices: false });
  for (const d of ['sda', 'null']) {
    const st = lstatSync(join(dir, 'dev', d));
    assert.ok(st.isCharacterDevice() && st.rdev === 0, `${d} is a 0/0 whiteout`);
  }
  assert.ok(lstatSync(join(dir, 'dev/fifo')).isFIFO());
});

test('idLimit: an owner past the map is refused naming the layer, the entry, the owner and the fix; one inside is written', async () => {
  await assert.rejects(apply(buildTar([{ name: 'srv/', type: 'dir', mode: 0o755 }, { name: 'srv/owned', content: 'x', uid: 33, gid: 33 }]), { idLimit: 1 }), (e: unknown) => {
    assert.ok(isBerthError(e));
    assert.equal(e.code, 'ERR_UNSUPPORTED');
    assert.match(e.message, /^layer sha256:t: entry "srv\/owned" is owned by 33:33, which cannot exist without root: only root exists in a single-id map/);
    assert.match(e.message, /usermod --add-subuids/);
    return true;
  });
  await assert.rejects(apply(buildTar([{ name: 'big', content: 'x', uid: 0, gid: 70000 }]), { idLimit: 65536 }), /owned by 0:70000.*maps container ids 0\.\.65535/);
  const ok = await apply(buildTar([{ name: 'nobody', content: 'x', uid: 65534, gid: 65534 }]), { idLimit: 65536 });
  assert.deepEqual(readdirSync(ok), ['nobody']);
  assert.equal(lstatSync(join(ok, 'nobody')).uid, 65534);
});
