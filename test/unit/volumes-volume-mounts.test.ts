import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { normalizeRunOptions } from '../../lib/launch/run-options.js';
import { ValidationError } from '../../lib/errors.js';
import { hasVolumeMounts, parseVolumesFrom, volumesFromMounts, type MountRecord } from '../../lib/volumes/volume-mounts.js';

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
