import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { IdMap, OVERFLOW_ID, parseCopyPath, planCopy } from '../../lib/containers/archive-paths.js';
import { ArchiveConflictError } from '../../lib/containers/archive-errors.js';
import { NotFoundError, ValidationError } from '../../lib/errors.js';

describe('parseCopyPath', () => {
  test('cleans lexically and remembers the trailing forms', () => {
    assert.deepEqual(parseCopyPath('/a/b', 'path'), { given: '/a/b', abs: '/a/b', rel: 'a/b', base: 'b', dirOnly: false, contents: false });
    assert.deepEqual(parseCopyPath('a//b/', 'path'), { given: 'a//b/', abs: '/a/b', rel: 'a/b', base: 'b', dirOnly: true, contents: false });
    assert.deepEqual(parseCopyPath('/a/b/.', 'path'), { given: '/a/b/.', abs: '/a/b', rel: 'a/b', base: 'b', dirOnly: true, contents: true });
    assert.deepEqual(parseCopyPath('/', 'path'), { given: '/', abs: '/', rel: '', base: '.', dirOnly: true, contents: false });
    assert.deepEqual(parseCopyPath('.', 'path'), { given: '.', abs: '/', rel: '', base: '.', dirOnly: true, contents: true });
  });

  test('`..` never climbs above the root', () => {
    assert.equal(parseCopyPath('/../../etc/passwd', 'path').rel, 'etc/passwd');
    assert.equal(parseCopyPath('a/../../b', 'path').rel, 'b');
  });

  test('refuses empty, non-string and NUL paths, naming the option', () => {
    for (const bad of ['', 3, undefined, 'a\0b']) {
      assert.throws(() => parseCopyPath(bad, 'containerPath'), (e) => e instanceof ValidationError && e.option === 'containerPath');
    }
  });
});

describe('planCopy (docker cp destination rules)', () => {
  const file = { isDir: false, path: parseCopyPath('/src/f.txt', 'p') };
  const dir = { isDir: true, path: parseCopyPath('/src/d', 'p') };
  const contents = { isDir: true, path: parseCopyPath('/src/d/.', 'p') };
  const at = (p: string) => parseCopyPath(p, 'dest');

  test('into an existing directory: under the source name, or its contents', () => {
    assert.deepEqual(planCopy(file, at('/dst'), 'dir', true, 'c'), { dir: 'dst', topName: 'f.txt', creates: false });
    assert.deepEqual(planCopy(dir, at('/dst/'), 'dir', true, 'c'), { dir: 'dst', topName: 'd', creates: false });
    assert.deepEqual(planCopy(contents, at('/dst'), 'dir', true, 'c'), { dir: 'dst', topName: '.', creates: false });
    assert.deepEqual(planCopy(dir, at('/'), 'dir', true, 'c'), { dir: '', topName: 'd', creates: false });
  });

  test('onto an existing file: a file replaces it, a directory is refused, `…/` is refused', () => {
    assert.deepEqual(planCopy(file, at('/x/y'), 'other', true, 'c'), { dir: 'x', topName: 'y', creates: false });
    assert.throws(() => planCopy(dir, at('/x/y'), 'other', true, 'c'), ArchiveConflictError);
    assert.throws(() => planCopy(file, at('/x/y/'), 'other', true, 'c'), ArchiveConflictError);
  });

  test('to a missing name: created under it when the parent exists', () => {
    assert.deepEqual(planCopy(file, at('/x/new'), undefined, true, 'c'), { dir: 'x', topName: 'new', creates: true });
    assert.deepEqual(planCopy(dir, at('/x/new'), undefined, true, 'c'), { dir: 'x', topName: 'new', creates: true });
    assert.deepEqual(planCopy(contents, at('/x/new/'), undefined, true, 'c'), { dir: 'x', topName: 'new', creates: true });
    assert.throws(() => planCopy(file, at('/x/new'), undefined, false, 'c'), (e) => e instanceof NotFoundError && e.path === '/x/new');
    assert.throws(() => planCopy(file, at('/x/new/'), undefined, true, 'c'), (e) => e instanceof NotFoundError && /directory \/x\/new\/ does not exist/.test(e.message));
  });
});

describe('IdMap', () => {
  const map = new IdMap([{ containerId: 0, hostId: 100000, size: 65536 }]);

  test('maps both ways; an unmapped container id has no host id', () => {
    assert.equal(map.toHost(0), 100000);
    assert.equal(map.toHost(1000), 101000);
    assert.equal(map.toHost(65536), undefined);
    assert.equal(map.toContainer(101000), 1000);
  });

  test('an unmapped host id reads as the overflow id, or as itself for a stopped container\'s layers', () => {
    assert.equal(map.toContainer(5), OVERFLOW_ID);
    assert.equal(new IdMap([{ containerId: 0, hostId: 100000, size: 65536 }], 'keep').toContainer(5), 5);
  });

  test('/proc/<pid>/uid_map text; the host\'s own map is the identity', () => {
    assert.equal(IdMap.fromProcText('         0          0 4294967295\n').identity, true);
    const m = IdMap.fromProcText('         0     200000      65536\n');
    assert.equal(m.identity, false);
    assert.equal(m.toHost(1), 200001);
    assert.equal(new IdMap(undefined).toHost(123456), 123456);
  });
});
