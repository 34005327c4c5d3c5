/**
 * kill() and stop() resolve only once the container's exit is recorded (Docker's behaviour),
 * so that a `start()` right after them works, for both lifetimes: a `'process'` container
 * (its exit recorded by the supervising object) and a `'detached'` one (recorded by its
 * monitor, read back from the state directory). A signal other than SIGKILL resolves once
 * it is delivered, and the container keeps running.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import type { ContainerCreateOptions } from '../../lib/containers/container-options.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { openFixture, type Fixture } from '../helpers/containers-fixture.js';

const skip = kernelSkipReason();

// A shell that never exits by itself and says which signals it saw.
const LOOP = 'trap "echo got-usr1" USR1; echo ready; while :; do sleep 0.05; done';

for (const lifetime of ['process', 'detached'] as const) {
  describe(`containers (${lifetime}): kill and stop resolve after the exit`, { skip }, () => {
    let f: Fixture;
    const opts: Partial<ContainerCreateOptions> = { lifetime };
    before(async () => {
      f = await openFixture();
    });
    after(async () => {
      await f.cleanup();
    });

    test('kill() (SIGKILL) then start() at once: the exit is recorded, the start succeeds', async () => {
      const c = await f.sh(LOOP, opts);
      for (let round = 0; round < 3; round++) {
        await c.start();
        await c.waitForLog('ready', { timeout: 30_000 });
        await c.kill();
        const info = await c.inspect();
        assert.equal(info.State.Status, 'exited', `round ${round}`);
        assert.equal(info.State.ExitCode, 137);
        assert.equal(info.State.Pid, 0);
      }
      await c.start();
      assert.equal((await c.inspect()).State.Status, 'running');
    });

    test('stop() then start() at once; stop escalates to SIGKILL after its timeout and still waits for the exit', async () => {
      const c = await f.sh(`trap "" TERM; ${LOOP}`, opts);
      await c.start();
      await c.waitForLog('ready', { timeout: 30_000 });
      await c.stop({ timeout: 200 });
      const info = await c.inspect();
      assert.equal(info.State.Status, 'exited');
      assert.equal(info.State.ExitCode, 137);
      await c.start();
      assert.equal(await c.status(), 'running');
      await c.stop({ timeout: 200 });
      assert.equal(await c.status(), 'exited');
    });

    test('kill(SIGUSR1) resolves once delivered; the container keeps running', async () => {
      const c = await f.sh(LOOP, opts);
      await c.start();
      await c.waitForLog('ready', { timeout: 30_000 });
      await c.kill('SIGUSR1');
      assert.equal(await c.status(), 'running');
      await c.waitForLog('got-usr1', { timeout: 30_000 });
      await c.kill();
      assert.equal(await c.status(), 'exited');
    });

    test('another object of the same container (another holder) also sees kill() resolve after the exit', async () => {
      const c = await f.sh(LOOP, opts);
      await c.start();
      await c.waitForLog('ready', { timeout: 30_000 });
      const other = await (await import('../../lib/runtime.js')).Runtime.open({ root: f.root });
      const same = await other.containers.get(c.id);
      assert.notEqual(same, c);
      await same.kill();
      assert.equal((await same.inspect()).State.Status, 'exited');
      await same.start();
      assert.equal(await c.status(), 'running');
      await c.kill();
    });
  });
}
