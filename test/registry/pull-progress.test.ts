/**
 * Pull progress from a real registry (Debian's docker-registry, fed by skopeo): a multi-MB
 * layer gives byte-count events at most 10 times a second, plus every state change and the
 * final count, so a progress bar needs no throttling. (Before: one event per 64 KiB chunk.)
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { ImageService, type PullProgress } from '../../lib/image/image-service.js';
import { PROGRESS_INTERVAL_MS } from '../../lib/image/pull-progress.js';
import { registryToolsMissing, run, startRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { writeOciLayout } from '../helpers/oci-layout.js';
import { buildTar } from '../helpers/tar-builder.js';

const skip = registryToolsMissing();
const BIG = 24 * 1024 * 1024;

let registry: TestRegistry;
let work: { path: string; remove: () => void };
let ref: string;

before(async () => {
  if (skip) return;
  work = tempDir('berth-pull-progress-');
  registry = await startRegistry();
  // Random bytes: incompressible, so the blob on the wire is as big as the file.
  const layers = [buildTar([{ name: 'small', content: 'a small layer\n' }]), buildTar([{ name: 'big.bin', content: randomBytes(BIG) }])];
  const layout = join(work.path, 'layout');
  writeOciLayout(layout, { layers, tag: 'big' });
  ref = `${registry.host}/progress/big:1`;
  await run('skopeo', ['copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:big`, `docker://${ref}`]);
});

after(async () => {
  await registry?.stop();
  work?.remove();
});

test('a 24 MiB layer: byte counts at most 10 a second, every state change, the final count', { skip }, async (t) => {
  const svc = new ImageService(join(work.path, 'state'));
  const events: Array<PullProgress & { at: number }> = [];
  const task = svc.pull(ref, { onProgress: (e) => events.push({ ...e, at: performance.now() }) });
  let emitted = 0;
  task.on('progress', () => emitted++);
  const img = await task;
  assert.equal(emitted, events.length, 'the task\'s events are the same, coalesced the same way');
  const bigIndex = img.layers.findIndex((l) => l.size >= BIG);
  assert.ok(bigIndex >= 0);
  const big = events.filter((e) => e.index === bigIndex);
  const states = big.map((e) => e.state).filter((s, i, all) => i === 0 || all[i - 1] !== s);
  assert.deepEqual(states, ['waiting', 'downloading', 'verifying', 'extracting', 'done']);
  const downloading = big.filter((e) => e.state === 'downloading');
  assert.equal(downloading.at(-1)!.bytesDone, downloading.at(-1)!.bytesTotal, 'the final count is reported');
  // At most one count per interval after the state's first event, plus that event and the final count.
  const span = downloading.at(-1)!.at - downloading[0]!.at;
  const bound = Math.floor(span / PROGRESS_INTERVAL_MS) + 2;
  t.diagnostic(`${big.length} events for the ${BIG} B layer (${downloading.length} while downloading over ${span.toFixed(0)} ms; one per 64 KiB chunk would be ${BIG / 65536}); ${events.length} in all`);
  assert.ok(downloading.length <= bound, `${downloading.length} downloading events in ${span.toFixed(0)} ms (at most ${bound})`);
  for (let i = 1; i < downloading.length - 1; i++) {
    assert.ok(downloading[i]!.bytesDone >= downloading[i - 1]!.bytesDone, 'counts only grow');
  }
  const last = events.at(-1)!;
  assert.equal(last.total.bytesDone, last.total.bytesTotal);
  assert.equal(last.total.layersDone, img.layers.length);
});
