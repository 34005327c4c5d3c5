import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { encodeLaunchSpec, helperExecutablePath, StdioMode, MountOpKind, type NativeLaunchSpec } from '../../lib/native.js';

const spec: NativeLaunchSpec = {
  cloneFlags: 0,
  newCgroupNs: false,
  cgroupProcs: [],
  mounts: [{ kind: MountOpKind.Overlay, target: '/x', lowerDirs: ['/a', '/b'], source: '/u', data: '/w' }],
  loopbackUp: false,
  rlimits: [{ resource: 7, soft: 1024n, hard: 2048n }],
  uid: 0,
  gid: 0,
  groups: [1, 2],
  capabilities: { bounding: 0xa80425fbn, effective: 0xa80425fbn, permitted: 0xa80425fbn, inheritable: 0n, ambient: 0n },
  noNewPrivileges: true,
  seccomp: null,
  dieWithParent: true,
  cwd: '/',
  argv: ['/bin/true'],
  env: ['A=1'],
  execCandidates: ['/bin/true'],
  execFd: -1,
  stdio: [{ mode: StdioMode.Null }, { mode: StdioMode.Pipe }, { mode: StdioMode.Pipe }],
  tty: false,
};

type Raw = { spawnEncoded(b: Buffer): Promise<unknown> };

/** The addon's own exports (the binding only exposes `spawn`, which encodes valid specs). */
function rawAddon(): Raw {
  return createRequire(import.meta.url)(join(dirname(helperExecutablePath()), 'berth.node')) as Raw;
}

describe('launch spec wire format', () => {
  it('frames the spec with magics', () => {
    const b = encodeLaunchSpec(spec);
    assert.equal(b.subarray(0, 4).toString(), 'BLS1');
    assert.equal(b.subarray(-4).toString(), 'END!');
  });

  it('the native decoder rejects garbage, truncation, trailing bytes and a bad seccomp length, naming the field', () => {
    const raw = rawAddon();
    const good = encodeLaunchSpec(spec);
    assert.throws(() => raw.spawnEncoded(Buffer.from('nope')), /launch spec: .*(bad magic|truncated)/);
    assert.throws(() => raw.spawnEncoded(good.subarray(0, good.length >> 1)), /launch spec: (truncated|bad)/);
    assert.throws(() => raw.spawnEncoded(Buffer.concat([good, Buffer.from([0])])), /launch spec: trailing bytes/);
    assert.throws(() => raw.spawnEncoded(encodeLaunchSpec({ ...spec, seccomp: Buffer.alloc(7) })), /seccomp/);
    assert.throws(() => raw.spawnEncoded(encodeLaunchSpec({ ...spec, argv: [] })), /empty argv/);
  });

  it('rejects an absurd string length instead of allocating it', () => {
    const raw = rawAddon();
    const b = Buffer.from(encodeLaunchSpec(spec));
    // uidMap's length field sits after the magic (4), cloneFlags (4) and newCgroupNs (1).
    b.writeUInt32LE(0xfffffff0, 9);
    assert.throws(() => raw.spawnEncoded(b), /bad string length/);
  });
});
