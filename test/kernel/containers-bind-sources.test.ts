/**
 * A missing bind source is reported by `containers.create()` (Docker's `--mount type=bind`
 * rule), naming the mount and the path, and nothing is created; a source that disappears
 * between create and start is still reported by `start()`.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { NotFoundError, isBerthError } from '../../lib/errors.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { openFixture, type Fixture } from '../helpers/containers-fixture.js';

const skip = kernelSkipReason();

describe('containers: bind sources checked at create', { skip }, () => {
  let f: Fixture;
  let dir: string;
  before(async () => {
    f = await openFixture();
    dir = mkdtempSync(join(tmpdir(), 'berth-binds-'));
  });
  after(async () => {
    await f.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test('create() rejects a missing source with a NotFoundError naming mounts[i].source, the target and the path', async () => {
    mkdirSync(join(dir, 'present'));
    const missing = join(dir, 'absent', 'data');
    await assert.rejects(
      f.sh('true', { name: 'bind-missing', mounts: [{ type: 'bind', source: join(dir, 'present'), target: '/ok' }, { type: 'bind', source: missing, target: '/data' }] }),
      (e: unknown) => isBerthError(e) && e instanceof NotFoundError && e.option === 'mounts[1].source' && e.path === missing && e.message.includes('/data') && e.message.includes(missing),
    );
    assert.deepEqual((await f.rt.containers.list({ all: true, filters: { name: 'bind-missing' } })).length, 0, 'nothing was created');
  });

  test('an existing source is accepted; one removed before start() is still reported by start()', async () => {
    const file = join(dir, 'config.txt');
    writeFileSync(file, 'from the host\n');
    const c = await f.sh('cat /etc/app.conf', { mounts: [{ type: 'bind', source: file, target: '/etc/app.conf', readonly: true }] });
    await c.start();
    assert.equal((await c.wait()).exitCode, 0);
    rmSync(file);
    await assert.rejects(c.start(), (e: unknown) => isBerthError(e) && e instanceof NotFoundError && e.path === file);
  });
});
