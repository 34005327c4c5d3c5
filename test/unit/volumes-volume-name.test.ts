import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError } from '../../lib/errors.js';
import { anonymousVolumeName, checkVolumeName, isVolumeName } from '../../lib/volumes/volume-name.js';

describe('volume names', () => {
  it("follows Docker's rule", () => {
    for (const ok of ['ab', 'data', 'my-vol_1.2', 'A0']) assert.ok(isVolumeName(ok), ok);
    for (const bad of ['a', '', '.hidden', '-x', 'a/b', 'a b', 'x'.repeat(256), '_x']) assert.ok(!isVolumeName(bad), bad);
  });

  it('names the option and points a path at bind mounts', () => {
    assert.throws(() => checkVolumeName('/srv/data', 'mounts[0].source'), (e: unknown) => {
      assert.ok(e instanceof ValidationError);
      assert.equal(e.option, 'mounts[0].source');
      assert.match(e.message, /type: "bind"/);
      return true;
    });
  });

  it('anonymous names are 64 hex digits', () => {
    assert.match(anonymousVolumeName(), /^[0-9a-f]{64}$/);
    assert.notEqual(anonymousVolumeName(), anonymousVolumeName());
  });
});
