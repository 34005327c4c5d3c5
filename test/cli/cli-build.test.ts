/**
 * `berth build` against the real kernel, FROM a base image served by a loopback registry: the
 * classic `docker build` lines (steps, RUN output, ` ---> Using cache`, `Successfully built` /
 * `Successfully tagged`), `-q` printing only the id, `--json` events parsed back, `-f` from
 * outside the context, and a failing RUN being exit 1 with the step's exit code and output.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BASE_TAG, buildBaseImage } from '../helpers/build-base-image.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { registryToolsMissing, skopeoPush, startRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { berth } from '../helpers/cli.js';

const skip = kernelSkipReason() || registryToolsMissing();
let registry: TestRegistry | undefined;
let work: { path: string; remove: () => void } | undefined;
let base = '';
let root = '';

before(async () => {
  if (skip) return;
  work = tempDir('berth-cli-build-');
  root = join(work.path, 'state');
  registry = await startRegistry();
  await skopeoPush(await buildBaseImage(work.path), BASE_TAG, registry, 'fixtures/base:1');
  base = `${registry.host}/fixtures/base:1`;
});

after(async () => {
  await registry?.stop();
  work?.remove();
});

function context(name: string, files: Record<string, string>): string {
  const dir = join(work!.path, name);
  mkdirSync(dir, { recursive: true });
  for (const [file, content] of Object.entries(files)) writeFileSync(join(dir, file), content);
  return dir;
}

describe('berth build', { skip }, () => {
  let app = '';
  let id = '';

  it('prints the steps, the RUN output and Docker\'s closing lines; tags the image', async () => {
    app = context('app', { 'a.txt': 'a\n', Dockerfile: `FROM ${base}\nARG WHO\nRUN echo hello-$WHO\nCOPY a.txt /a.txt\n` });
    const r = await berth(root, ['build', '-t', 'app:1', '-t', 'app', '--build-arg', 'WHO=cli', '--label', 'team=cli', app]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.deepEqual(
      lines.filter((l) => l.startsWith('Step ')),
      [`Step 1/4 : FROM ${base}`, 'Step 2/4 : ARG WHO', 'Step 3/4 : RUN echo hello-$WHO', 'Step 4/4 : COPY a.txt /a.txt'],
    );
    assert.equal(lines[lines.indexOf('Step 3/4 : RUN echo hello-$WHO') + 1], 'hello-cli', 'the RUN step\'s output follows its step line');
    assert.ok(!r.stdout.includes('Using cache'), 'a first build has no cached step');
    assert.match(lines.at(-3)!, /^Successfully built [0-9a-f]{12}$/);
    assert.deepEqual(lines.slice(-2), ['Successfully tagged app:1', 'Successfully tagged app:latest']);
    const [doc] = JSON.parse((await berth(root, ['inspect', 'app:1'])).stdout) as Array<{ Id: string; RepoTags: string[]; Config: { Labels?: Record<string, string> } }>;
    id = doc!.Id;
    assert.equal(id.slice(7, 19), lines.at(-3)!.slice(-12));
    assert.deepEqual([...doc!.RepoTags].sort(), ['app:1', 'app:latest']);
    assert.equal(doc!.Config.Labels?.['team'], 'cli');
  });

  it('a second build says " ---> Using cache" under each reused step; -q prints only the id', async () => {
    const r = await berth(root, ['build', '--build-arg', 'WHO=cli', '--label', 'team=cli', app]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^Step 3\/4 : RUN echo hello-\$WHO\n ---> Using cache\nStep 4\/4 : COPY a.txt \/a.txt\n ---> Using cache\n/m);
    assert.ok(!r.stdout.includes('hello-cli\n'), 'a cached RUN does not run again');
    const q = await berth(root, ['build', '-q', '--build-arg', 'WHO=cli', '--label', 'team=cli', app]);
    assert.deepEqual(q, { code: 0, stdout: `${id}\n`, stderr: '' });
  });

  it('--json prints every progress event as a JSON line, then the image', async () => {
    const r = await berth(root, ['build', '--json', '--no-cache', '--build-arg', 'WHO=json', app]);
    assert.equal(r.code, 0, r.stderr);
    const docs = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    const image = docs.pop() as { id: string };
    assert.match(image.id, /^sha256:[0-9a-f]{64}$/);
    assert.notEqual(image.id, id, 'another build arg, another image');
    assert.deepEqual(docs.filter((d) => d['line'] === undefined).map((d) => [d['step'], d['total'], d['cached']]), [[1, 4, false], [2, 4, false], [3, 4, false], [4, 4, false]]);
    assert.deepEqual(docs.filter((d) => d['line'] !== undefined).map((d) => [d['step'], d['line']]), [[3, 'hello-json']]);
  });

  it('-f reads a Dockerfile from outside the context, relative to the current directory', async () => {
    const elsewhere = context('elsewhere', { 'Other.Dockerfile': `FROM ${base}\nRUN cat /a.txt\nCOPY a.txt /b.txt\n` });
    const r = await berth(root, ['build', '-q', '-f', join(elsewhere, 'Other.Dockerfile'), app]);
    assert.equal(r.code, 1, 'the base has no /a.txt: the RUN fails');
    assert.match(r.stderr, /Dockerfile:2:1: RUN cat \/a\.txt exited with code 1/, 'the steps are the other file\'s');
    const missing = await berth(root, ['build', '-f', join(elsewhere, 'Other.Dockerfile').replace('Other', 'Missing'), app]);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^Error: -f: cannot read the Dockerfile .*Missing\.Dockerfile: ENOENT\n$/);
  });

  it('a failing RUN is exit 1 with its location, exit code and last output', async () => {
    const bad = context('bad', { Dockerfile: `FROM ${base}\nRUN echo doomed && exit 3\n` });
    const r = await berth(root, ['build', '-t', 'bad', bad]);
    assert.equal(r.code, 1);
    assert.match(r.stdout, /^Step 2\/2 : RUN echo doomed && exit 3\ndoomed\n$/m);
    assert.ok(!r.stdout.includes('Successfully'), r.stdout);
    assert.match(r.stderr, /^Error: .*Dockerfile:2:1: RUN echo doomed && exit 3 exited with code 3\n {2}doomed\n$/);
    const none = await berth(root, ['inspect', 'bad']);
    assert.equal(none.code, 1, 'nothing is tagged');
  });

  it('a wrong flag or no context is a usage error (125)', async () => {
    assert.equal((await berth(root, ['build'])).code, 125);
    assert.equal((await berth(root, ['build', '--bogus', app])).code, 125);
  });
});
