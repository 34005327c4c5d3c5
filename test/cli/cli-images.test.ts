/**
 * The `berth` CLI's image verbs against a real registry on 127.0.0.1 (`docker-registry`, fed by
 * `skopeo`): `pull` with plain progress lines (stdout is a pipe here), `images` as Docker's table
 * and as JSON, `inspect` of an image, `run` of it, `rmi` with Docker's `Untagged:`/`Deleted:`.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { serveFixtureImage } from '../helpers/fixture-registry.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { registryToolsMissing, tempDir, type TestRegistry } from '../helpers/registry.js';
import { CLI_BIN, REPO, berth, readTable } from '../helpers/cli.js';

const skip = kernelSkipReason() || registryToolsMissing();
let registry: TestRegistry | undefined;
let work: { path: string; remove: () => void } | undefined;
let ref = '';
let root = '';

before(async () => {
  if (skip) return;
  work = tempDir('berth-cli-images-');
  root = `${work.path}/state`;
  ({ registry, ref } = await serveFixtureImage(work.path, { extraLayers: 1 }));
});

after(async () => {
  await registry?.stop();
  work?.remove();
});

const IMAGE_HEADERS = ['REPOSITORY', 'TAG', 'IMAGE ID', 'CREATED', 'SIZE'];

describe('berth pull, images, inspect, run, rmi', { skip }, () => {
  it('pull prints a line per layer state, the digest, the status and the reference', async () => {
    const r = await berth(root, ['pull', ref]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    const layerLines = lines.filter((l) => /^[0-9a-f]{12}: /.test(l));
    assert.ok(layerLines.some((l) => l.endsWith(': Downloading')), r.stdout);
    const layers = new Set(layerLines.map((l) => l.slice(0, 12)));
    assert.ok(layers.size > 1, 'the fixture has several layers');
    assert.equal(layerLines.filter((l) => l.endsWith(': Pull complete')).length, layers.size, 'every layer completes once');
    assert.ok(!r.stdout.includes('\x1b['), 'no cursor movements when stdout is not a terminal');
    assert.match(lines.at(-3)!, /^Digest: sha256:[0-9a-f]{64}$/);
    assert.equal(lines.at(-2), `Status: Downloaded newer image for ${ref}`);
    assert.equal(lines.at(-1), ref);

    const again = await berth(root, ['pull', ref]);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /Status: Image is up to date for /);
  });

  it('images prints Docker columns, and --json the image objects', async () => {
    const rows = readTable((await berth(root, ['images'])).stdout, IMAGE_HEADERS);
    assert.equal(rows.length, 1);
    assert.equal(rows[0]!['REPOSITORY'], `${registry!.host}/fixtures/busybox`);
    assert.equal(rows[0]!['TAG'], '1');
    assert.match(rows[0]!['IMAGE ID']!, /^[0-9a-f]{12}$/);
    assert.match(rows[0]!['SIZE']!, /^\d+(\.\d+)?(B|kB|MB)$/);
    const [doc] = JSON.parse((await berth(root, ['images', '--json'])).stdout) as Array<{ id: string; repoTags: string[] }>;
    assert.deepEqual(doc?.repoTags, [ref]);
    assert.equal(doc?.id.slice(7, 19), rows[0]!['IMAGE ID']);
  });

  it('inspect finds the image by reference', async () => {
    const r = await berth(root, ['inspect', ref]);
    assert.equal(r.code, 0, r.stderr);
    const [doc] = JSON.parse(r.stdout) as Array<{ Id: string; RepoTags: string[] }>;
    assert.deepEqual(doc?.RepoTags, [ref]);
    assert.match(doc!.Id, /^sha256:/);
  });

  it('runs the image; rmi untags and deletes it, and exits 1 for an image it does not have', async () => {
    const run = await berth(root, ['run', '--name', 'fromimage', ref, 'sh', '-c', 'id -u; exit 6']);
    assert.deepEqual(run, { code: 6, stdout: '0\n', stderr: '' });
    assert.equal((await berth(root, ['rm', 'fromimage'])).code, 0);
    const r = await berth(root, ['rmi', ref]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, new RegExp(`^Untagged: ${ref.replace(/[.]/g, '\\.')}$`, 'm'));
    assert.match(r.stdout, /^Deleted: sha256:[0-9a-f]{64}$/m);
    assert.deepEqual(readTable((await berth(root, ['images'])).stdout, IMAGE_HEADERS), []);
    const missing = await berth(root, ['rmi', ref]);
    assert.equal(missing.code, 1);
  });

  it('pull on a terminal redraws one line per layer in place', { skip: !existsSync('/usr/bin/script') && 'needs script(1) (util-linux) for a pseudo-terminal' }, async () => {
    // script(1) gives the CLI a pseudo-terminal as stdout; its own output is what the terminal got.
    const command = [process.execPath, '--import', 'tsx', CLI_BIN, '--root', root, 'pull', ref].map((a) => `'${a}'`).join(' ');
    const r = spawnSync('/usr/bin/script', ['-qec', command, '/dev/null'], { cwd: REPO, encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, `${r.stdout}${r.stderr}`);
    assert.match(r.stdout, /\r\x1b\[2K[0-9a-f]{12}: Pull complete/, 'lines are cleared and rewritten');
    assert.match(r.stdout, /\x1b\[\d+A/, 'the cursor goes back up to redraw the block');
    assert.match(r.stdout, new RegExp(`Status: Downloaded newer image for ${ref.replace(/[.]/g, '\\.')}`));
  });
});
