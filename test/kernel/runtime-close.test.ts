/**
 * `rt.close()` / `Symbol.asyncDispose`, and the promise behind them: nothing berth holds
 * (timers, watchers, subscriptions, pending restarts, the addon's handles) keeps Node's event
 * loop alive once no `'process'` container runs. A child process uses a runtime as a harness
 * does and must then exit by itself; the time from its last call to its exit is reported,
 * and the only bound is a hang guard (no timing assertion).
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ConflictError, isBerthError } from '../../lib/errors.js';
import { Runtime } from '../../lib/runtime.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';
import { networkSkipReason, removeRootNetworkObjects } from '../helpers/network-fixture.js';

const skip = networkSkipReason();
const here = dirname(fileURLToPath(import.meta.url));
/** Only a guard against a hang: the child is killed (and the test fails) past it. */
const HANG_GUARD_MS = 120_000;

interface ChildOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  killedByGuard: boolean;
  report: Record<string, unknown>;
  exitedAt: number;
  stderr: string;
}

function runChild(root: string, mode: 'close' | 'idle'): Promise<ChildOutcome> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, ['--import', 'tsx', join(here, 'runtime-close-child.ts'), root, busyboxRootfs(), mode], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killedByGuard = false;
    proc.stdout.on('data', (d) => (stdout += d));
    proc.stderr.on('data', (d) => (stderr += d));
    const guard = setTimeout(() => {
      killedByGuard = true;
      proc.kill('SIGKILL');
    }, HANG_GUARD_MS);
    proc.on('error', reject);
    proc.on('exit', (code, signal) => {
      const exitedAt = Date.now();
      clearTimeout(guard);
      proc.on('close', () => {
        const line = stdout.trim().split('\n').pop() ?? '';
        let report: Record<string, unknown> = {};
        try {
          report = JSON.parse(line) as Record<string, unknown>;
        } catch {
          // reported through the assertions below, with stderr
        }
        resolve({ code, signal, killedByGuard, report, exitedAt, stderr });
      });
    });
  });
}

describe('Runtime.close() and an idle event loop', { skip }, () => {
  let root: string;
  before(() => {
    root = mkdtempSync(join(tmpdir(), 'berth-close-'));
  });
  after(async () => {
    await removeRootNetworkObjects(root);
    rmSync(root, { recursive: true, force: true });
  });

  for (const mode of ['idle', 'close'] as const) {
    test(`a child that ${mode === 'close' ? 'closes its runtime' : 'stops calling berth'} exits by itself`, async (t) => {
      const out = await runChild(root, mode);
      assert.equal(out.killedByGuard, false, `the child was still alive ${HANG_GUARD_MS} ms later: something berth holds keeps its event loop alive`);
      assert.equal(out.signal, null, out.stderr);
      assert.equal(out.code, 0, out.stderr);
      assert.equal(typeof out.report.lastCallAt, 'number', `no report: ${out.stderr}`);
      t.diagnostic(`exited ${out.exitedAt - (out.report.lastCallAt as number)} ms after its last call (${mode})`);
      assert.ok((out.report.events as number) > 0, 'the subscription saw the containers\' events');
      // Node's own list of what keeps its loop alive, right after the last call: the child's
      // stdio pipes at most, nothing of berth's (a pending timer shows as 'Timeout').
      const alive = (out.report.keepingAlive as string[]).filter((r) => r !== 'PipeWrap' && r !== 'TTYWrap');
      assert.deepEqual(alive, [], `still keeping the loop alive after the last call: ${alive.join(', ')}`);
      if (mode === 'close') {
        assert.equal(out.report.closedTwice, true);
        assert.equal(out.report.afterClose, 'ConflictError');
        assert.equal(out.report.flakyStatus, 'exited', 'close() cancelled the pending policy restart');
        assert.equal(out.report.flakyRestartedAfterClose, false);
      }
    });
  }

  test('in process: close() is idempotent, asyncDispose closes, every use afterwards is a ConflictError', async () => {
    const rt = await Runtime.open({ root });
    const first = rt.close();
    assert.equal(rt.close(), first);
    await first;
    for (const use of [() => rt.images, () => rt.containers, () => rt.volumes, () => rt.networks, () => rt.events()]) {
      assert.throws(use, (e: unknown) => isBerthError(e) && e instanceof ConflictError && e.message.includes(root));
    }
    await assert.rejects(rt.run({ rootfs: busyboxRootfs() }, ['true']), (e: unknown) => isBerthError(e) && e instanceof ConflictError);
    const disposable = await Runtime.open({ root });
    await disposable[Symbol.asyncDispose]();
    assert.throws(() => disposable.containers, ConflictError);
  });
});
