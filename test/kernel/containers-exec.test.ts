/**
 * exec() as an attacker inside the container sees it (the hostile-code issue, item 1): no
 * process that shares the Node process's memory or descriptors is ever visible in the
 * container, and nothing the container does to the processes it can see blocks a libuv
 * worker thread.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { AbortError } from '../../lib/errors.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { openFixture, zombieChildrenOf, type Fixture } from '../helpers/containers-fixture.js';

const skip = kernelSkipReason();
const SCANNER_SOURCE = join(import.meta.dirname, '../fixtures/attacks/proc-scanner.c');

/** A marker only this Node process's initial environment holds (NODE_TEST_CONTEXT under `node --test`). */
function nodeEnvMarker(): string {
  const entries = readFileSync('/proc/self/environ', 'utf8').split('\0').filter(Boolean);
  const own = entries.find((e) => e.startsWith('NODE_TEST_CONTEXT=')) ??
    entries.find((e) => !/^(PATH|HOME|HOSTNAME|TERM|container)=/.test(e));
  assert.ok(own, 'this test needs at least one environment variable of its own');
  return own;
}

/** The longest argument of this process's command line (the test file's path). */
function nodeCmdlineMarker(): string {
  const args = readFileSync('/proc/self/cmdline', 'utf8').split('\0').filter(Boolean);
  return args.reduce((a, b) => (b.length > a.length ? b : a));
}

describe('exec: the container never reaches the Node process', { skip }, () => {
  let f: Fixture;
  let dir: string;
  let scanner: string;
  before(async () => {
    f = await openFixture();
    dir = mkdtempSync(join(tmpdir(), 'berth-exec-attack-'));
    scanner = join(dir, 'proc-scanner');
    execFileSync('gcc', ['-static', '-O2', '-o', scanner, SCANNER_SOURCE]);
  });
  after(async () => {
    await f.cleanup();
    rmSync(dir, { recursive: true, force: true });
  });

  test("a /proc scanner in the container never reads Node's environ, cmdline, maps, mem or fds while 1500 execs run", async () => {
    // A file only Node holds open: if any process the container can see has it, Node's fd
    // table reached the container.
    const secret = join(dir, `node-only-secret-${process.pid}`);
    const secretFd = openSync(secret, 'w');
    try {
      const c = await f.create(['/scanner', process.execPath, nodeCmdlineMarker(), nodeEnvMarker(), secret], {
        mounts: [{ type: 'bind', source: scanner, target: '/scanner', readonly: true }],
      });
      await c.start();
      await c.waitForLog(/ready/, { timeout: 10_000 });
      const execs = 1500;
      let failures = 0;
      // Two at a time, as a health-checking harness would.
      for (let i = 0; i < execs; i += 2) {
        const rs = await Promise.all([c.exec(['true']), c.exec(['true'])]);
        failures += rs.filter((r) => r.exitCode !== 0).length;
      }
      assert.equal(failures, 0);
      await c.exec(['touch', '/tmp/stop']);
      const exit = await c.wait();
      const out = await c.logs({ stderr: false }).text();
      assert.equal(exit.exitCode, 0, out);
      assert.doesNotMatch(out, /HIT/, `the container reached the Node process:\n${out.split('\n').slice(0, 20).join('\n')}`);
      const seen = Number(/seen (\d+)/.exec(out)?.[1] ?? 0);
      // The scanner must really have watched exec'd processes come and go, or this proves nothing.
      assert.ok(seen >= 20, `the scanner saw only ${seen} other processes`);
    } finally {
      closeSync(secretFd);
    }
  });

  test('a container that SIGSTOPs everything it can see does not delay fs.promises.stat in Node', { timeout: 60_000 }, async () => {
    // Stops every process it can see, over and over: each exec'd process is stopped as soon
    // as it appears, before or after its execve.
    const c = await f.sh('while :; do kill -STOP -1 2>/dev/null; done');
    await c.start();
    const ac = new AbortController();
    // More stopped execs than libuv has worker threads (4 by default).
    const execs = Array.from({ length: 8 }, () => c.exec(['sleep', '5'], { signal: ac.signal }).then(
      (r) => ({ ok: true as const, r }),
      (error: unknown) => ({ ok: false as const, error }),
    ));
    await sleep(1500);
    const worst = { ms: 0 };
    for (let i = 0; i < 20; i++) {
      const t0 = performance.now();
      await stat(dir);
      worst.ms = Math.max(worst.ms, performance.now() - t0);
    }
    assert.ok(worst.ms < 500, `fs.promises.stat took ${worst.ms.toFixed(0)} ms while execs were stopped`);
    // A fresh exec still starts: no worker thread is parked (it may itself be stopped, so it is
    // only asked to exist, then aborted).
    ac.abort();
    const settled = await Promise.all(execs);
    for (const s of settled) {
      if (!s.ok) assert.ok(s.error instanceof AbortError, String(s.error));
    }
    await c.kill('SIGKILL');
    await c.wait();
    await sleep(200);
    assert.deepEqual(zombieChildrenOf(process.pid), []);
  });
});
