import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError } from '../../lib/errors.js';
import { compileVolumeFilters } from '../../lib/volumes/volume-filters.js';

describe('volume filters', () => {
  const vols: Array<{ name: string; driver: string; labels: Record<string, string>; inUse: boolean }> = [
    { name: 'web-data', driver: 'local', labels: { env: 'prod', tier: 'web' }, inUse: true },
    { name: 'db-data', driver: 'local', labels: { env: 'dev' }, inUse: false },
    { name: 'cache', driver: 'local', labels: {}, inUse: false },
  ];
  const pick = (filters: object, allowed = ['name', 'label', 'dangling', 'driver']) => vols.filter((v) => compileVolumeFilters(filters as never, allowed).matches(v)).map((v) => v.name);

  it("Docker's semantics: name substring (any), labels (all), dangling", () => {
    assert.deepEqual(pick({ name: 'data' }), ['web-data', 'db-data']);
    assert.deepEqual(pick({ name: ['cache', 'web'] }), ['web-data', 'cache']);
    assert.deepEqual(pick({ label: 'env' }), ['web-data', 'db-data']);
    assert.deepEqual(pick({ label: ['env=prod', 'tier=web'] }), ['web-data']);
    assert.deepEqual(pick({ label: ['env=prod', 'tier=db'] }), []);
    assert.deepEqual(pick({ dangling: true }), ['db-data', 'cache']);
    assert.deepEqual(pick({ dangling: 'false' }), ['web-data']);
    assert.deepEqual(pick({ driver: 'local', name: 'db' }), ['db-data']);
    assert.deepEqual(pick({ 'label!': 'env=dev' }, ['label', 'label!']), ['web-data', 'cache']);
  });

  it('only usage-based filters need the in-use lookup', () => {
    assert.equal(compileVolumeFilters({ name: 'x' }, ['name']).needsUsage, false);
    assert.equal(compileVolumeFilters({ dangling: true }, ['dangling']).needsUsage, true);
  });

  it('unknown keys and bad values are ValidationErrors naming the filter', () => {
    assert.throws(() => compileVolumeFilters({ until: '1h' } as never, ['name']), (e: unknown) => e instanceof ValidationError && e.option === 'filters.until');
    assert.throws(() => compileVolumeFilters({ dangling: 'maybe' } as never, ['dangling']), (e: unknown) => e instanceof ValidationError && e.option === 'filters.dangling');
    assert.throws(() => compileVolumeFilters({ label: 3 } as never, ['label']), (e: unknown) => e instanceof ValidationError && e.option === 'filters.label');
  });
});
