import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MS_PRIVATE, MS_REC, MS_SLAVE, planRootfs, type RootfsPlanInput } from '../../lib/launch/rootfs-plan.js';
import { UnsupportedError, ValidationError } from '../../lib/errors.js';
import { CreateKind, MountOpKind } from '../../lib/native.js';
import { overlayDriver } from '../../lib/storage/overlay-driver.js';

describe('bind propagation ops', () => {
  function input(mounts: RootfsPlanInput['mounts']): RootfsPlanInput {
    return {
      source: { kind: 'layers', lowerDirs: ['/layers/a'], driver: overlayDriver },
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
