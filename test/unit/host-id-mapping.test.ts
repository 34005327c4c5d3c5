/**
 * Subordinate id ranges as shadow-utils reads them: by user name or by uid, malformed lines
 * and other users' ranges skipped.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseSubIds } from '../../lib/host/id-mapping.js';

describe('parseSubIds', () => {
  const file = ['root:1:2', 'ann:100000:65536', '1000:300000:65536', 'bob:165536:65536', 'ann:x:1', 'ann:5:0', 'garbage', '', 'ann:-4:10'].join('\n');

  it("returns the user's ranges by name and by uid", () => {
    assert.deepEqual(parseSubIds(file, { name: 'ann', uid: 1000 }), [
      { start: 100000, count: 65536 },
      { start: 300000, count: 65536 },
    ]);
  });

  it('matches only the uid for a user without a name, and nothing for a stranger', () => {
    assert.deepEqual(parseSubIds(file, { name: undefined, uid: 1000 }), [{ start: 300000, count: 65536 }]);
    assert.deepEqual(parseSubIds(file, { name: 'eve', uid: 4242 }), []);
  });
});
