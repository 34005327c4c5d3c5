/**
 * `rt.spawn()` from an image reference, as `rt.run()` takes it: pulled on first use (here from
 * an in-process registry on 127.0.0.1), Docker's Cmd/Env rules, the image's anonymous
 * volume living as long as the sandbox, named volumes kept; and `rt.run()` still giving the
 * same through the same path.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime } from '../../lib/index.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { readAll } from '../helpers/spawn-sh.js';
import { addImage, publish, startFakeRegistry, type FakeRegistry } from '../helpers/fake-registry.js';
import { settledDiff, snapshot } from '../helpers/leaks.js';
import { buildTar } from '../helpers/tar-builder.js';

const skip = kernelSkipReason();

describe('rt.spawn() from an image', { skip, timeout: 120_000 }, () => {
  let registry: FakeRegistry;
  let root: string;
  let rt: Runtime;
  let ref: string;

  before(async () => {
    registry = await startFakeRegistry();
    const layer = buildTar([
      { name: 'bin/', type: 'dir' },
      { name: 'bin/busybox', content: readFileSync('/bin/busybox'), mode: 0o755 },
      ...['sh', 'cat', 'echo', 'ls', 'mount', 'grep'].map((a) => ({ name: `bin/${a}`, type: 'symlink' as const, linkname: 'busybox' })),
      { name: 'etc/', type: 'dir' },
      { name: 'etc/passwd', content: 'root:x:0:0:root:/root:/bin/sh\n' },
      { name: 'etc/group', content: 'root:x:0:\n' },
      { name: 'data/', type: 'dir' },
      { name: 'data/from-image', content: 'seeded\n' },
    ]);
    const img = addImage(registry, {
      layers: [layer],
      architecture: process.arch === 'arm64' ? 'arm64' : 'amd64',
      config: {
        config: { Env: ['PATH=/bin', 'GREETING=from-image'], Cmd: ['sh', '-c', 'echo "default $GREETING"'], Volumes: { '/data': {} } },
      },
    });
    ref = `${registry.host}/spawn/busybox:1`;
    publish(registry, 'spawn/busybox:1', img.manifest, img.mediaType);
    root = mkdtempSync(join(tmpdir(), 'berth-spawn-rt-'));
    rt = await Runtime.open({ root });
  });

  after(async () => {
    await registry?.stop();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('pulls a missing image, streams stdin through, applies the image Env; its anonymous volume goes with it', async () => {
    const before = snapshot();
    const sb = rt.spawn(ref, ['sh', '-c', 'echo "$GREETING"; cat /data/from-image; cat'], { timeout: 60_000 });
    try {
      const out = readAll(sb.stdout);
      // Written before the pull finished: delivered once the container exists.
      sb.stdin!.end('piped\n');
      const info = await sb.exited;
      assert.equal(info.exitCode, 0, await readAll(sb.stderr));
      assert.equal(await out, 'from-image\nseeded\npiped\n');
    } finally {
      await sb[Symbol.asyncDispose]();
    }
    assert.ok(await rt.images.get(ref), 'the image was pulled into this runtime');
    assert.deepEqual((await rt.volumes.list()).map((v) => v.name), [], "the image's anonymous volume lived as long as the sandbox");
    const d = await settledDiff(before);
    assert.deepEqual(d.cgroups, []);
    assert.deepEqual(d.mounts, []);
    assert.deepEqual(d.children, []);
    assert.deepEqual(d.fds, [], 'fds left');
  });

  test("without a cmd the image's Cmd runs; a named volume outlives the sandbox", async () => {
    const first = rt.spawn(ref, null, { stdin: 'ignore' });
    assert.equal(await readAll(first.stdout), 'default from-image\n');
    await first.exited;

    const writer = rt.spawn(ref, ['sh', '-c', 'echo kept > /v/file'], { stdin: 'ignore', mounts: [{ type: 'volume', source: 'spawn-kept', target: '/v' }] });
    assert.equal((await writer.exited).exitCode, 0);
    const reader = rt.spawn(ref, ['cat', '/v/file'], { stdin: 'ignore', mounts: [{ type: 'volume', source: 'spawn-kept', target: '/v' }] });
    const [text, info] = await Promise.all([readAll(reader.stdout), reader.exited]);
    assert.equal(info.exitCode, 0);
    assert.equal(text, 'kept\n');
    await rt.volumes.remove('spawn-kept');
  });

  test('rt.run() is the same path read to its end', async () => {
    const r = await rt.run(ref, ['sh', '-c', 'echo "$GREETING"; cat'], { stdin: 'x\n' });
    assert.equal(r.exitCode, 0);
    assert.equal(r.stdout, 'from-image\nx\n');
    assert.equal(r.truncated, false);
  });
});
