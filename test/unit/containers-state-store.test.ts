/**
 * The names of the containers' state store: one file per name (so a create or remove touches
 * only its own name), and the move of an older berth's `names.json` table into that form.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StateStore, newContainerId } from '../../lib/containers/state-store.js';

function tempStore(): { store: StateStore; done(): void } {
  const root = mkdtempSync(join(tmpdir(), 'berth-state-store-'));
  return { store: new StateStore(root), done: () => rmSync(root, { recursive: true, force: true }) };
}

test('a name is one file holding the id; dropping it only removes it for its holder', async () => {
  const { store, done } = tempStore();
  try {
    await store.init();
    const a = newContainerId();
    const b = newContainerId();
    await store.withNames(() => store.setName('web', a));
    assert.equal(readFileSync(join(store.namesDir, 'web'), 'utf8').trim(), a);
    assert.equal(await store.nameHolder('web'), a);
    await store.withNames(() => store.dropName('web', b));
    assert.equal(await store.nameHolder('web'), a, 'another id cannot drop the name');
    await store.withNames(() => store.dropName('web', a));
    assert.equal(await store.nameHolder('web'), undefined);
    assert.equal(await store.nameHolder('never-set'), undefined);
  } finally {
    done();
  }
});

test('a name file that does not hold an id is no holder', async () => {
  const { store, done } = tempStore();
  try {
    await store.init();
    writeFileSync(join(store.namesDir, 'junk'), '../../etc/passwd\n');
    assert.equal(await store.nameHolder('junk'), undefined);
    assert.deepEqual(await store.readNames(), {});
  } finally {
    done();
  }
});

test("an older berth's names.json is moved into the names directory once, invalid entries left out", async () => {
  const { store, done } = tempStore();
  try {
    mkdirSync(store.containersDir, { recursive: true });
    const a = newContainerId();
    const b = newContainerId();
    writeFileSync(store.legacyNamesPath, JSON.stringify({ web: a, db: b, '../escape': a, bad: 'not-an-id' }));
    await store.migrateLegacyNames();
    assert.deepEqual(await store.readNames(), { web: a, db: b });
    assert.equal(existsSync(store.legacyNamesPath), false);
    assert.equal(existsSync(join(store.containersDir, 'escape')), false);
    await store.migrateLegacyNames(); // nothing left to do
    assert.deepEqual(await store.readNames(), { web: a, db: b });
  } finally {
    done();
  }
});
