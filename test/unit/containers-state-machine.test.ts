import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ConflictError } from '../../lib/errors.js';
import { assertAllowed, refusal, type ContainerOperation } from '../../lib/containers/state-machine.js';
import type { ContainerStatus } from '../../lib/containers/container-record.js';

describe('state machine', () => {
  const all: ContainerStatus[] = ['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead'];
  const allowed: Record<ContainerOperation, ContainerStatus[]> = {
    start: ['created', 'exited'],
    stop: ['created', 'running', 'paused', 'restarting', 'exited'],
    rename: ['created', 'running', 'paused', 'restarting', 'exited'],
    kill: ['running', 'paused', 'restarting'],
    pause: ['running'],
    unpause: ['paused'],
    exec: ['running'],
    attach: ['running', 'paused'],
    resize: ['running', 'paused'],
    stats: ['running', 'paused'],
    top: ['running', 'paused'],
    remove: ['created', 'exited', 'dead'],
  };
  for (const [op, ok] of Object.entries(allowed) as Array<[ContainerOperation, ContainerStatus[]]>) {
    test(`${op} is allowed exactly in ${ok.join(', ')}`, () => {
      for (const s of all) {
        const why = refusal(op, s, 'c1');
        if (ok.includes(s)) assert.equal(why, undefined, `${op} in ${s}`);
        else assert.equal(typeof why, 'string', `${op} in ${s} should be refused`);
      }
    });
  }

  test('remove with force is allowed while running; the refusals use Docker\'s words', () => {
    assert.equal(refusal('remove', 'running', 'c1', { force: true }), undefined);
    assert.match(refusal('remove', 'running', 'c1')!, /stop the container before removing or use remove\(\{ force: true \}\)/);
    assert.match(refusal('start', 'running', 'web')!, /container web is already running/);
    assert.match(refusal('exec', 'paused', 'web')!, /is paused, unpause the container before exec/);
    assert.throws(() => assertAllowed('pause', 'exited', 'web'), ConflictError);
  });
});
