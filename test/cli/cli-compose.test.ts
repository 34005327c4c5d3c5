/**
 * `berth compose` against the real kernel, each command its own process as a shell would run
 * it: `up` of a two-service stack (images from a loopback registry), `ps` as `docker compose
 * ps`'s table and as JSON, `logs` with compose's `name  | line` prefix (followed until the
 * one-shot service stops), `down` removing everything, and the errors: an unknown service is
 * exit 1 naming it, an unknown subcommand or flag is 125.
 *
 * Takes `flock /tmp/berth-net-tests.lock` (compose may create the project's network).
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { BASE_TAG, buildBaseImage } from '../helpers/build-base-image.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { registryToolsMissing, skopeoPush, startRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { berth, readTable } from '../helpers/cli.js';

const skip = kernelSkipReason() || registryToolsMissing();
let registry: TestRegistry | undefined;
let work: { path: string; remove: () => void } | undefined;
let root = '';
let file = '';

const PS_HEADERS = ['NAME', 'IMAGE', 'COMMAND', 'SERVICE', 'CREATED', 'STATUS', 'PORTS'];

before(async () => {
  if (skip) return;
  work = tempDir('berth-cli-compose-');
  root = join(work.path, 'state');
  registry = await startRegistry();
  await skopeoPush(await buildBaseImage(work.path), BASE_TAG, registry, 'fixtures/base:1');
  const dir = join(work.path, 'project');
  mkdirSync(dir);
  file = join(dir, 'stack.yaml');
  writeFileSync(
    file,
    `name: clitest
services:
  app:
    image: ${registry.host}/fixtures/base:1
    command: ["sh", "-c", "echo app says hi; exec sleep 1000"]
    network_mode: none
  job:
    image: ${registry.host}/fixtures/base:1
    command: ["sh", "-c", "echo job line 1; echo job line 2"]
    network_mode: none
`,
  );
});

after(async () => {
  // A failed test must not leave the stack's containers behind.
  if (root && file) await berth(root, ['compose', '-f', file, 'down', '-t', '0']);
  await registry?.stop();
  work?.remove();
});

describe('berth compose up, ps, logs, down', { skip }, () => {
  it('up starts every service and prints each container', async () => {
    const r = await berth(root, ['compose', '-f', file, 'up', '-d']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.equal(lines.length, 2, r.stdout);
    assert.match(lines[0]!, /^ Container clitest-app-1 {2}Running$/);
    assert.match(lines[1]!, /^ Container clitest-job-1 {2}(Running|Exited)$/);
  });

  it('logs -f SERVICE follows the one-shot job until it stops, each line after its container name', async () => {
    const r = await berth(root, ['compose', '-f', file, 'logs', '-f', 'job']);
    assert.deepEqual(r, { code: 0, stdout: 'clitest-job-1  | job line 1\nclitest-job-1  | job line 2\n', stderr: '' });
  });

  it("ps prints docker compose ps's columns for running containers, -a all, --json parses back", async () => {
    const rows = readTable((await berth(root, ['compose', '-f', file, 'ps'])).stdout, PS_HEADERS);
    assert.deepEqual(rows.map((r) => [r['NAME'], r['SERVICE']]), [['clitest-app-1', 'app']]);
    assert.equal(rows[0]!['IMAGE'], `${registry!.host}/fixtures/base:1`);
    assert.match(rows[0]!['STATUS']!, /^Up /);
    assert.equal(rows[0]!['COMMAND'], '"sh -c "echo app say…"');
    const all = readTable((await berth(root, ['compose', '-f', file, 'ps', '-a'])).stdout, PS_HEADERS);
    assert.deepEqual(all.map((r) => r['SERVICE']), ['app', 'job']);
    assert.match(all[1]!['STATUS']!, /^Exited \(0\)/);
    const json = await berth(root, ['compose', '-f', file, 'ps', '-a', '--json']);
    const docs = JSON.parse(json.stdout) as Array<{ service: string; number: number; State: string }>;
    assert.deepEqual(docs.map((d) => [d.service, d.number, d.State]), [['app', 1, 'running'], ['job', 1, 'exited']]);
  });

  it('logs of all services, and --json lines', async () => {
    const r = await berth(root, ['compose', '-f', file, 'logs']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trimEnd().split('\n').sort(), ['clitest-app-1  | app says hi', 'clitest-job-1  | job line 1', 'clitest-job-1  | job line 2']);
    const j = await berth(root, ['compose', '-f', file, 'logs', '--json', 'app']);
    const entries = j.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { service: string; container: string; text: string });
    assert.deepEqual(entries.map((e) => [e.service, e.container, e.text]), [['app', 'clitest-app-1', 'app says hi\n']]);
  });

  it('an unknown service is exit 1 naming it; an unknown subcommand or flag is 125', async () => {
    const r = await berth(root, ['compose', '-f', file, 'up', 'nosuch']);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^Error: SERVICE: no service named "nosuch" in project clitest\n$/);
    assert.equal((await berth(root, ['compose', '-f', file, 'restart'])).code, 125);
    assert.equal((await berth(root, ['compose', '-f', file, 'down', '--bogus'])).code, 125);
    const missing = await berth(root, ['compose', '-f', join(work!.path, 'none.yaml'), 'ps']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /none\.yaml/);
  });

  it('down stops and removes every container of the stack', async () => {
    const r = await berth(root, ['compose', '-f', file, 'down', '-t', '0']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.trimEnd().split('\n').sort(), [' Container clitest-app-1  Removed', ' Container clitest-job-1  Removed']);
    assert.deepEqual(readTable((await berth(root, ['compose', '-f', file, 'ps', '-a'])).stdout, PS_HEADERS), []);
    assert.deepEqual(JSON.parse((await berth(root, ['ps', '-a', '--json'])).stdout), []);
  });
});
