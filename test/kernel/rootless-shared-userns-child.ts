/**
 * The rootless program of rootless-shared-userns.test.ts: runs as the unprivileged test user and
 * prints one JSON line per case `{ name, ok, result | error }`; the parent asserts.
 * Usage: rootless-shared-userns-child.ts <case>... (`owned` and `detached-start` print their
 * line, then stay until killed / exit leaving a detached container).
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { once } from 'node:events';
import { Runtime } from '../../lib/index.js';
import { heldUsernsPid } from '../../lib/rootless/index.js';

function ownBusyboxRootfs(): string {
  const root = mkdtempSync(join(process.env['HOME']!, 'rootfs-'));
  for (const d of ['bin', 'dev', 'etc', 'proc', 'sys', 'tmp', 'root', 'var', 'run']) mkdirSync(join(root, d), { recursive: true });
  copyFileSync('/bin/busybox', join(root, 'bin/busybox'));
  for (const applet of execFileSync('/bin/busybox', ['--list'], { encoding: 'utf8' }).split('\n').filter(Boolean)) {
    if (applet !== 'busybox') symlinkSync('busybox', join(root, 'bin', applet));
  }
  writeFileSync(join(root, 'etc/passwd'), 'root:x:0:0:root:/root:/bin/sh\n');
  writeFileSync(join(root, 'etc/group'), 'root:x:0:\n');
  return root;
}

const source = { rootfs: ownBusyboxRootfs() };

function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

/** Waits (bounded) for a process to be gone: an exit is asynchronous to the call that caused it. */
async function gone(pid: number | undefined, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (alive(pid)) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
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

async function report(name: string, body: () => Promise<unknown>): Promise<void> {
  try {
    console.log(JSON.stringify({ name, ok: true, result: await body() }));
  } catch (error) {
    const e = error as Error & { code?: string };
    console.log(JSON.stringify({ name, ok: false, error: { name: e.name, code: e.code, message: e.message } }));
  }
}

const all: Record<string, () => Promise<unknown>> = {
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

for (const name of process.argv.slice(2)) {
  const body = all[name];
  if (!body) throw new Error(`unknown case ${name}`);
  await report(name, body);
}
