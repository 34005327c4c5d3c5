/**
 * The rootless program of rootless-shared-userns.test.ts: runs as the unprivileged test user and
 * prints one JSON line per case `{ name, ok, result | error }`; the parent asserts.
 * Usage: rootless-shared-userns-child.ts <case>... (`owned` and `detached-start` print their
 * line, then stay until killed / exit leaving a detached container).
 */
import { readlinkSync } from 'node:fs';
import { once } from 'node:events';
import { Runtime } from '../../lib/index.js';
import { heldUsernsPid } from '../../lib/rootless/index.js';
import { reportCases, type Cases } from '../helpers/case-report.js';
import { running, untilGone } from '../helpers/leftovers.js';
import { userBusyboxRootfs } from '../helpers/user-busybox-rootfs.js';

const source = { rootfs: userBusyboxRootfs() };

function alive(pid: number | undefined): boolean {
  return pid !== undefined && running(pid);
}

/** Waits (bounded) for a process to be gone: an exit is asynchronous to the call that caused it. */
async function gone(pid: number | undefined, ms = 5000): Promise<boolean> {
  return pid === undefined || (await untilGone([pid], ms)).length === 0;
}

/** What B runs: every way it could look at or signal A, given A's host pid. */
const PROBE = [
  'readlink /proc/self/ns/user',
  'echo pids: $(ls /proc | grep -E "^[0-9]+$" | tr "\\n" " ")',
  'echo cmdlines: $(for p in $(ls /proc | grep -E "^[0-9]+$"); do tr "\\0" " " < /proc/$p/cmdline 2>/dev/null; echo "|"; done)',
  'cat /tmp/secret-a 2>&1 | head -1',
  'echo found: $(find / -xdev -name secret-a 2>/dev/null | wc -l)',
  'kill -KILL $APID 2>&1; echo kill-host-pid=$?',
  'ls /proc/$APID/root/tmp 2>&1 | head -1',
  'kill -KILL -1 2>&1; echo kill-all=$?',
].join('; ');

const all: Cases = {
  isolation: async () => {
    const rt = await Runtime.open();
    try {
      const a = rt.spawn(source, ['sh', '-c', 'echo secret > /tmp/secret-a; cat /tmp/secret-a; readlink /proc/self/ns/user; echo ready; exec sleep 300']);
      let out = '';
      a.stdout.setEncoding('utf8');
      await new Promise<void>((resolve, reject) => {
        a.stdout.on('data', (d: string) => {
          out += d;
          if (out.includes('ready\n')) resolve();
        });
        a.exited.then((e) => reject(new Error(`A exited early: ${JSON.stringify(e)} ${out}`)), reject);
      });
      const holder = heldUsernsPid();
      const b = await rt.run(source, ['sh', '-c', PROBE], { env: { APID: String(a.pid) } });
      const aAfterB = alive(a.pid);
      const aUserns = readlinkSync(`/proc/${a.pid}/ns/user`);
      const holderUserns = holder ? readlinkSync(`/proc/${holder}/ns/user`) : undefined;
      a.kill('SIGKILL');
      const aExit = await a.exited;
      return { a: out, aPid: a.pid, b, aAfterB, aUserns, holder, holderUserns, aExit };
    } finally {
      await rt.close();
    }
  },
  'holder-close': async () => {
    const rt = await Runtime.open();
    const first = await rt.run(source, ['true']);
    const holder = heldUsernsPid();
    const aliveBefore = alive(holder);
    const infoHolder = (await rt.info()).IdMapping.HeldNamespacePid;
    await rt.close();
    const goneAfterClose = await gone(holder);
    // A new runtime of the same process makes a new holder.
    const rt2 = await Runtime.open();
    let second;
    let holder2;
    try {
      second = await rt2.run(source, ['sh', '-c', 'readlink /proc/self/ns/user']);
      holder2 = heldUsernsPid();
    } finally {
      await rt2.close();
    }
    return { first: first.exitCode, holder, infoHolder, aliveBefore, goneAfterClose, second, holder2, holder2Gone: await gone(holder2) };
  },
  owned: async () => {
    const rt = await Runtime.open();
    const c = rt.spawn(source, ['sleep', '300']);
    await c.spawned;
    console.log(JSON.stringify({ name: 'owned', ok: true, result: { holder: heldUsernsPid(), container: c.pid } }));
    await once(process, 'SIGTERM');
    return {};
  },
  'detached-start': async () => {
    const rt = await Runtime.open();
    const c = await rt.containers.create({ image: source, cmd: ['sleep', '300'], lifetime: 'detached', name: 'rl-detached' });
    await c.start();
    const info = await c.inspect();
    const holder = heldUsernsPid();
    if (!alive(info.State.Pid)) {
      const logs: string[] = [];
      for await (const line of c.logs()) logs.push(line.text);
      throw new Error(`the detached container is not running: ${JSON.stringify(info.State)} ${logs.join('')}`);
    }
    await rt.close();
    return { pid: info.State.Pid, holder, userns: readlinkSync(`/proc/${info.State.Pid}/ns/user`) };
  },
  'detached-after': async () => {
    // A new owner process: the detached container still runs in the old namespace (its holder
    // died with the first process); this process makes a holder of its own.
    const rt = await Runtime.open();
    try {
      const c = await rt.containers.get('rl-detached');
      const before = await c.inspect();
      const userns = readlinkSync(`/proc/${before.State.Pid}/ns/user`);
      const fresh = await rt.run(source, ['sh', '-c', 'readlink /proc/self/ns/user']);
      await c.remove({ force: true });
      return { running: before.State.Running, pid: before.State.Pid, userns, fresh, holder: heldUsernsPid() };
    } finally {
      await rt.close();
    }
  },
};

await reportCases(all, process.argv.slice(2));
