/**
 * The rootless program of rootless-userns-helper.test.ts: runs as the unprivileged test user
 * and prints one JSON line per case, `{ name, ok, result | error }`; the parent (root) asserts
 * and checks the user's processes. Usage: rootless-userns-helper-child.ts <image ref> <case>...
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Runtime, isBerthError } from '../../lib/index.js';
import { UsernsHelper } from '../../lib/rootless/userns-helper.js';
import { reportCases, type Cases } from '../helpers/case-report.js';

const [ref, ...cases] = process.argv.slice(2) as [string, ...string[]];
const home = process.env['HOME']!;

/** Whether `pid` names a process now, zombies included (an unreaped child would be one). */
function exists(pid: number): boolean {
  return existsSync(`/proc/${pid}`);
}

/** The helper's pid, as the store's owner namespace reports it. */
function helperPid(rt: Runtime): number | undefined {
  return helperOf(rt)?.pid;
}

function helperOf(rt: Runtime): UsernsHelper | undefined {
  return rt.images.store.ownerNamespace as UsernsHelper | undefined;
}

/** Polls `cond` every 50 ms for at most `limitMs` (a bound against a hang, not a timing check). */
async function waitFor(cond: () => boolean, limitMs = 30_000): Promise<boolean> {
  for (const end = Date.now() + limitMs; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (cond()) return true;
  return cond();
}

const all: Cases = {
  /** Every layer of a pull, an unpack and a removal: the one helper, gone (and reaped) after close(). */
  'one-helper': async () => {
    const rt = await Runtime.open({ root: mkdtempSync(join(home, 'store-')) });
    const atDone: Array<number | undefined> = [];
    const img = await rt.images.pull(ref, { onProgress: (e) => void (e.state === 'done' && atDone.push(helperPid(rt))) });
    const dest = join(mkdtempSync(join(home, 'unpack-')), 'rootfs');
    await rt.images.unpack(ref, dest);
    const afterUnpack = helperPid(rt);
    await rt.images.remove(img.id, { force: true });
    const afterRemove = helperPid(rt);
    const ownedBy33 = execFileSync('stat', ['-c', '%u', join(dest, 'srv/owned')], { encoding: 'utf8' }).trim();
    const helper = helperOf(rt)!;
    await rt.close();
    return { layers: img.layers.length, atDone, afterUnpack, afterRemove, afterClose: helper.pid, existsAfterClose: atDone[0] !== undefined && exists(atDone[0]), ownedBy33 };
  },
  /** An idle helper ends by itself (reaped: no zombie) and the next request starts another. */
  idle: async () => {
    const h = new UsernsHelper({ idleMs: 200 });
    await h.removeTrees([join(home, 'no-such-tree')]);
    const first = h.pid!;
    const ended = await waitFor(() => h.pid === undefined && !exists(first));
    await h.removeTrees([join(home, 'no-such-tree')]);
    const second = h.pid;
    await h.close();
    return { first, ended, second, secondGone: second !== undefined && !exists(second) };
  },
  /**
   * A request in flight when the helper dies fails with a typed error naming the exit; the next
   * request gets a new helper. The request stays in flight for sure: its blob is a FIFO nobody writes.
   */
  crash: async () => {
    const h = new UsernsHelper();
    await h.removeTrees([join(home, 'no-such-tree')]);
    const first = h.pid!;
    const dir = mkdtempSync(join(home, 'crash-'));
    const fifo = join(dir, 'blob');
    execFileSync('mkfifo', [fifo]);
    mkdirSync(join(dir, 'layer'));
    const pending = h.stageLayer({ blob: fifo, mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: `sha256:${'0'.repeat(64)}`, chainId: `sha256:${'1'.repeat(64)}`, dir: join(dir, 'layer'), lowerDirs: [], maxSize: 1 << 20 });
    const failed = pending.then(() => undefined, (e: Error & { code?: string }) => ({ code: e.code, message: e.message, berth: isBerthError(e) }));
    process.kill(first, 'SIGKILL');
    const error = await failed;
    await h.removeTrees([join(dir, 'layer')]);
    const second = h.pid;
    await h.close();
    return { error, first, second, removed: !existsSync(join(dir, 'layer')) };
  },
  /** A runtime used and never closed: the program still ends when its work is done. */
  'no-close': async () => {
    const rt = await Runtime.open({ root: mkdtempSync(join(home, 'store-')) });
    await rt.images.pull(ref);
    return { pid: helperPid(rt) };
  },
  /** Prints the helper's pid, then dies by SIGKILL: the helper must not outlive it. */
  'owner-killed': async () => {
    const rt = await Runtime.open({ root: mkdtempSync(join(home, 'store-')) });
    await rt.images.pull(ref);
    console.log(JSON.stringify({ name: 'owner-killed', ok: true, result: { pid: helperPid(rt), status: readFileSync(`/proc/${helperPid(rt)}/status`, 'utf8').match(/^NoNewPrivs:\s*(\d)/m)?.[1] } }));
    process.kill(process.pid, 'SIGKILL');
    return null;
  },
};

await reportCases(all, cases);
