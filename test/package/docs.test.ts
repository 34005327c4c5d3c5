/**
 * `npm run docs` (typedoc over the public API's TSDoc) finishes without a warning: typedoc.json
 * sets `treatWarningsAsErrors`, so a dangling `@param`, a broken `{@link}` or an undocumentable
 * export fails the docs build and this test.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { it } from 'node:test';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

it('typedoc converts the public API with no warning', () => {
  const r = spawnSync(join(REPO, 'node_modules/.bin/typedoc'), ['--emit', 'none'], { cwd: REPO, encoding: 'utf8', env: { ...process.env, NO_COLOR: '1', FORCE_COLOR: '0' } });
  const output = `${r.stdout}${r.stderr}`;
  assert.doesNotMatch(output, /\[warning\]/, output);
  assert.equal(r.status, 0, output);
});
