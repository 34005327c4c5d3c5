import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Image, PullTask, type LayerProgress } from '../../lib/image/image.js';

const fakeImage = {} as Image;

test('PullTask is a Promise<Image>; listeners attached right after pull() see every event', async () => {
  const task = PullTask.start(async (emit) => {
    emit('progress', { layer: 'sha256:a', index: 0, state: 'waiting', bytesDone: 0, bytesTotal: 10 });
    await Promise.resolve();
    emit('progress', { layer: 'sha256:a', index: 0, state: 'done', bytesDone: 10, bytesTotal: 10 });
    emit('total', { bytesDone: 10, bytesTotal: 10, layersDone: 1, layers: 1 });
    emit('done', fakeImage);
    return fakeImage;
  });
  const states: string[] = [];
  let once = 0;
  let removed = 0;
  const off = () => removed++;
  task.on('progress', (p: LayerProgress) => states.push(p.state)).once('total', () => once++).on('total', off).off('total', off);
  const doneWith: Image[] = [];
  task.on('done', (img) => doneWith.push(img));
  assert.ok(task instanceof Promise);
  assert.equal(await task, fakeImage);
  // The work starts from a microtask: even its synchronous first emit reaches listeners
  // attached after start() returned.
  assert.deepEqual(states, ['waiting', 'done']);
  assert.equal(once, 1);
  assert.equal(removed, 0);
  assert.deepEqual(doneWith, [fakeImage]);
});

test('then/catch/finally give plain promises; rejections reject; a throwing work function rejects', async () => {
  const ok = PullTask.start(async () => fakeImage);
  const chained = ok.then((x) => x);
  assert.ok(!(chained instanceof PullTask));
  assert.ok(!(ok.finally(() => {}) instanceof PullTask));
  assert.equal(await chained, fakeImage);
  const failing = PullTask.start(async () => {
    throw new Error('nope');
  });
  await assert.rejects(failing, /nope/);
  const throwing = PullTask.start(() => {
    throw new Error('sync');
  });
  await assert.rejects(throwing, /sync/);
  await assert.rejects(PullTask.rejected(new Error('early')), /early/);
  // Awaiting in an async function and Promise.all work as for any promise.
  assert.deepEqual(await Promise.all([PullTask.start(async () => fakeImage)]), [fakeImage]);
});
