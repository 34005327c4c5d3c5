import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isOrphanRunCgroup, runCgroupId } from '../../lib/launch/orphan-sweep.js';
import { processStartTime } from '../../lib/state/process-identity.js';
import { isCgroupId } from '../../lib/cgroup/index.js';

describe('run() cgroup ownership', () => {
  it('names a run cgroup after this process and its start time, as a valid cgroup id', () => {
    const id = runCgroupId('abc123');
    assert.match(id, new RegExp(`^run-${process.pid}-${processStartTime(process.pid)}-abc123$`));
    assert.ok(isCgroupId(id));
  });
  it('never calls this process orphaned', () => assert.equal(isOrphanRunCgroup(runCgroupId('ff')), false));
  it('calls a cgroup orphaned when its owner pid is gone or now belongs to another process', () => {
    assert.equal(isOrphanRunCgroup('run-4242-100-ff', () => undefined), true, 'no such process');
    assert.equal(isOrphanRunCgroup('run-4242-100-ff', () => '999'), true, 'pid reused by a newer process');
    assert.equal(isOrphanRunCgroup('run-4242-100-ff', () => '100'), false, 'owner alive');
  });
  it('leaves other cgroups (containers) alone', () => {
    assert.equal(isOrphanRunCgroup('3c30f7f2e78f03bfb051f18f694213df', () => undefined), false);
  });
});
