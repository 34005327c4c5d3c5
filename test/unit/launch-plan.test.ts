import assert from 'node:assert/strict';
import { mkdtempSync, mkdirSync, rmSync, writeFileSync, symlinkSync } from 'node:fs';
import { hostname as osHostname } from 'node:os';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { execCandidates, grantableCapabilities, planLaunch, withCommand, CLONE_NEWNET, CLONE_NEWUSER, type LaunchContext } from '../../lib/launch/launch-plan.js';
import { normalizeRunOptions } from '../../lib/launch/run-options.js';
import { resolveRlimits } from '../../lib/launch/rlimits.js';
import { NotFoundError, ValidationError } from '../../lib/errors.js';

function fakeRoot(): string {
  const dir = mkdtempSync(join(tmpdir(), 'berth-plan-'));
  mkdirSync(join(dir, 'etc'));
  writeFileSync(join(dir, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n');
  writeFileSync(join(dir, 'etc/group'), 'root:x:0:\napp:x:1000:\nstaff:x:50:app\n');
  return dir;
}

function ctx(options: Parameters<typeof normalizeRunOptions>[0] = {}, root = fakeRoot()): LaunchContext {
  return {
    root: { kind: 'rootfs', dir: root },
    argv: ['sh', '-c', 'true'],
    options: normalizeRunOptions(options),
    stagingDir: '/run/berth/rootfs',
    cgroupProcs: ['/sys/fs/cgroup/pids/berth/x/cgroup.procs'],
    cgroupMounts: [],
    stdinPiped: false,
  };
}

describe('planLaunch', () => {
  it('applies Docker defaults: 14 capabilities minus NET_RAW, empty inheritable, seccomp, no_new_privs, own netns', () => {
    const { spec } = planLaunch(ctx());
    assert.equal(spec.capabilities.effective, 0xa80405fbn);
    assert.equal(spec.capabilities.bounding, 0xa80405fbn);
    assert.equal(spec.capabilities.inheritable, 0n);
    assert.ok(spec.seccomp && spec.seccomp.length % 8 === 0);
    assert.equal(spec.noNewPrivileges, true);
    assert.equal(spec.cloneFlags & CLONE_NEWNET, CLONE_NEWNET);
    assert.equal(spec.cloneFlags & CLONE_NEWUSER, 0);
    assert.equal(spec.newCgroupNs, true);
    assert.equal(spec.dieWithParent, true);
  });

  it('resolves a user name from the rootfs, with supplementary groups and HOME', () => {
    const { spec } = planLaunch(ctx({ user: 'app' }));
    assert.equal(spec.uid, 1000);
    assert.equal(spec.gid, 1000);
    assert.deepEqual(spec.groups, [50]);
    assert.ok(spec.env.includes('HOME=/home/app'));
  });

  it('refuses an unknown user with NotFoundError naming the option', () => {
    assert.throws(() => planLaunch(ctx({ user: 'ghost' })), (e: NotFoundError) => e instanceof NotFoundError && e.option === 'user');
  });

  it('does not follow a rootfs /etc/passwd symlink out of the rootfs', () => {
    const root = fakeRoot();
    const outside = join(mkdtempSync(join(tmpdir(), 'berth-out-')), 'passwd');
    writeFileSync(outside, 'ghost:x:4242:4242::/:/bin/sh\n');
    rmSync(join(root, 'etc/passwd'));
    symlinkSync(outside, join(root, 'etc/passwd'));
    assert.throws(() => planLaunch(ctx({ user: 'ghost' }, root)), NotFoundError);
  });

  it('merges env over defaults and removes undefined values', () => {
    const { spec } = planLaunch(ctx({ env: { A: '1', PATH: '/x', HOSTNAME: undefined } }));
    assert.ok(spec.env.includes('A=1'));
    assert.ok(spec.env.includes('PATH=/x'));
    assert.ok(!spec.env.some((e) => e.startsWith('HOSTNAME=')));
    assert.deepEqual(spec.execCandidates, ['/x/sh']);
  });

  it('shares the host network only when asked, and then keeps the host hostname', () => {
    const { spec, hostname } = planLaunch(ctx({ network: 'host' }));
    assert.equal(spec.cloneFlags & CLONE_NEWNET, 0);
    assert.equal(spec.loopbackUp, false);
    assert.equal(hostname, osHostname());
  });

  it('gives a random 12-hex hostname by default', () => {
    const { hostname } = planLaunch(ctx());
    assert.match(hostname, /^[0-9a-f]{12}$/);
  });

  it('adds CLONE_NEWUSER and id maps for userns', () => {
    const { spec } = planLaunch(ctx({ userns: { uidMap: [{ containerId: 0, hostId: 100000, size: 65536 }], gidMap: [{ containerId: 0, hostId: 100000, size: 65536 }] } }));
    assert.equal(spec.cloneFlags & CLONE_NEWUSER, CLONE_NEWUSER);
    assert.equal(spec.uidMap, '0 100000 65536\n');
  });

  it('privileged turns off seccomp and grants every capability', () => {
    const { spec } = planLaunch(ctx({ privileged: true }));
    assert.equal(spec.seccomp, null);
    assert.ok(spec.capabilities.effective > 0xa80405fbn);
  });
});

describe('withCommand', () => {
  // A pooled sandbox plans its exec before the request and sets the command in at the request:
  // the result must be the plan of that command, field for field.
  it('gives the plan planLaunch makes for that argv and stdin', () => {
    const root = fakeRoot();
    for (const env of [{}, { PATH: '/opt/x:/bin' }]) {
      const template = planLaunch({ ...ctx({ env, hostname: 'h' }, root), argv: ['/bin/true'], stdinPiped: false }).spec;
      for (const [argv, stdinPiped] of [[['sh', '-c', 'echo'], true], [['/bin/ls', '-l'], false], [['python3'], false]] as const) {
        const direct = planLaunch({ ...ctx({ env, hostname: 'h' }, root), argv: [...argv], stdinPiped }).spec;
        assert.deepEqual({ ...withCommand(template, argv, stdinPiped), seccomp: null }, { ...direct, seccomp: null });
        assert.deepEqual(withCommand(template, argv, stdinPiped).seccomp, direct.seccomp);
      }
    }
    rmSync(root, { recursive: true, force: true });
  });

  it('is not the template for another command', () => {
    const template = planLaunch(ctx({ hostname: 'h' })).spec;
    const other = withCommand(template, ['ls'], false);
    assert.notDeepEqual(other.argv, template.argv);
    assert.deepEqual(other.execCandidates, execCandidates('ls', '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'));
  });
});

describe('execCandidates', () => {
  it('walks PATH for bare names and takes paths as they are', () => {
    assert.deepEqual(execCandidates('ls', '/usr/bin:/bin/'), ['/usr/bin/ls', '/bin/ls']);
    assert.deepEqual(execCandidates('./run.sh', '/bin'), ['./run.sh']);
    assert.deepEqual(execCandidates('/bin/true', '/x'), ['/bin/true']);
  });
});

describe('option validation', () => {
  it('names the option and suggests the right spelling', () => {
    assert.throws(() => normalizeRunOptions({ Memory: '1m' } as never), (e: ValidationError) => e.option === 'Memory' && /did you mean "memory"/.test(e.message));
    assert.throws(() => normalizeRunOptions({ memory: 'lots' }), (e: ValidationError) => e.option === 'memory');
    assert.throws(() => normalizeRunOptions({ workdir: 'rel' }), (e: ValidationError) => e.option === 'workdir');
    assert.throws(() => normalizeRunOptions({ mounts: [{ type: 'bind', source: 'rel', target: '/x' }] }), (e: ValidationError) => e.option === 'mounts[0].source');
    assert.throws(() => normalizeRunOptions({ mounts: [{ type: 'tmpfs', target: '/proc' }] }), (e: ValidationError) => e.option === 'mounts[0].target');
    assert.throws(() => normalizeRunOptions({ network: 42 as never }), (e: ValidationError) => e.option === 'network');
    assert.throws(() => normalizeRunOptions({ timeout: -1 }), (e: ValidationError) => e.option === 'timeout');
  });

  it('parses units: memory strings to bytes, cpus to CPUs', () => {
    const o = normalizeRunOptions({ memory: '64m', cpus: '0.5' });
    assert.equal(o.memory, 64 * 1024 * 1024);
    assert.equal(o.cpus, 0.5);
  });
});

describe('resolveRlimits', () => {
  const hard = new Map([['nofile', 4096n]]);
  it('maps names to RLIMIT numbers', () => {
    assert.deepEqual(resolveRlimits({ nofile: 1024 }, { hard, privileged: false }), [{ resource: 7, soft: 1024n, hard: 1024n }]);
  });
  it('refuses raising a hard limit without CAP_SYS_RESOURCE, and says so', () => {
    assert.throws(() => resolveRlimits([{ name: 'nofile', soft: 10, hard: 10000 }], { hard, privileged: false }), (e: ValidationError) => /CAP_SYS_RESOURCE/.test(e.message) && e.option === 'ulimits[0].hard');
    assert.doesNotThrow(() => resolveRlimits([{ name: 'nofile', soft: 10, hard: 10000 }], { hard, privileged: true }));
  });
  it('refuses unknown names and soft above hard', () => {
    assert.throws(() => resolveRlimits({ nofiles: 1 }, { hard }), ValidationError);
    assert.throws(() => resolveRlimits([{ name: 'nofile', soft: 20, hard: 10 }], { hard }), ValidationError);
  });
});

describe('grantableCapabilities', () => {
  const own = 0x1fffeffffffn; // like root without CAP_SYS_RESOURCE (bit 24)
  it('privileged gives what this process holds', () => {
    const r = grantableCapabilities({ names: [], mask: (1n << 41n) - 1n }, true, own);
    assert.equal(r.mask, own);
    assert.ok(!r.names.includes('CAP_SYS_RESOURCE'));
  });
  it('refuses an explicit capAdd this process lacks', () => {
    assert.throws(() => grantableCapabilities({ names: ['CAP_SYS_RESOURCE'], mask: 1n << 24n }, false, own), (e: ValidationError) => e.option === 'capAdd' && /CAP_SYS_RESOURCE/.test(e.message));
  });
});

describe('cgroup v2 launch', () => {
  it('passes the cgroup directory for CLONE_INTO_CGROUP and keeps cgroup.procs as the fallback', () => {
    const c = ctx();
    const { spec } = planLaunch({ ...c, cgroupDir: '/sys/fs/cgroup/berth/x', cgroupProcs: ['/sys/fs/cgroup/berth/x/cgroup.procs'] });
    assert.equal(spec.cgroupDir, '/sys/fs/cgroup/berth/x');
    assert.deepEqual(spec.cgroupProcs, ['/sys/fs/cgroup/berth/x/cgroup.procs']);
    assert.equal(planLaunch(c).spec.cgroupDir, undefined);
  });
});
