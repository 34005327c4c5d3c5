/**
 * One held user namespace per owner process (lib/rootless/held-userns.ts), as a real
 * unprivileged user: two containers of one runtime share it and still cannot see, signal or
 * read each other; its holder ends with `rt.close()` and dies with an owner killed by SIGKILL;
 * a detached container outlives its owner's holder, and a new owner makes a holder of its own.
 * Runs test/kernel/rootless-shared-userns-child.ts as the user (test/helpers/rootless-user.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasBusybox } from '../helpers/busybox-rootfs.js';
import { RootlessUser, rootlessSkipReason } from '../helpers/rootless-user.js';

const skip = rootlessSkipReason() || (hasBusybox() ? false : 'needs busybox-static');
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-shared-userns-child.ts');

interface Case {
  name: string;
  ok: boolean;
  result?: any;
  error?: { name: string; code?: string; message: string };
}

function parse(stdout: string): Map<string, Case> {
  return new Map(stdout.trim().split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Case).map((c) => [c.name, c]));
}

function ok(c: Case | undefined): any {
  assert.ok(c, 'case did not report');
  assert.equal(c.ok, true, JSON.stringify(c.error));
  return c.result;
}

/** Not a zombie (an exited process waits for init to reap it; it holds nothing but its pid). */
function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function describeProcess(pid: number): string {
  try {
    return `${pid} ${readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ')}`;
  } catch {
    return `${pid} (gone)`;
  }
}

/** The user's processes still running after at most `ms` (a SIGKILL's effects are asynchronous). */
async function leftAfter(user: RootlessUser, ms: number): Promise<string[]> {
  const end = Date.now() + ms;
  for (;;) {
    const left = user.processes().filter(running);
    if (left.length === 0 || Date.now() > end) return left.map(describeProcess);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe('rootless: one held user namespace per owner', { skip }, () => {
  for (const subids of [true, false]) {
    describe(subids ? 'subordinate map (newuidmap)' : 'single-id map', () => {
      let user: RootlessUser;
      let cases: Map<string, Case>;
      before(async () => {
        user = RootlessUser.create({ subids });
        const r = await user.runNode(CHILD, ['isolation', 'holder-close']);
        assert.equal(r.code, 0, `child failed: ${r.stderr}`);
        cases = parse(r.stdout);
      });
      after(() => user?.remove());

      test('two containers of one runtime share the held namespace, yet neither sees, signals or reads the other', () => {
        const r = ok(cases.get('isolation'));
        const [secret, aUserns] = r.a.trim().split('\n');
        assert.equal(secret, 'secret', 'control: A reads its own file');
        assert.ok(r.holder > 0, 'a holder exists while the runtime is open');
        // The setting under test: one user namespace, the holder's.
        assert.equal(aUserns, r.aUserns);
        assert.equal(r.holderUserns, r.aUserns);
        assert.equal(r.b.exitCode, 0, r.b.stderr);
        const b = r.b.stdout as string;
        assert.equal(b.split('\n')[0], r.aUserns, 'B is in the same user namespace');
        const pids = /^pids: (.*)$/m.exec(b)![1]!.trim().split(' ');
        // Its own pid namespace: its shell is 1, its pipeline's commands the next few.
        assert.ok(pids.every((p) => Number(p) < 20), `B sees only its own processes: ${pids.join(' ')}`);
        assert.ok(!pids.includes(String(r.aPid)), "B sees A's host pid");
        assert.doesNotMatch(/^cmdlines: (.*)$/m.exec(b)![1]!, /sleep 300/, "B sees A's process");
        assert.match(b, /No such file/, "A's file is not in B's root");
        assert.match(b, /^found: 0$/m);
        assert.match(b, /kill-host-pid=1/, "B could signal A's host pid");
        assert.equal(r.aAfterB, true, "A survived B's kill -KILL -1 and kill of its host pid");
        assert.equal(r.aExit.signal, 'SIGKILL');
      });

      test('rt.info() names the holder; it ends with rt.close(); the next runtime of the process makes a new one', () => {
        const r = ok(cases.get('holder-close'));
        assert.equal(r.first, 0);
        assert.equal(r.aliveBefore, true);
        assert.equal(r.infoHolder, r.holder, 'rt.info().IdMapping.HeldNamespacePid names the holder');
        assert.equal(r.goneAfterClose, true, `holder ${r.holder} outlived rt.close()`);
        assert.equal(r.second.exitCode, 0, r.second.stderr);
        assert.ok(r.holder2 > 0 && r.holder2 !== r.holder, `a new holder: ${r.holder2}`);
        assert.equal(r.holder2Gone, true, 'the second runtime closed its holder too');
      });

      test('nothing of the user is left after the owner exited', async () => {
        assert.deepEqual(await leftAfter(user, 5000), []);
      });
    });
  }

  describe('owner lifetime', () => {
    let user: RootlessUser;
    before(() => {
      user = RootlessUser.create({ subids: true });
    });
    after(() => user?.remove());

    test('an owner killed by SIGKILL takes its holder and its containers with it', async () => {
      const args = ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--', process.execPath, '--import', 'tsx', CHILD, 'owned'];
      const proc = spawn('/usr/bin/setpriv', args, { cwd: join(dirname(CHILD), '..', '..'), env: user.env(), stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      let err = '';
      proc.stderr.on('data', (d: Buffer) => (err += d));
      const line = await new Promise<string>((resolve, reject) => {
        const guard = setTimeout(() => reject(new Error(`owner did not report: ${err}`)), 120_000);
        proc.stdout.on('data', (d: Buffer) => {
          out += d;
          if (out.includes('\n')) {
            clearTimeout(guard);
            resolve(out.split('\n')[0]!);
          }
        });
        proc.once('exit', () => reject(new Error(`owner exited: ${err}`)));
      });
      const r = ok(JSON.parse(line) as Case);
      assert.ok(running(r.holder) && running(r.container), 'holder and container run while the owner does');
      // setpriv execs node: its pid is the owner's.
      process.kill(proc.pid!, 'SIGKILL');
      assert.deepEqual(await leftAfter(user, 10_000), []);
    });

    test('a detached container outlives its owner and its holder; a new owner makes its own holder', async () => {
      const first = await user.runNode(CHILD, ['detached-start']);
      assert.equal(first.code, 0, first.stderr);
      const d = ok(parse(first.stdout).get('detached-start'));
      assert.ok(d.holder > 0);
      assert.equal(running(d.holder), false, 'the first owner exited: its holder is gone');
      assert.equal(running(d.pid), true, 'the detached container still runs');
      const second = await user.runNode(CHILD, ['detached-after']);
      assert.equal(second.code, 0, second.stderr);
      const a = ok(parse(second.stdout).get('detached-after'));
      assert.equal(a.running, true);
      assert.equal(a.userns, d.userns, 'the detached container kept its namespace');
      assert.equal(a.fresh.exitCode, 0, a.fresh.stderr);
      assert.notEqual(a.fresh.stdout.trim(), d.userns, 'the new owner runs in a namespace of its own');
      assert.deepEqual(await leftAfter(user, 10_000), []);
    });
  });
});
