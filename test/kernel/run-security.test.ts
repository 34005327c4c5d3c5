/**
 * Security defaults and their knobs, observed from inside a busybox container: capabilities,
 * seccomp, no_new_privs, privileged, user namespaces, rlimits, and the two runc CVE classes
 * (fd leaks into the container, overwriting the host binary that started it).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, SystemError, ValidationError, isBerthError, type RunOptions } from '../../lib/index.js';
import { busyboxRootfs, kernelSkipReason } from '../helpers/busybox-rootfs.js';

const skip = kernelSkipReason();
const sh = <O extends RunOptions = RunOptions>(script: string, options?: O) => run({ rootfs: busyboxRootfs() }, ['sh', '-c', script], options);

/** Docker's 14 minus CAP_NET_RAW (Podman's default set). */
const DEFAULT_CAPS = 0xa80405fbn;
const CAP_CHOWN = 0;
const CAP_NET_ADMIN = 12;
const CAP_SYS_ADMIN = 21;

/** The `Name:\tvalue` fields of a /proc/<pid>/status text. */
function statusFields(text: string): Map<string, string> {
  return new Map(
    text
      .split('\n')
      .filter((l) => l.includes(':'))
      .map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 1).trim()]),
  );
}

async function status(options?: RunOptions): Promise<Map<string, string>> {
  const r = await sh('cat /proc/self/status', options);
  assert.equal(r.exitCode, 0, r.stderr);
  return statusFields(r.stdout);
}

const hex = (n: bigint): string => n.toString(16).padStart(16, '0');
const hostStatus = (): Map<string, string> => statusFields(readFileSync('/proc/self/status', 'utf8'));

describe('capabilities, seccomp, no_new_privs', { skip }, () => {
  test("defaults: Docker's 14 capabilities minus NET_RAW, seccomp filter, no_new_privs", async () => {
    const s = await status();
    assert.equal(s.get('CapEff'), '00000000a80405fb');
    assert.equal(s.get('CapPrm'), '00000000a80405fb');
    assert.equal(s.get('CapBnd'), '00000000a80405fb');
    assert.equal(s.get('CapInh'), '0000000000000000');
    assert.equal(s.get('CapAmb'), '0000000000000000');
    assert.equal(s.get('Seccomp'), '2');
    assert.equal(s.get('NoNewPrivs'), '1');
  });

  test("capDrop ['ALL'] leaves no capability at all", async () => {
    const s = await status({ capDrop: ['ALL'] });
    assert.equal(s.get('CapEff'), '0000000000000000');
    assert.equal(s.get('CapBnd'), '0000000000000000');
  });

  test("capAdd ['NET_ADMIN'] adds bit 12 to the defaults", async () => {
    const s = await status({ capAdd: ['NET_ADMIN'] });
    assert.equal(s.get('CapEff'), hex(DEFAULT_CAPS | (1n << BigInt(CAP_NET_ADMIN))));
  });

  test("capDrop ['CHOWN'] removes bit 0, and chown then fails", async () => {
    const s = await status({ capDrop: ['CHOWN'] });
    assert.equal(s.get('CapEff'), hex(DEFAULT_CAPS & ~(1n << BigInt(CAP_CHOWN))));
    const r = await sh('touch /tmp/f && chown 1000 /tmp/f', { capDrop: ['CHOWN'] });
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /not permitted/i);
    const ok = await sh('touch /tmp/f && chown 1000 /tmp/f && stat -c %u /tmp/f');
    assert.equal(ok.stdout, '1000\n', ok.stderr);
  });

  test("capDrop ['ALL'] + capAdd ['CHOWN'] is just CAP_CHOWN", async () => {
    const s = await status({ capDrop: ['ALL'], capAdd: ['CHOWN'] });
    assert.equal(s.get('CapEff'), hex(1n << BigInt(CAP_CHOWN)));
  });

  test('privileged: no seccomp and every capability this process can give', async () => {
    const s = await status({ privileged: true });
    assert.equal(s.get('Seccomp'), '0');
    assert.equal(s.get('CapEff'), hostStatus().get('CapBnd'));
    assert.ok(BigInt(`0x${s.get('CapEff')}`) & (1n << BigInt(CAP_SYS_ADMIN)));
  });

  test("seccomp 'unconfined': no filter, no_new_privs still on", async () => {
    const s = await status({ seccomp: 'unconfined' });
    assert.equal(s.get('Seccomp'), '0');
    assert.equal(s.get('NoNewPrivs'), '1');
    assert.equal(s.get('CapEff'), '00000000a80405fb');
  });

  test('a custom Docker-shaped profile that fails mkdir/mkdirat with EPERM', async () => {
    const profile = {
      defaultAction: 'SCMP_ACT_ALLOW' as const,
      architectures: ['SCMP_ARCH_X86_64'],
      syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO' as const, errnoRet: 1 }],
    };
    const r = await sh('grep Seccomp: /proc/self/status; touch /tmp/file && echo touched; mkdir /tmp/dir && echo made', { seccomp: profile });
    assert.match(r.stdout, /^Seccomp:\s+2$/m);
    assert.match(r.stdout, /^touched$/m);
    assert.doesNotMatch(r.stdout, /^made$/m);
    assert.match(r.stderr, /Operation not permitted/);
  });

  test('a custom profile with errnoRet is honoured (ENOSPC here)', async () => {
    const r = await sh('mkdir /tmp/dir', {
      seccomp: { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 28 }] },
    });
    assert.notEqual(r.exitCode, 0);
    assert.match(r.stderr, /No space left on device/);
  });

  test('by default mount and unshare are refused', async () => {
    const r = await sh('mkdir -p /mnt; mount -t tmpfs none /mnt && echo mounted; unshare -m true && echo unshared-m; unshare -U true && echo unshared-u; unshare -n true && echo unshared-n');
    assert.equal(r.stdout, '', `a privileged operation succeeded: ${r.stdout}`);
  });

  test('the default profile is capability-aware: with SYS_ADMIN, mount is allowed (inside the container only)', async () => {
    const r = await sh('mkdir -p /mnt; mount -t tmpfs none /mnt && echo mounted', { capAdd: ['SYS_ADMIN'] });
    assert.equal(r.stdout, 'mounted\n', r.stderr);
  });

  test('non-root user in the container: no capabilities, cannot raise them (no_new_privs)', async () => {
    const r = await sh('grep -E "^(CapEff|NoNewPrivs):" /proc/self/status; mkdir -p /mnt; mount -t tmpfs none /mnt && echo mounted', {
      user: '1000:1000',
      capAdd: ['SYS_ADMIN'],
    });
    assert.match(r.stdout, /^CapEff:\s+0{16}$/m);
    assert.match(r.stdout, /^NoNewPrivs:\s+1$/m);
    assert.doesNotMatch(r.stdout, /mounted/);
  });
});

