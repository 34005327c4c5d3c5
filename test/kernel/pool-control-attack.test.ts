/**
 * Attack test for the parked PID 1's control socket (src-native/park-main.cc): whoever can write
 * to it makes PID 1 start processes with PID 1's credentials (the sandbox's root, the
 * capabilities to switch users, no per-command choice of filter). The workload must not reach
 * it: not among its own descriptors (close-on-exec, closed before exec), not through
 * /proc/1/fd (its numbers may be listed by a root with CAP_DAC_OVERRIDE, but following one needs
 * the ptrace check), not with pidfd_getfd; both need PID 1 to be dumpable (it is not).
 *
 * The workload runs as the sandbox's root with the default capabilities, the strongest a
 * default pool hands out: the same uid and capabilities as PID 1 but for the three PID 1 keeps
 * to become the workload, so a dumpable PID 1 would hand over every descriptor it holds.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, ValidationError, type Pool } from '../../lib/index.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';

const PYTHON = '/usr/bin/python3';
const skip = kernelSkipReason() ?? (existsSync(PYTHON) ? undefined : `${PYTHON} is missing (apt-get install python3)`);

const EPERM = 1;
const EACCES = 13;
const ENOENT = 2;

/** Runs inside the sandbox: every way the workload could get hold of PID 1's descriptors. */
const PROBE = String.raw`
import ctypes, json, os
libc = ctypes.CDLL(None, use_errno=True)
out = {}
own = {}
for fd in os.listdir('/proc/self/fd'):
    try:
        own[fd] = os.readlink('/proc/self/fd/' + fd)
    except OSError as e:
        own[fd] = 'errno %d' % e.errno
out['own'] = own
# Root with CAP_DAC_OVERRIDE may list the numbers; what each one is must stay hidden.
try:
    names = os.listdir('/proc/1/fd')
except OSError as e:
    names = []
reached = {}
for name in names + [str(n) for n in range(0, 16)]:
    path = '/proc/1/fd/' + name
    try:
        reached[name] = 'readlink ' + os.readlink(path)
    except OSError as e:
        try:
            os.close(os.open(path, os.O_RDWR))
            reached[name] = 'opened'
        except OSError as e2:
            reached[name] = [e.errno, e2.errno]
out['pid1Fds'] = reached
pidfd = os.pidfd_open(1)
taken = []
for target in range(0, 16):
    got = libc.syscall(438, pidfd, target, 0)  # pidfd_getfd
    if got >= 0:
        taken.append([target, os.readlink('/proc/self/fd/%d' % got)])
    else:
        taken.append([target, ctypes.get_errno()])
out['getfd'] = taken
print(json.dumps(out))
`;

describe('pool: the parked PID 1 control socket is out of the workload reach', { skip, timeout: 120_000 }, () => {
  let root: string;
  let rt: Runtime;
  let pool: Pool;

  before(async () => {
    root = mkdtempSync(join(tmpdir(), 'berth-pool-attack-'));
    rt = await Runtime.open({ root });
    pool = await rt.pool({ source: { host: true }, size: 1 });
  });

  after(async () => {
    await pool?.close();
    await rt?.close();
    if (root) rmSync(root, { recursive: true, force: true });
  });

  test('the workload holds no socket of PID 1 and cannot take one through /proc/1 or pidfd_getfd', async () => {
    const sb = await pool.acquire();
    try {
      const r = await sb.run([PYTHON, '-c', PROBE], { timeout: 30_000 });
      assert.equal(r.exitCode, 0, r.stderr);
      const seen = JSON.parse(r.stdout) as { own: Record<string, string>; pid1Fds: Record<string, string | number[]>; getfd: Array<[number, string | number]> };
      const sockets = Object.entries(seen.own).filter(([, link]) => link.startsWith('socket:'));
      assert.deepEqual(sockets, [], 'the workload inherited a socket');
      const reached = Object.entries(seen.pid1Fds).filter(([, got]) => typeof got === 'string');
      assert.deepEqual(reached, [], "the workload reached PID 1's descriptors through /proc/1/fd");
      for (const [fd, errnos] of Object.entries(seen.pid1Fds)) {
        // Refused by the ptrace check (EACCES), or not there at all (ENOENT): never followed.
        for (const errno of errnos as number[]) assert.ok(errno === EACCES || errno === ENOENT, `/proc/1/fd/${fd}: errno ${errno}`);
      }
      const taken = seen.getfd.filter(([, got]) => typeof got === 'string');
      assert.deepEqual(taken, [], "the workload took PID 1's descriptors with pidfd_getfd");
      // EPERM for every number, open or not: the refusal comes before the descriptor is looked up.
      assert.deepEqual(seen.getfd.map(([, got]) => got), seen.getfd.map(() => EPERM));
    } finally {
      await sb.release();
    }
  });

  test('a pool whose workload would hold CAP_SYS_PTRACE (which passes non-dumpability) is refused', async () => {
    for (const options of [{ capAdd: ['SYS_PTRACE'] }, { capAdd: ['ALL'] }, { privileged: true }]) {
      await assert.rejects(
        rt.pool({ source: { host: true }, size: 1, options }),
        (e: unknown) => e instanceof ValidationError && /CAP_SYS_PTRACE/.test(e.message),
        JSON.stringify(options),
      );
    }
  });
});
