/**
 * The CLI's argument rules (lib/cli/args.ts, lib/cli/run-flags.ts): options stop where the
 * container's command line starts, Docker's short groups and `-v`/`-e` forms, and wrong
 * invocations as UsageErrors.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { UsageError, parseVerb } from '../../lib/cli/args.js';
import { CREATE_FLAGS, envFlags, sourceAndCommand, volumeFlag } from '../../lib/cli/run-flags.js';

describe('parseVerb', () => {
  it('stops at IMAGE: what follows belongs to the command', () => {
    const p = parseVerb(['--rm', '-e', 'A=1', 'img', 'ls', '-la', '--rm'], CREATE_FLAGS, 1);
    assert.deepEqual(p.positionals, ['img']);
    assert.deepEqual(p.rest, ['ls', '-la', '--rm']);
    assert.equal(p.values['rm'], true);
    assert.deepEqual(p.values['env'], ['A=1']);
  });

  it('reads short groups, a value after a group, inline values and --', () => {
    const p = parseVerb(['-itp', '80:80', '-eX=1', '--name=web', 'img', '--', 'sh'], CREATE_FLAGS, 1);
    assert.equal(p.values['interactive'], true);
    assert.equal(p.values['tty'], true);
    assert.deepEqual(p.values['publish'], ['80:80']);
    assert.deepEqual(p.values['env'], ['X=1']);
    assert.equal(p.values['name'], 'web');
    assert.deepEqual(p.rest, ['sh']);
  });

  it('takes the global options anywhere among the verb\'s own', () => {
    const p = parseVerb(['--json', '-a', '--root', '/x'], { all: { type: 'boolean', short: 'a' } });
    assert.deepEqual({ json: p.values['json'], all: p.values['all'], root: p.values['root'] }, { json: true, all: true, root: '/x' });
  });

  it('an unknown option is a UsageError naming it', () => {
    assert.throws(() => parseVerb(['--bogus'], {}), (e: unknown) => e instanceof UsageError && /--bogus/.test(e.message));
  });
});

describe('run flags', () => {
  it('-v: bind for an absolute source, named volume, anonymous volume, :ro', () => {
    assert.deepEqual(volumeFlag('/srv:/data:ro'), { type: 'bind', source: '/srv', target: '/data', readonly: true });
    assert.deepEqual(volumeFlag('cache:/data'), { type: 'volume', source: 'cache', target: '/data' });
    assert.deepEqual(volumeFlag('/data'), { type: 'volume', target: '/data' });
    assert.throws(() => volumeFlag('a:b:c:d'), UsageError);
    assert.throws(() => volumeFlag(':/x'), UsageError);
  });

  it('-e: K=V sets, K copies the caller\'s value or nothing', () => {
    assert.deepEqual(envFlags(['A=1', 'B=', 'HOME', 'UNSET_HERE'], { HOME: '/root' }), { A: '1', B: '', HOME: '/root' });
    assert.throws(() => envFlags(['=x']), UsageError);
  });

  it('--host and --rootfs take no image: the first positional is the command', () => {
    assert.deepEqual(sourceAndCommand(parseVerb(['--host', 'echo', '-n', 'x'], CREATE_FLAGS, 1)), { image: { host: true }, cmd: ['echo', '-n', 'x'] });
    assert.deepEqual(sourceAndCommand(parseVerb(['--rootfs', '/r', 'sh'], CREATE_FLAGS, 1)), { image: { rootfs: '/r' }, cmd: ['sh'] });
    assert.deepEqual(sourceAndCommand(parseVerb(['img'], CREATE_FLAGS, 1)), { image: 'img', cmd: undefined });
    assert.throws(() => sourceAndCommand(parseVerb(['--host'], CREATE_FLAGS, 1)), UsageError);
    assert.throws(() => sourceAndCommand(parseVerb(['--host', '--rootfs', '/r', 'sh'], CREATE_FLAGS, 1)), UsageError);
  });
});
