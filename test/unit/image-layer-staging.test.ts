/**
 * lib/image/layer-staging.ts when the disk fills up mid-layer, on the recording fake of the
 * native contract (passing through to the real confined calls on a temp store): nothing
 * half-written becomes visible in the store, the temp dir is gone, no fd or thread is left.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSystemError } from '../../lib/errors.js';
import { ContentStore } from '../../lib/image/content-store.js';
import { stageLayer } from '../../lib/image/layer-staging.js';
import { native } from '../../lib/native.js';
import { NativeFake } from '../helpers/native-fake.js';
import { buildTar } from '../helpers/tar-builder.js';
import { newFdsSince, openFds, threadCount } from '../helpers/leaks.js';

let dir: string;
before(async () => {
  dir = mkdtempSync(join(tmpdir(), 'berth-staging-'));
  // libuv starts its thread pool on first use: start it now, not during a test that counts threads.
  await stat(dir);
});
after(() => rmSync(dir, { recursive: true, force: true }));

let n = 0;
async function store(fake: NativeFake): Promise<ContentStore> {
  const s = new ContentStore(join(dir, `s${n++}`), { native: fake.binding });
  await s.init();
  return s;
}

const chainId = `sha256:${'c'.repeat(64)}`;
const layer = { digest: `sha256:${'d'.repeat(64)}`, mediaType: 'application/vnd.oci.image.layer.v1.tar', chainId };

/** A layer with directories, small files (the write pool's) and one large, streamed file. */
const tar = buildTar([
  { name: 'etc/', type: 'dir' },
  ...Array.from({ length: 6 }, (_, i) => ({ name: `etc/f${i}`, content: `small ${i}` })),
  { name: 'usr/', type: 'dir' },
  { name: 'usr/big', content: Buffer.alloc(2 * 1024 * 1024, 7) },
  { name: 'usr/after', content: 'after' },
]);

async function* source(): AsyncGenerator<Buffer> {
  yield tar;
}

async function assertNothingVisible(s: ContentStore): Promise<void> {
  assert.equal(await s.hasLayer(chainId), false);
  assert.deepEqual(readdirSync(s.layersDir), [], 'no layer, no metadata');
  assert.deepEqual(readdirSync(s.tmpDir).filter((f) => f.startsWith('layer-')), [], 'the temp dir is removed');
}

for (const [what, member, after] of [
  ['a small file on a write-pool thread', 'fsWritePoolSubmit', 3],
  // Streamed to a pool thread piece by piece: a write failing there is reported at the barrier.
  ['the large file, streamed to a write-pool thread', 'fsWritePoolBarrier', 0],
  ['a directory', 'fsMakeEntry', 1],
] as const) {
  test(`ENOSPC mid-layer at ${what}: a typed error, and nothing of the layer is visible`, async () => {
    const fake = new NativeFake({ delegate: native() }).fail(member, 'ENOSPC', { after, syscall: 'write', ...(member === 'fsWritePoolBarrier' ? { path: 'usr/big' } : {}) });
    const s = await store(fake);
    const fds = openFds();
    const threads = threadCount();
    await assert.rejects(stageLayer(s, layer, source(), []), (e: unknown) => isSystemError(e) && e.code === 'ENOSPC' && (member !== 'fsWritePoolBarrier' || /entry "usr\/big"/.test(e.message)));
    assert.equal(fake.callsOf(member).filter((c) => c.failed).length, 1, 'the failure was injected where intended');
    await assertNothingVisible(s);
    assert.deepEqual(newFdsSince(fds), []);
    assert.ok(threadCount() <= threads, "the write pool's threads are gone");
  });
}

test('without a failure the same layer stages and commits through the fake', async () => {
  const fake = new NativeFake({ delegate: native() });
  const s = await store(fake);
  const staged = await stageLayer(s, layer, source(), []);
  await s.commitLayer(staged.dir, staged.meta);
  assert.equal(await s.hasLayer(chainId), true);
  assert.equal(readFileSync(join(s.layerDir(chainId), 'usr/after'), 'utf8'), 'after');
  assert.ok(fake.callsOf('fsWritePoolSubmit').length > 0 && fake.callsOf('fsSyncAsync').length === 1);
});
