/**
 * The `docker cp` extractor against a temp dir through the real confined operations, with
 * faults injected by the recording fake: whatever fails, no half-written file and no
 * temporary name is left where the copy was going.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { native } from '../../lib/native.js';
import { TarReader } from '../../lib/image/tar-reader.js';
import { ArchiveExtractor, type ExtractOptions } from '../../lib/containers/archive-extract.js';
import { ArchiveConflictError, UnsafeArchiveEntryError } from '../../lib/containers/archive-errors.js';
import { SystemError } from '../../lib/errors.js';
import { NativeFake } from '../helpers/native-fake.js';
import { buildTar, type TarEntrySpec } from '../helpers/tar-builder.js';

const options: ExtractOptions = {
  where: 'test',
  owner: (uid, gid) => ({ uid, gid }),
  devices: 'refuse',
  keepXattr: () => true,
  stripSetId: false,
};

let skip: string | false = false;
try {
  native();
} catch {
  skip = 'the native addon is not built';
}

describe('ArchiveExtractor', { skip }, () => {
  let dir: string;
  let n = 0;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), 'berth-extract-'));
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  function extract(entries: TarEntrySpec[], fake = new NativeFake({ delegate: native() }), opts: Partial<ExtractOptions> = {}): string {
    const dest = join(dir, `d${n++}`);
    mkdirSync(dest);
    writeFileSync(join(dest, 'existing.txt'), 'whole');
    const fs = fake.binding;
    const root = fs.fsOpenRoot(dest);
    const x = new ArchiveExtractor(fs, root, { ...options, ...opts });
    try {
      const reader = new TarReader(x);
      reader.write(buildTar(entries));
      reader.end();
      x.finish();
    } catch (error) {
      x.abort();
      throw Object.assign(error as Error, { dest });
    } finally {
      fs.fsCloseRoot(root);
    }
    return dest;
  }

  function destOf(error: unknown): string {
    return (error as { dest: string }).dest;
  }

  test('writes files under a temporary name and renames them into place', () => {
    const fake = new NativeFake({ delegate: native() });
    const dest = extract([{ name: 'existing.txt', content: 'replaced', mode: 0o600, mtime: 1_500_000_000 }], fake);
    assert.equal(readFileSync(join(dest, 'existing.txt'), 'utf8'), 'replaced');
    assert.equal(statSync(join(dest, 'existing.txt')).mode & 0o777, 0o600);
    assert.equal(statSync(join(dest, 'existing.txt')).mtimeMs, 1_500_000_000_000);
    const made = fake.callsOf('fsMakeEntry').map((c) => (c.args[1] as { path: string }).path);
    assert.match(made[0]!, /^\.berth-cp-[0-9a-f]+-0$/);
    assert.deepEqual(fake.callsOf('fsRenameAt')[0]!.args.slice(1), [made[0], 'existing.txt']);
  });

  for (const [member, after] of [['fsFinishFile', 0], ['fsRenameAt', 0]] as const) {
    test(`a failing ${member} leaves the old file whole and no temporary name`, () => {
      const fake = new NativeFake({ delegate: native() });
      fake.fail(member, 'ENOSPC', { after });
      assert.throws(
        () => extract([{ name: 'existing.txt', content: 'new content' }], fake),
        (e: unknown) => {
          assert.ok(e instanceof SystemError && e.code === 'ENOSPC', String(e));
          const dest = destOf(e);
          assert.deepEqual(readdirSync(dest), ['existing.txt']);
          assert.equal(readFileSync(join(dest, 'existing.txt'), 'utf8'), 'whole');
          return true;
        },
      );
    });
  }

  test('an archive cut inside a file removes the temporary name', () => {
    const fake = new NativeFake({ delegate: native() });
    const dest = join(dir, 'cut');
    mkdirSync(dest);
    const root = fake.binding.fsOpenRoot(dest);
    const x = new ArchiveExtractor(fake.binding, root, options);
    const reader = new TarReader(x);
    const tar = buildTar([{ name: 'big', content: Buffer.alloc(100_000, 1) }]);
    reader.write(tar.subarray(0, 50_000));
    assert.throws(() => reader.end());
    x.abort();
    fake.binding.fsCloseRoot(root);
    assert.deepEqual(readdirSync(dest), []);
  });

  test('refuses entries that leave the destination or pass a symlink', () => {
    const outside = join(dir, 'outside');
    mkdirSync(outside, { recursive: true });
    for (const entries of [
      [{ name: '../outside/x', content: 'x' }],
      [{ name: '/outside/x', content: 'x' }],
      [{ name: 'l', type: 'symlink' as const, linkname: outside }, { name: 'l/x', content: 'x' }],
      [{ name: 'h', type: 'link' as const, linkname: '../outside/x' }],
      [{ name: 'dev', type: 'char' as const, devmajor: 1, devminor: 3 }],
    ]) {
      assert.throws(() => extract(entries), UnsafeArchiveEntryError);
    }
    assert.deepEqual(readdirSync(outside), []);
  });

  test('a symlink already in the destination is never written through', () => {
    const dest = join(dir, 'pre');
    mkdirSync(dest);
    const outside = join(dir, 'outside2');
    mkdirSync(outside);
    symlinkSync(outside, join(dest, 'link'));
    const root = native().fsOpenRoot(dest);
    try {
      const x = new ArchiveExtractor(native(), root, options);
      const reader = new TarReader(x);
      assert.throws(() => reader.write(buildTar([{ name: 'link/x', content: 'x' }])), UnsafeArchiveEntryError);
    } finally {
      native().fsCloseRoot(root);
    }
    assert.deepEqual(readdirSync(outside), []);
  });

  test('never replaces a directory with a file or the reverse', () => {
    assert.throws(() => extract([{ name: 'd', type: 'dir' }, { name: 'd', content: 'x' }]), ArchiveConflictError);
    assert.throws(() => extract([{ name: 'existing.txt', type: 'dir' }]), ArchiveConflictError);
  });

  test('skips devices when asked to and strips set-id bits', () => {
    const dest = extract([{ name: 'dev', type: 'char', devmajor: 1, devminor: 3 }, { name: 'suid', content: 's', mode: 0o4755 }], undefined, { devices: 'skip', stripSetId: true });
    assert.ok(!existsSync(join(dest, 'dev')));
    assert.equal(statSync(join(dest, 'suid')).mode & 0o7777, 0o755);
  });
});
