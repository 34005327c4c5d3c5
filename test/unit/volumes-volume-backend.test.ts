import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UnsupportedError, ValidationError } from '../../lib/errors.js';
import { mountAt, mountHolding, readMountInfo } from '../../lib/volumes/host-mount.js';
import { MIN_LOOP_SIZE, planBackend, probeSizeLimitSupport, type SizeLimitSupport } from '../../lib/volumes/volume-backend.js';

const loopOk = (): SizeLimitSupport => ({ backend: 'loop', projectQuota: 'ext4 without prjquota', loop: 'available' });
const nothing = (): SizeLimitSupport => ({ backend: null, projectQuota: 'ext4 without prjquota', loop: 'missing mkfs.ext4 (e2fsprogs)' });

describe('driverOpts -> backend', () => {
  it('no options: a plain directory', () => {
    assert.deepEqual(planBackend(undefined, nothing), { backend: { kind: 'directory' }, options: {} });
    assert.deepEqual(planBackend({}, nothing).backend, { kind: 'directory' });
  });

  it('tmpfs with berth keys and Docker keys alike', () => {
    const a = planBackend({ type: 'tmpfs', size: '1m', mode: 0o755, uid: 1000, gid: '1000' }, nothing);
    assert.deepEqual(a.backend, { kind: 'tmpfs', data: 'size=1048576,mode=0755,uid=1000,gid=1000', sizeBytes: 1048576 });
    assert.deepEqual(a.options, { type: 'tmpfs', size: '1m', mode: '0755', uid: '1000', gid: '1000' });
    const b = planBackend({ type: 'tmpfs', device: 'tmpfs', o: 'size=64m,mode=1777,nr_inodes=1k' }, nothing);
    assert.deepEqual(b.backend, { kind: 'tmpfs', data: `size=${64 * 1024 * 1024},mode=1777,nr_inodes=1k`, sizeBytes: 64 * 1024 * 1024 });
    assert.deepEqual(planBackend({ type: 'tmpfs' }, nothing).backend, { kind: 'tmpfs', data: '' });
  });

  it('a size without a type: the probed size backend (loop), never asked otherwise', () => {
    let asked = 0;
    const probe = () => {
      asked++;
      return loopOk();
    };
    planBackend({ type: 'tmpfs', size: '1m' }, probe);
    assert.equal(asked, 0);
    assert.deepEqual(planBackend({ size: '8m' }, probe).backend, { kind: 'loop', image: 'disk.img', fstype: 'ext4', sizeBytes: 8 * 1024 * 1024 });
    assert.equal(asked, 1);
  });

  it('a size that cannot be enforced is an UnsupportedError saying why and what to use', () => {
    assert.throws(() => planBackend({ size: '8m' }, nothing), (e: unknown) => {
      assert.ok(e instanceof UnsupportedError);
      assert.match(e.message, /prjquota/);
      assert.match(e.message, /mkfs\.ext4/);
      assert.match(e.message, /type: "tmpfs"/);
      return true;
    });
  });

  it('refuses what it cannot do, naming the option', () => {
    const bad: Array<[unknown, string]> = [
      [{ type: 'nfs' }, 'driverOpts.type'],
      [{ type: 'tmpfs', device: '/dev/sda' }, 'driverOpts.device'],
      [{ type: 'tmpfs', o: 'size=1m,exec' }, 'driverOpts.o'],
      [{ type: 'tmpfs', mode: '0999' }, 'driverOpts.mode'],
      [{ type: 'tmpfs', uid: -1 }, 'driverOpts.uid'],
      [{ type: 'tmpfs', size: 'lots' }, 'driverOpts.size'],
      [{ mode: '0755' }, 'driverOpts.mode'],
      [{ size: MIN_LOOP_SIZE - 1 }, 'driverOpts.size'],
      [{ sise: '1m' }, 'driverOpts.sise'],
      ['tmpfs', 'driverOpts'],
    ];
    for (const [opts, option] of bad) {
      assert.throws(() => planBackend(opts as never, loopOk), (e: unknown) => e instanceof ValidationError && e.option === option, JSON.stringify(opts));
    }
  });
});

describe('size-limit probe', () => {
  const line = (id: number, mp: string, fs: string, opts: string) => `${id} 1 8:1 / ${mp} rw,relatime - ${fs} /dev/sda1 ${opts}`;

  it('finds the file system holding a path, and says whether project quota is on', () => {
    const table = readMountInfo([line(1, '/', 'ext4', 'rw'), line(2, '/var/lib', 'xfs', 'rw,attr2,prjquota'), line(3, '/var/lib/x\\040y', 'tmpfs', 'rw')].join('\n'));
    assert.equal(mountHolding('/var/lib/berth/volumes', table)?.fstype, 'xfs');
    assert.equal(mountHolding('/var/library', table)?.fstype, 'ext4');
    assert.equal(mountAt('/var/lib/x y', table)?.fstype, 'tmpfs', 'octal escapes are decoded');
    assert.match(probeSizeLimitSupport('/var/lib/berth/volumes', table).projectQuota, /project quota enabled/);
    assert.match(probeSizeLimitSupport('/srv', table).projectQuota, /without project quota/);
  });
});
