/**
 * Attack test for the parked PID 1's control socket (src-native/park-main.cc). PID 1 waits for
 * the command on it and then becomes the command; whoever holds the socket's sandbox end
 * speaks for PID 1: it can forge PID 1's reports to Node (a made-up "not found" or setup error
 * instead of the command's real result) and keep the sandbox's exec from ever being seen as
 * done. The command must not hold it: PID 1 keeps it close-on-exec, so the command's own
 * execve closes it (FinishAndExec closes every other descriptor before the workdir).
 *
 * The command runs as the sandbox's root with the default capabilities (the strongest a
 * default pool hands out), looks for any socket among its descriptors and writes a forged
 * failure report into each one it finds, then exits 0. Against a PID 1 whose control socket
 * survives exec (F_DUPFD instead of F_DUPFD_CLOEXEC in park-main.cc) the socket shows up and the
 * forged report turns the result into a 127: both assertions fail.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Runtime, type Pool } from '../../lib/index.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';

const PYTHON = '/usr/bin/python3';
const skip = kernelSkipReason() ?? (existsSync(PYTHON) ? undefined : `${PYTHON} is missing (apt-get install python3)`);

/** Runs inside the sandbox as the pooled command. */
const PROBE = String.raw`
import json, os, socket, struct
own = {}
for fd in os.listdir('/proc/self/fd'):
    try:
        own[fd] = os.readlink('/proc/self/fd/' + fd)
    except OSError as e:
        own[fd] = 'errno %d' % e.errno
forged = []
for fd, link in own.items():
    if not link.startswith('socket:'):
        continue
    # A ChildReport (process-setup.h): kind 2 (not found), errno ENOENT, syscall, path.
    report = struct.pack('=ii32s1024s', 2, 2, b'execve', b'/forged')
    try:
        s = socket.socket(fileno=int(fd))
        s.send(report)
        s.detach()
        forged.append(fd)
    except OSError as e:
        forged.append('%s: errno %d' % (fd, e.errno))
print(json.dumps({'own': own, 'forged': forged}))
`;

describe('pool: the parked PID 1 control socket is out of the command reach', { skip, timeout: 120_000 }, () => {
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

  test('the command holds no socket of PID 1, and its result is its own', async () => {
    const sb = await pool.acquire();
    try {
      const r = await sb.run([PYTHON, '-c', PROBE], { timeout: 30_000 });
      assert.equal(r.exitCode, 0, `the result was not the command's own: ${r.stderr}`);
      const seen = JSON.parse(r.stdout) as { own: Record<string, string>; forged: string[] };
      const sockets = Object.entries(seen.own).filter(([, link]) => link.startsWith('socket:'));
      assert.deepEqual(sockets, [], 'the command inherited a socket');
      assert.deepEqual(seen.forged, []);
    } finally {
      await sb.release();
    }
  });
});
