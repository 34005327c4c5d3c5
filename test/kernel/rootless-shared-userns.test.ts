/**
 * One held user namespace per owner process (lib/rootless/held-userns.ts), as a real
 * unprivileged user: two containers of one runtime share it and still cannot see, signal or
 * read each other; its holder ends with `rt.close()` and dies with an owner killed by SIGKILL;
 * a detached container outlives its owner's holder, and a new owner makes a holder of its own.
 * Runs test/kernel/rootless-shared-userns-child.ts as the user (test/helpers/rootless-user.ts).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasBusybox } from '../helpers/busybox-rootfs.js';
import { RootlessUser, rootlessSkipReason } from '../helpers/rootless-user.js';
import { ok, parseCases as parse, runUserCases, type Case } from '../helpers/case-report.js';
import { leftAfter, running } from '../helpers/leftovers.js';
import { startOwner } from '../helpers/rootless-owner.js';

const skip = rootlessSkipReason() || (hasBusybox() ? false : 'needs busybox-static');
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-shared-userns-child.ts');

describe('rootless: one held user namespace per owner', { skip }, () => {
  for (const subids of [true, false]) {
    describe(subids ? 'subordinate map (newuidmap)' : 'single-id map', () => {
      let user: RootlessUser;
      let cases: Map<string, Case>;
      before(async () => {
        user = RootlessUser.create({ subids });
        cases = await runUserCases(user, CHILD, ['isolation', 'holder-close']);
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
      const owner = await startOwner(user, CHILD, ['owned']);
      const r = ok(JSON.parse(owner.line) as Case);
      assert.ok(running(r.holder) && running(r.container), 'holder and container run while the owner does');
      await owner.kill();
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
