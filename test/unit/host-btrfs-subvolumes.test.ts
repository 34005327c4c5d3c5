/**
 * destroySubvolume's order against the native contract (the recording fake): a subvolume that
 * holds others is made writable before they go (a container may have made it read-only, and a
 * read-only subvolume refuses their removal), a failure names the ioctl and the path, nothing
 * there is no failure. The real ioctls run in test/kernel/storage-btrfs.test.ts.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { SystemError } from '../../lib/errors.js';
import { destroySubvolume } from '../../lib/host/btrfs-subvolumes.js';
import type { BtrfsSubvolumeRequest } from '../../lib/native.js';
import { NativeFake } from '../helpers/native-fake.js';

describe('destroySubvolume', () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-subvol-unit-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('destroys with one ioctl when nothing is inside', async () => {
    const fake = new NativeFake().stub('btrfsSubvolume', async () => {});
    await destroySubvolume(join(dir, 'a'), fake.binding);
    assert.deepEqual(fake.callsOf('btrfsSubvolume').map((c) => (c.args[0] as BtrfsSubvolumeRequest).op), ['destroy']);
  });

  it('on ENOTEMPTY clears the read-only flag, then destroys again', async () => {
    const fake = new NativeFake().stub('btrfsSubvolume', async () => {}).fail('btrfsSubvolume', 'ENOTEMPTY', { when: (r) => (r as BtrfsSubvolumeRequest).op === 'destroy', syscall: 'ioctl(BTRFS_IOC_SNAP_DESTROY_V2)' });
    await destroySubvolume(dir, fake.binding);
    assert.deepEqual(fake.callsOf('btrfsSubvolume').map((c) => c.args[0]), [
      { op: 'destroy', path: dir },
      { op: 'set-readonly', path: dir, readonly: false },
      { op: 'destroy', path: dir },
    ]);
  });

  it('takes a missing subvolume as destroyed, and names the ioctl and the path of any other failure', async () => {
    const gone = new NativeFake().fail('btrfsSubvolume', 'ENOENT');
    await destroySubvolume(join(dir, 'gone'), gone.binding);
    const refused = new NativeFake().fail('btrfsSubvolume', 'EPERM', { syscall: 'ioctl(BTRFS_IOC_SNAP_DESTROY_V2)', path: join(dir, 'x') });
    await assert.rejects(destroySubvolume(join(dir, 'x'), refused.binding), (e: Error & { code?: string; path?: string; syscall?: string }) => {
      assert.ok(e instanceof SystemError);
      assert.equal(e.code, 'EPERM');
      assert.equal(e.path, join(dir, 'x'));
      assert.match(e.message, /^btrfs: destroying a subvolume: ioctl\(BTRFS_IOC_SNAP_DESTROY_V2\)/);
      return true;
    });
  });
});