describe('user namespace', { skip }, () => {
  test("userns 'auto': root inside maps to an unprivileged host range", async () => {
    const r = await sh('cat /proc/self/uid_map; echo ---; cat /proc/self/gid_map; echo ---; id -u; id -g', { userns: 'auto' });
    assert.equal(r.exitCode, 0, r.stderr);
    const [uidMap, gidMap, ids] = r.stdout.split('---\n');
    for (const map of [uidMap!, gidMap!]) {
      const lines = map.trim().split('\n').map((l) => l.trim().split(/\s+/).map(Number));
      assert.ok(lines.length >= 1, `no mapping: ${map}`);
      const [inside, outside, size] = lines[0]!;
      assert.equal(inside, 0);
      assert.notEqual(outside, 0, 'root in the container is root on the host');
      assert.ok(size! >= 1);
    }
    assert.equal(ids, '0\n0\n');
  });

  test('userns: explicit maps are applied as given', async () => {
    const r = await sh('cat /proc/self/uid_map; id -u', {
      userns: { uidMap: [{ containerId: 0, hostId: 200000, size: 65536 }], gidMap: [{ containerId: 0, hostId: 200000, size: 65536 }] },
    });
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^\s*0\s+200000\s+65536\s*$/m);
    assert.match(r.stdout, /^0$/m);
  });
});

describe('rlimits', { skip }, () => {
  test('ulimits { nofile: 1024 } sets soft and hard', async () => {
    const r = await sh('ulimit -n; ulimit -Hn', { ulimits: { nofile: 1024 } });
    assert.equal(r.stdout, '1024\n1024\n');
  });

  test("ulimits in Docker's list form", async () => {
    const r = await sh('ulimit -n; ulimit -Hn', { ulimits: [{ name: 'nofile', soft: 100, hard: 200 }] });
    assert.equal(r.stdout, '100\n200\n');
  });

  const lacksSysResource = ((BigInt(`0x${hostStatus().get('CapEff') ?? '0'}`) >> 24n) & 1n) === 0n;
  test('a hard limit above our own: ValidationError that mentions CAP_SYS_RESOURCE', { skip: lacksSysResource ? false : 'this process holds CAP_SYS_RESOURCE' }, async () => {
    await assert.rejects(sh('true', { ulimits: { nofile: { soft: 10, hard: 2 ** 40 } } }), (err: unknown) => {
      assert.ok(err instanceof ValidationError, `expected ValidationError, got ${String(err)}`);
      assert.ok(isBerthError(err));
      assert.match(err.message, /CAP_SYS_RESOURCE/);
      assert.match(err.option ?? '', /^ulimits/);
      return true;
    });
  });

  test('an unknown ulimit name is a ValidationError', async () => {
    await assert.rejects(sh('true', { ulimits: { nosuchlimit: 5 } }), ValidationError);
  });
});

