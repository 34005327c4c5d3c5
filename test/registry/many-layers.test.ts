/**
 * An image of 120 layers must run: overlay's mount option string has a page-size limit that
 * 120 layer paths would exceed, so the run path mounts with fsopen + `lowerdir+`. The image is
 * built with the test tar builder, pushed by skopeo to a real registry and pulled, and also
 * loaded from a skopeo docker-archive; both are run for real (root only).
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime } from '../../lib/runtime.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { mountLines } from '../helpers/leaks.js';
import { registryToolsMissing, run, startRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { writeOciLayout } from '../helpers/oci-layout.js';
import { buildTar, type TarEntrySpec } from '../helpers/tar-builder.js';

const LAYERS = 120;
const skip = registryToolsMissing() ?? kernelSkipReason();

let registry: TestRegistry;
let work: { path: string; remove: () => void };
let layout: string;

before(async () => {
  if (skip) return;
  work = tempDir('berth-many-layers-');
  registry = await startRegistry();
  const layers: Buffer[] = [];
  for (let i = 0; i < LAYERS; i++) {
    const entries: TarEntrySpec[] = [];
    if (i === 0) {
      entries.push(
        { name: 'bin/', type: 'dir' },
        { name: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
        ...['sh', 'ls', 'wc', 'cat'].map((a) => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
        { name: 'etc/', type: 'dir' },
        { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
        { name: 'etc/group', content: 'root:x:0:\n' },
        { name: 'layers/', type: 'dir' },
      );
    }
    // Each layer adds its own file and overwrites /top: the top layer must win.
    entries.push({ name: `layers/${String(i).padStart(3, '0')}`, content: `${i}\n` }, { name: 'top', content: `${i}\n` });
    layers.push(buildTar(entries));
  }
  layout = join(work.path, 'layout');
  writeOciLayout(layout, { layers, tag: 'many', config: { Env: ['PATH=/bin'] } });
  await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:many`, `docker://${registry.host}/many/layers:${LAYERS}`]);
});

after(async () => {
  await registry?.stop();
  work?.remove();
});

async function runIn(rt: Runtime, ref: string): Promise<string> {
  const r = await rt.run(ref, ['sh', '-c', 'ls /layers | wc -l; cat /top']);
  assert.equal(r.exitCode, 0, String(r.stderr));
  return String(r.stdout);
}

test(`a ${LAYERS}-layer image pulled from a registry mounts and runs`, { skip }, async () => {
  const mountsBefore = mountLines();
  const root = join(work.path, 'pulled');
  try {
    const rt = await Runtime.open({ root });
    const ref = `${registry.host}/many/layers:${LAYERS}`;
    const img = await rt.images.pull(ref);
    assert.equal(img.layers.length, LAYERS);
    const { lowerDirs } = await rt.images.rootfsFor(ref);
    assert.ok(lowerDirs.join(':').length > 4096, 'longer than an overlay option page');
    assert.equal(await runIn(rt, ref), `${LAYERS}\n${LAYERS - 1}\n`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
  assert.deepEqual(mountLines(), mountsBefore, 'no mount left behind');
});

test(`a ${LAYERS}-layer image loaded from a docker-archive mounts and runs`, { skip }, async () => {
  const root = join(work.path, 'loaded');
  const archive = join(work.path, 'many.tar');
  try {
    await run('skopeo', ['copy', '--quiet', `oci:${layout}:many`, `docker-archive:${archive}:localhost/many:${LAYERS}`]);
    const rt = await Runtime.open({ root });
    const [img] = await rt.images.load(archive);
    assert.equal(img!.layers.length, LAYERS);
    assert.deepEqual(img!.repoTags, [`localhost/many:${LAYERS}`]);
    assert.equal(await runIn(rt, `localhost/many:${LAYERS}`), `${LAYERS}\n${LAYERS - 1}\n`);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
});
