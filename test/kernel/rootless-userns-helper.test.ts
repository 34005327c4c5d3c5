/**
 * The rootless unpack helper's lifetime (issue 15, lib/rootless/userns-helper.ts): one helper
 * process serves every layer of a pull, the unpack and the removal after it; it ends at
 * `rt.close()`, when idle, with its owner (killed by SIGKILL), and never keeps a program that
 * did not close its runtime alive; a request in flight when it dies fails typed and the next
 * one starts another. As a real unprivileged user (test/helpers/rootless-user.ts) pulling the
 * fixture image from the test's loopback registry. At the end nothing of the user is left.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { RootlessUser, rootlessSkipReason } from '../helpers/rootless-user.js';
import { ok, parseCases as parse, runUserCases, type Case } from '../helpers/case-report.js';
import { describeProcess } from '../helpers/leftovers.js';
import { registryToolsMissing, tempDir, type TestRegistry } from '../helpers/registry.js';
import { serveFixtureImage } from '../helpers/fixture-registry.js';

const skip = rootlessSkipReason() || registryToolsMissing() || false;
const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-userns-helper-child.ts');

/** Polls every 50 ms for at most `limitMs` (a bound against a hang, not a timing check). */
async function waitFor(cond: () => boolean, limitMs = 30_000): Promise<boolean> {
  for (const end = Date.now() + limitMs; Date.now() < end; await new Promise((r) => setTimeout(r, 50))) if (cond()) return true;
  return cond();
}

let registry: TestRegistry;
let work: { path: string; remove: () => void };
let ref: string;

before(async () => {
  if (skip) return;
  work = tempDir('berth-rlhelper-');
  ({ registry, ref } = await serveFixtureImage(work.path));
});

after(async () => {
  await registry?.stop();
  work?.remove();
});

describe('rootless unpack helper: one process, bounded lifetime', { skip }, () => {
  let user: RootlessUser;
  let cases: Map<string, Case>;
  before(async () => {
    user = RootlessUser.create({ subids: true });
    cases = await runUserCases(user, CHILD, [ref, 'one-helper', 'idle', 'crash'], { guardMs: 300_000 });
  });
  after(() => user?.remove());

  test('every layer of a pull, the unpack and the removal are served by one helper, gone after rt.close()', () => {
    const r = ok(cases.get('one-helper'));
    assert.equal(r.layers, 3);
    assert.equal(r.atDone.length, 3);
    assert.equal(typeof r.atDone[0], 'number');
    assert.deepEqual(new Set([...r.atDone, r.afterUnpack, r.afterRemove]), new Set([r.atDone[0]]), 'one helper pid throughout');
    assert.equal(r.afterClose, undefined);
    assert.equal(r.existsAfterClose, false, 'the helper (or its zombie) is still there after close()');
    // The unpack copied the stored layer dirs inside the namespace: id 33 is the range's 33rd id.
    assert.equal(Number(r.ownedBy33), user.subuid!.start + 32);
  });

  test('an idle helper ends by itself and is reaped; the next request starts another', () => {
    const r = ok(cases.get('idle'));
    assert.equal(r.ended, true, 'the idle helper did not end');
    assert.equal(typeof r.second, 'number');
    assert.notEqual(r.second, r.first);
    assert.equal(r.secondGone, true);
  });

  test('a request in flight when the helper is killed fails with a typed error naming the exit; the next request gets a new helper', () => {
    const r = ok(cases.get('crash'));
    assert.ok(r.error, 'the request did not fail');
    assert.equal(r.error.berth, true);
    assert.equal(r.error.code, 'ERR_ROOTLESS_HELPER');
    assert.match(r.error.message, /exited \(signal 9\) before it answered/);
    assert.notEqual(r.second, r.first);
    assert.equal(r.removed, true);
  });

  test('a program that never closes its runtime still ends, and leaves no helper', async () => {
    const r = await user.runNode(CHILD, [ref, 'no-close'], { guardMs: 120_000 });
    assert.equal(r.code, 0, `the program did not end by itself (killed by the guard?): ${r.signal} ${r.stderr}`);
    const pid = ok(parse(r.stdout).get('no-close')).pid;
    assert.equal(typeof pid, 'number');
    assert.ok(await waitFor(() => !existsSync(`/proc/${pid}`)), `the helper outlived its owner: ${describeProcess(pid)}`);
  });

  test('an owner killed by SIGKILL takes its helper along (confined: no_new_privs)', async () => {
    const r = await user.runNode(CHILD, [ref, 'owner-killed'], { guardMs: 120_000 });
    assert.equal(r.signal, 'SIGKILL');
    const { pid, status } = ok(parse(r.stdout).get('owner-killed'));
    assert.equal(typeof pid, 'number');
    assert.equal(status, '1');
    assert.ok(await waitFor(() => !existsSync(`/proc/${pid}`)), `the helper outlived its owner: ${describeProcess(pid)}`);
  });

  test('nothing of the user is left', () => {
    assert.deepEqual(user.processes().map(describeProcess), []);
  });
});