describe('fd leaks (CVE-2024-21626 class)', { skip }, () => {
  let secretDir: string;
  let heldFds: number[] = [];
  before(() => {
    // Hold some host fds open in the Node process, as a real application would.
    secretDir = mkdtempSync(join(tmpdir(), 'berth-fdleak-'));
    writeFileSync(join(secretDir, 'host-secret'), 'top secret\n');
    heldFds = [openSync(secretDir, 'r'), openSync(join(secretDir, 'host-secret'), 'r'), openSync('/', 'r')];
  });
  after(() => {
    for (const fd of heldFds) closeSync(fd);
    rmSync(secretDir, { recursive: true, force: true });
  });

  test('the container process has exactly fds 0, 1 and 2', async () => {
    // `ls /proc/1/fd` lists the shell's fds (PID 1), not those of ls itself; `; true` stops
    // the shell from exec'ing ls in its place.
    const r = await sh('ls /proc/1/fd; true');
    assert.deepEqual(r.stdout.trim().split('\n').sort(), ['0', '1', '2']);
  });

  test('ls /proc/self/fd shows only 0, 1, 2 and the directory ls itself opened', async () => {
    const r = await sh('ls /proc/self/fd; true');
    const fds = r.stdout.trim().split('\n').map(Number).sort((a, b) => a - b);
    assert.deepEqual(fds.slice(0, 3), [0, 1, 2]);
    assert.ok(fds.length <= 4, `extra fds inside: ${fds.join(' ')}`);
  });

  test('under init too, PID 1 and the command hold only 0, 1, 2', async () => {
    const r = await sh('ls /proc/1/fd; echo ---; ls /proc/$$/fd; true', { init: true });
    const [initFds, shFds] = r.stdout.split('---\n');
    assert.deepEqual(initFds!.trim().split('\n').sort(), ['0', '1', '2']);
    assert.deepEqual(shFds!.trim().split('\n').sort(), ['0', '1', '2']);
  });

  test('workdir /proc/self/fd/3 .. /proc/self/fd/12 never starts a process with a host cwd', async () => {
    // If the cwd were a host directory, walking up with .. would leave the container's root
    // and reach this marker on the host's /tmp.
    const marker = `berth-cve-2024-21626-${process.pid}`;
    writeFileSync(join('/tmp', marker), 'host\n');
    try {
      for (let n = 3; n <= 12; n++) {
        const workdir = `/proc/self/fd/${n}`;
        const up = '../'.repeat(40);
        let outcome: string;
        try {
          const r = await sh(`if [ -e ${up}tmp/${marker} ]; then echo HOST-CWD; fi; pwd -P`, { workdir });
          outcome = r.stdout;
          assert.doesNotMatch(r.stdout, /HOST-CWD/, `workdir ${workdir}: the process started in a host directory`);
        } catch (err) {
          if (err instanceof assert.AssertionError) throw err;
          assert.ok(isBerthError(err), `workdir ${workdir}: non-berth error ${String(err)}`);
          assert.ok(err instanceof SystemError || err instanceof ValidationError, `workdir ${workdir}: ${String(err)}`);
          outcome = 'refused';
        }
        assert.ok(outcome === 'refused' || !outcome.includes('HOST-CWD'));
      }
    } finally {
      rmSync(join('/tmp', marker), { force: true });
    }
  });

  test('the host file the Node process holds open is not reachable through /proc/1/fd', async () => {
    // Regular files only: reopening the stdout pipe through /proc would read our own output.
    const r = await sh('for f in /proc/1/fd/* /proc/self/fd/*; do if [ -f "$f" ]; then cat "$f"; fi; done; true');
    assert.doesNotMatch(r.stdout, /top secret/);
  });
});

describe('host binaries (CVE-2019-5736 class)', { skip }, () => {
  test('with init, /proc/1/exe is a sealed copy: writing it fails and no host file changes', async () => {
    const candidates = ['build/Release/berth-helper', 'prebuilds/linux-x64/berth-helper'].map((p) => join(import.meta.dirname, '../..', p)).filter((p) => existsSync(p));
    const digest = (p: string) => createHash('sha256').update(readFileSync(p)).digest('hex');
    const before = candidates.map(digest);
    const r = await sh('echo pwned > /proc/1/exe && echo wrote; cat /proc/1/exe > /dev/null && echo readable; readlink /proc/1/exe', { init: true });
    assert.doesNotMatch(r.stdout, /^wrote$/m, 'the container wrote to its init binary');
    const target = r.stdout.trim().split('\n').at(-1) ?? '';
    for (const p of candidates) assert.ok(!target.includes(p), `PID 1 runs the host file ${p} directly`);
    assert.deepEqual(candidates.map(digest), before, 'a host helper binary changed');
  });

  test('without init, /proc/1/exe is the image binary, and overwriting it never reaches the rootfs', async () => {
    const rootfs = busyboxRootfs();
    const before = readFileSync(join(rootfs, 'bin/busybox'));
    // PID 1 is the shell, i.e. /bin/busybox of the overlay; a copy writes to it (ETXTBSY, or a copy-up at worst).
    const r = await sh('cp /bin/busybox /tmp/bb && /tmp/bb sh -c "echo pwned > /proc/1/exe"; echo rc=$?');
    assert.match(r.stdout, /rc=/);
    assert.ok(readFileSync(join(rootfs, 'bin/busybox')).equals(before), 'the rootfs busybox changed');
  });
});
