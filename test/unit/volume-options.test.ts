/**
 * Volumes, the pure parts: names, driverOpts and the backend they choose, Docker's filters,
 * mount validation, volumesFrom, and the mount ops that bind propagation plans.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeRunOptions } from '../../lib/launch/run-options.js';
import { MS_PRIVATE, MS_REC, MS_SLAVE, planRootfs, type RootfsPlanInput } from '../../lib/launch/rootfs-plan.js';
import { UnsupportedError, ValidationError } from '../../lib/errors.js';
import { CreateKind, MountOpKind } from '../../lib/native.js';
import { mountAt, mountHolding, readMountInfo } from '../../lib/volumes/host-mount.js';
import { MIN_LOOP_SIZE, planBackend, probeSizeLimitSupport, type SizeLimitSupport } from '../../lib/volumes/volume-backend.js';
import { compileVolumeFilters } from '../../lib/volumes/volume-filters.js';
import { hasVolumeMounts, parseVolumesFrom, volumesFromMounts, type MountRecord } from '../../lib/volumes/volume-mounts.js';
import { anonymousVolumeName, checkVolumeName, isVolumeName } from '../../lib/volumes/volume-name.js';

const loopOk = (): SizeLimitSupport => ({ backend: 'loop', projectQuota: 'ext4 without prjquota', loop: 'available' });
const nothing = (): SizeLimitSupport => ({ backend: null, projectQuota: 'ext4 without prjquota', loop: 'missing mkfs.ext4 (e2fsprogs)' });

describe('volume names', () => {
  it("follows Docker's rule", () => {
    for (const ok of ['ab', 'data', 'my-vol_1.2', 'A0']) assert.ok(isVolumeName(ok), ok);
    for (const bad of ['a', '', '.hidden', '-x', 'a/b', 'a b', 'x'.repeat(256), '_x']) assert.ok(!isVolumeName(bad), bad);
  });

  it('names the option and points a path at bind mounts', () => {
    assert.throws(() => checkVolumeName('/srv/data', 'mounts[0].source'), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.option, 'mounts[0].source');
      assert.match(e.message, /type: "bind"/);
      return true;
    });
  });

  it('anonymous names are 64 hex digits', () => {
    assert.match(anonymousVolumeName(), /^[0-9a-f]{64}$/);
    assert.notEqual(anonymousVolumeName(), anonymousVolumeName());
  });
});

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

describe('volume filters', () => {
  const vols: Array<{ name: string; driver: string; labels: Record<string, string>; inUse: boolean }> = [
    { name: 'web-data', driver: 'local', labels: { env: 'prod', tier: 'web' }, inUse: true },
    { name: 'db-data', driver: 'local', labels: { env: 'dev' }, inUse: false },
    { name: 'cache', driver: 'local', labels: {}, inUse: false },
  ];
  const pick = (filters: object, allowed = ['name', 'label', 'dangling', 'driver']) => vols.filter((v) => compileVolumeFilters(filters as never, allowed).matches(v)).map((v) => v.name);

  it("Docker's semantics: name substring (any), labels (all), dangling", () => {
    assert.deepEqual(pick({ name: 'data' }), ['web-data', 'db-data']);
    assert.deepEqual(pick({ name: ['cache', 'web'] }), ['web-data', 'cache']);
    assert.deepEqual(pick({ label: 'env' }), ['web-data', 'db-data']);
    assert.deepEqual(pick({ label: ['env=prod', 'tier=web'] }), ['web-data']);
    assert.deepEqual(pick({ label: ['env=prod', 'tier=db'] }), []);
    assert.deepEqual(pick({ dangling: true }), ['db-data', 'cache']);
    assert.deepEqual(pick({ dangling: 'false' }), ['web-data']);
    assert.deepEqual(pick({ driver: 'local', name: 'db' }), ['db-data']);
    assert.deepEqual(pick({ 'label!': 'env=dev' }, ['label', 'label!']), ['web-data', 'cache']);
  });

  it('only usage-based filters need the in-use lookup', () => {
    assert.equal(compileVolumeFilters({ name: 'x' }, ['name']).needsUsage, false);
    assert.equal(compileVolumeFilters({ dangling: true }, ['dangling']).needsUsage, true);
  });

  it('unknown keys and bad values are ValidationErrors naming the filter', () => {
    assert.throws(() => compileVolumeFilters({ until: '1h' } as never, ['name']), (e: unknown) => e instanceof ValidationError && e.option === 'filters.until');
    assert.throws(() => compileVolumeFilters({ dangling: 'maybe' } as never, ['dangling']), (e: unknown) => e instanceof ValidationError && e.option === 'filters.dangling');
    assert.throws(() => compileVolumeFilters({ label: 3 } as never, ['label']), (e: unknown) => e instanceof ValidationError && e.option === 'filters.label');
  });
});

describe('mount validation', () => {
  const bad = (mounts: unknown[], option: string, message?: RegExp) =>
    assert.throws(() => normalizeRunOptions({ mounts: mounts as never }), (e: unknown) => {
      assert.ok(e instanceof ValidationError, String(e));
      assert.equal(e.option, option);
      if (message) assert.match(e.message, message);
      return true;
    });

  it('accepts every mount type', () => {
    normalizeRunOptions({
      mounts: [
        { type: 'volume', source: 'data', target: '/data', readonly: true, nocopy: true },
        { type: 'volume', target: '/anon' },
        { type: 'bind', source: '/srv', target: '/srv', propagation: 'rslave' },
        { type: 'tmpfs', target: '/scratch', size: '1m', mode: 0o700 },
      ],
    });
  });

  it('refuses bad volume sources, relative bind sources, duplicate targets and berth-managed paths', () => {
    bad([{ type: 'volume', source: '/srv/data', target: '/x' }], 'mounts[0].source', /type: "bind"/);
    bad([{ type: 'volume', source: 'a', target: '/x' }], 'mounts[0].source');
    bad([{ type: 'volume', source: 42, target: '/x' }], 'mounts[0].source');
    bad([{ type: 'volume', source: 'data', target: 'relative' }], 'mounts[0].target', /absolute/);
    bad([{ type: 'volume', source: 'data', target: '/x', nocopy: 'yes' }], 'mounts[0].nocopy');
    bad([{ type: 'bind', source: 'srv/data', target: '/x' }], 'mounts[0].source', /absolute/);
    bad([{ type: 'bind', source: '/srv', target: '/x', propagation: 'rshare' }], 'mounts[0].propagation');
    bad([{ type: 'volume', target: '/data' }, { type: 'tmpfs', target: '/data/' }], 'mounts[1].target', /duplicate/);
    bad([{ type: 'volume', source: 'data', target: '/proc' }], 'mounts[0].target', /berth manages/);
    bad([{ type: 'nfs', target: '/x' }], 'mounts[0].type', /"volume"/);
  });

  it('hasVolumeMounts', () => {
    assert.equal(hasVolumeMounts(undefined), false);
    assert.equal(hasVolumeMounts({ mounts: [{ type: 'bind' }] }), false);
    assert.equal(hasVolumeMounts({ mounts: [{ type: 'tmpfs' }, { type: 'volume' }] }), true);
  });
});

describe('volumesFrom', () => {
  const records: MountRecord[] = [
    { type: 'volume', name: 'data', target: '/data', readonly: false, anonymous: false },
    { type: 'volume', name: 'f'.repeat(64), target: '/anon', readonly: true, anonymous: true },
    { type: 'bind', source: '/srv/conf', target: '/conf', readonly: true },
    { type: 'tmpfs', target: '/scratch' },
  ];

  it("parses Docker's container[:ro|:rw]", () => {
    assert.deepEqual(parseVolumesFrom('db'), { container: 'db' });
    assert.deepEqual(parseVolumesFrom('db:ro'), { container: 'db', mode: 'ro' });
    assert.deepEqual(parseVolumesFrom('0123abcd:rw'), { container: '0123abcd', mode: 'rw' });
    assert.throws(() => parseVolumesFrom('db:rx'), ValidationError);
    assert.throws(() => parseVolumesFrom(''), ValidationError);
  });

  it('inherits volumes and binds (not tmpfs), never owning inherited anonymous volumes', () => {
    assert.deepEqual(volumesFromMounts([{ mounts: records }]), [
      { type: 'volume', name: 'data', target: '/data', readonly: false, anonymous: false },
      { type: 'volume', name: 'f'.repeat(64), target: '/anon', readonly: true, anonymous: false },
      { type: 'bind', source: '/srv/conf', target: '/conf', readonly: true },
    ]);
  });

  it(':ro / :rw override the mode; explicit targets and earlier sources win', () => {
    const ro = volumesFromMounts([{ mounts: records, mode: 'ro' }]);
    assert.ok(ro.every((m) => m.readonly === true));
    const rw = volumesFromMounts([{ mounts: records, mode: 'rw' }]);
    assert.ok(rw.every((m) => m.readonly === false));
    const other: MountRecord[] = [{ type: 'volume', name: 'other', target: '/data/', readonly: false, anonymous: false }];
    const merged = volumesFromMounts([{ mounts: records }, { mounts: other }], new Set(['/conf']));
    assert.deepEqual(merged.map((m) => m.target), ['/data', '/anon']);
  });
});

describe('bind propagation ops', () => {
  function input(mounts: RootfsPlanInput['mounts']): RootfsPlanInput {
    return {
      source: { kind: 'overlay', lowerDirs: ['/layers/a'] },
      stagingDir: '/run/berth/rootfs',
      userns: false,
      netns: true,
      privileged: false,
      readonlyRootfs: false,
      files: [],
      readonlyBinds: [],
      symlinks: [],
      cgroupMounts: [],
      workdir: '/',
      mounts,
      dirs: [],
      tmpfs: [],
    };
  }

  it('default: the namespace starts private and binds get no extra op', () => {
    const ops = planRootfs(input([{ type: 'bind', source: '/srv', target: '/srv' }, { type: 'bind', source: '/opt', target: '/opt', propagation: 'private' }]));
    assert.equal(ops[0]!.flags, MS_REC | MS_PRIVATE);
    assert.equal(ops.filter((o) => o.source === 'none' && o.kind === MountOpKind.MountInRoot).length, 0);
  });

  it('rslave: the namespace starts as a slave; every bind then gets its own mode, resolved in the root', () => {
    const ops = planRootfs(input([
      { type: 'bind', source: '/srv', target: '/srv', propagation: 'rslave' },
      { type: 'bind', source: '/opt', target: '/opt' },
      { type: 'bind', source: '/mnt', target: '/mnt', propagation: 'slave' },
    ]));
    assert.equal(ops[0]!.flags, MS_REC | MS_SLAVE);
    const after = (target: string) => ops[ops.findIndex((o) => o.kind === MountOpKind.BindInRoot && o.target === target) + 1]!;
    for (const [target, flags] of [['/srv', MS_SLAVE | MS_REC], ['/opt', MS_PRIVATE | MS_REC], ['/mnt', MS_SLAVE]] as const) {
      const op = after(target);
      assert.equal(op.kind, MountOpKind.MountInRoot, target);
      assert.equal(op.target, target);
      assert.equal(op.flags, flags, target);
      assert.equal(op.create, CreateKind.None, 'the bind made the target; never create a new one');
    }
  });

  it('shared propagation is an UnsupportedError; an unresolved volume mount a ValidationError', () => {
    assert.throws(() => planRootfs(input([{ type: 'bind', source: '/srv', target: '/srv', propagation: 'rshared' }])), UnsupportedError);
    assert.throws(() => planRootfs(input([{ type: 'volume', source: 'data', target: '/data' }])), (e: unknown) => e instanceof ValidationError && /Runtime/.test(e.message));
  });
});
