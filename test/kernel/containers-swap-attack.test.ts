/**
 * Attack (issue 10, item 13): export(), diff() and commit() read a *running* container's upper
 * dir on the host. The container swaps names there between a regular file, a FIFO, a character
 * device (c 1 5, /dev/zero's numbers) and a symlink to a host secret, so that an entry berth saw
 * as a regular file is something else by the time berth opens it. Opening a device on the host
 * runs its driver (a disk, a tty); opening a FIFO can wait forever for a writer.
 *
 * Detection is the kernel's: an inotify IN_OPEN watch (a small python3 ctypes helper) on the
 * FIFO's and the device's inodes, which the container hard-links under the swapped names. Any
 * open(2) of those inodes on the host, through any name, is counted; the container itself never
 * opens them. An O_PATH open (which opens nothing) makes no event on Linux >= 6.5; the helper
 * checks that first. A regular file's count is the control that the watch sees berth's opens.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { eventually, openFixture, type Fixture } from '../helpers/containers-fixture.js';

const skip = kernelSkipReason() || (existsSync('/usr/bin/python3') ? false : 'needs /usr/bin/python3 (the inotify watcher)');

const WATCHER = String.raw`
import ctypes, json, os, select, struct, sys
libc = ctypes.CDLL(None, use_errno=True)
IN_OPEN = 0x20
fd = libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
if fd < 0: raise OSError(ctypes.get_errno(), 'inotify_init1')
paths = sys.argv[1:]
wds = {}
for p in paths:
    wd = libc.inotify_add_watch(fd, p.encode(), IN_OPEN)
    if wd < 0: raise OSError(ctypes.get_errno(), p)
    wds[wd] = p
counts = {p: 0 for p in paths}
def drain():
    while True:
        try: buf = os.read(fd, 65536)
        except BlockingIOError: return
        i = 0
        while i < len(buf):
            wd, mask, cookie, ln = struct.unpack_from('iIII', buf, i)
            if mask & IN_OPEN and wd in wds: counts[wds[wd]] += 1
            i += 16 + ln
o = os.open(paths[0], os.O_PATH | os.O_NOFOLLOW); os.close(o)
drain()
opath = counts[paths[0]]
counts[paths[0]] = 0
print(json.dumps({'ready': True, 'opathEvents': opath}), flush=True)
while True:
    r, _, _ = select.select([fd, sys.stdin], [], [])
    if fd in r: drain()
    if sys.stdin in r and not sys.stdin.buffer.read1(4096): break
drain()
print(json.dumps({'counts': counts}), flush=True)
`;

const VICTIMS = 8;
const FILLERS = 300;
const ROUNDS = { export: 16, diff: 16, commit: 4 };
/** Far more than any of these operations takes; a FIFO open that waits would hang forever. */
const DEADLINE_MS = 30_000;

function withDeadline<T>(what: string, p: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${DEADLINE_MS} ms: blocked on a swapped entry?`)), DEADLINE_MS);
  });
  return Promise.race([p, limit]).finally(() => clearTimeout(timer));
}

describe('export/diff/commit of a container that swaps files for devices, FIFOs and symlinks', { skip }, () => {
  let f: Fixture;
  let secretDir: string;
  const marker = `berth-host-secret-${process.pid}-${Date.now()}`;

  before(async () => {
    f = await openFixture('berth-swap-');
    secretDir = mkdtempSync(join(tmpdir(), 'berth-swap-secret-'));
    writeFileSync(join(secretDir, 'secret'), `${marker}\n`);
  });
  after(async () => {
    await f.cleanup();
    rmSync(secretDir, { recursive: true, force: true });
  });

  test('no device or FIFO is opened on the host, nothing blocks, no host file is read', async (t) => {
    const secret = join(secretDir, 'secret');
    // Fillers sort before the victims in /v: the merged export lists a directory, then writes
    // each entry, so a victim's lstat and its open are a whole directory's worth apart.
    const script = [
      'mkdir /v',
      `i=0; while [ $i -lt ${FILLERS} ]; do : > /v/a$i; i=$((i+1)); done`,
      'echo regular > /reg0 && mkfifo /fifo0 && mknod /dev0 c 1 5',
      'touch /ready',
      // Each victim flips between the regular file and one other kind: half of the time it is
      // seen as a regular file, half of the time it is the other thing when berth opens it.
      // A fresh regular file each time (a hard link of one would be archived as a link, unopened).
      `swap() { n=0; while [ $n -lt 40000 ]; do rm -f $1; echo x > $1; $2 $1; n=$((n+1)); done; }`,
      `for k in $(seq 0 ${VICTIMS - 1}); do`,
      `  case $((k % 4)) in 0|1) swap /v/z$k 'ln -f /dev0';; 2) swap /v/z$k 'ln -f /fifo0';; 3) swap /v/z$k 'ln -sf ${secret}';; esac &`,
      'done',
      'wait',
    ].join('\n');
    const c = await f.sh(script);
    await c.start();
    const upper = join(f.root, 'containers', c.id, 'upper');
    assert.ok(await eventually(() => existsSync(join(upper, 'ready')), 20_000), 'the container never got ready');

    const watcher: ChildProcessWithoutNullStreams = spawn('/usr/bin/python3', ['-c', WATCHER, join(upper, 'dev0'), join(upper, 'fifo0'), join(upper, 'reg0')]);
    const lines = createInterface({ input: watcher.stdout })[Symbol.asyncIterator]();
    let stderr = '';
    watcher.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    try {
      const hello = await lines.next();
      assert.ok(!hello.done, `the inotify watcher failed: ${stderr}`);
      const { opathEvents } = JSON.parse(hello.value as string) as { opathEvents: number };

      let exported = 0;
      for (let i = 0; i < ROUNDS.export; i++) {
        await withDeadline('export()', (async () => {
          for await (const chunk of c.export()) {
            const buf = chunk as Buffer;
            exported += buf.length;
            assert.ok(!buf.includes(marker), 'export() returned the content of a host file');
            // Let the container run between entries, as a slow consumer would.
            await new Promise((r) => setImmediate(r));
          }
        })());
      }
      for (let i = 0; i < ROUNDS.diff; i++) await withDeadline('diff()', c.diff());
      for (let i = 0; i < ROUNDS.commit; i++) await withDeadline('commit()', c.commit({ pause: false }));
      assert.ok((await c.inspect()).State.Running, 'the container kept swapping throughout');

      watcher.stdin.end();
      const last = await withDeadline('the watcher', lines.next());
      assert.ok(!last.done, `the inotify watcher died: ${stderr}`);
      const { counts } = JSON.parse(last.value as string) as { counts: Record<string, number> };
      const [dev0, fifo0, reg0] = ['dev0', 'fifo0', 'reg0'].map((n) => counts[join(upper, n)]!);
      t.diagnostic(`exported ${exported} bytes; opens seen: device ${dev0}, FIFO ${fifo0}, regular ${reg0}`);
      assert.ok(reg0! > 0, 'control: the watch saw none of berth\'s opens of a regular file');
      if (opathEvents > 0) {
        t.skip('this kernel reports O_PATH opens to inotify (Linux < 6.5): cannot tell a pinned inode from an opened one');
        return;
      }
      assert.equal(dev0, 0, 'berth opened the container\'s character device on the host');
      assert.equal(fifo0, 0, 'berth opened the container\'s FIFO on the host');
    } finally {
      watcher.kill('SIGKILL');
      await c.remove({ force: true });
    }
  });
});
