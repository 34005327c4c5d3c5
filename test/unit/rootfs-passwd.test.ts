import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { MAX_ID, parseGroup, parsePasswd, resolveUser } from '../../lib/rootfs/passwd.js';
import { NotFoundError, ValidationError, isBerthError } from '../../lib/errors.js';

const PASSWD = `# a comment
root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin

+nisuser:x:5000:5000::/home/nis:/bin/sh
-excluded:x:5001:5001::/home/ex:/bin/sh
  alice:x:1000:1000:Alice,,,:/home/alice:/bin/bash  \r
bob:x:1001:1001::/home/bob
broken:x:abc:1002::/home/broken:/bin/sh
nogid:x:1003
carol:x:1004:1004:::
dup:x:2000:2000::/first:/bin/sh
dup:x:2001:2001::/second:/bin/sh
1234:x:3000:3000::/home/numeric:/bin/sh
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
`;

const GROUP = `# groups
root:x:0:
daemon:x:1:
wheel:x:10:alice,root
audio:x:29:bob , alice
alice:x:1000:
bob:x:1001
staff:x:50:alice
video:x:44:carol,alice
+nisgroup:x:6000:alice
bad:x:notanumber:alice
1234:x:3001:
nogroup:x:65534:
`;

const files = { passwd: PASSWD, group: GROUP };

function assertNotFound(fn: () => unknown, message: string): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof NotFoundError, `expected NotFoundError, got ${String(err)}`);
    assert.ok(isBerthError(err));
    assert.equal(err.code, 'ERR_NOT_FOUND');
    assert.equal(err.option, 'user');
    assert.equal(err.message, message);
    return true;
  });
}

function assertInvalid(fn: () => unknown, ...includes: string[]): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof ValidationError, `expected ValidationError, got ${String(err)}`);
    assert.equal(err.option, 'user');
    for (const text of includes) assert.ok(err.message.includes(text), err.message);
    return true;
  });
}

test('parsePasswd keeps well-formed lines and skips comments, blanks, NIS and bad ids', () => {
  const entries = parsePasswd(PASSWD);
  assert.deepEqual(entries.map((e) => e.name), ['root', 'daemon', 'alice', 'bob', 'carol', 'dup', 'dup', '1234', 'nobody']);
  assert.deepEqual(entries[0], { name: 'root', uid: 0, gid: 0, gecos: 'root', home: '/root', shell: '/bin/bash' });
  assert.deepEqual(entries[2], { name: 'alice', uid: 1000, gid: 1000, gecos: 'Alice,,,', home: '/home/alice', shell: '/bin/bash' });
  assert.deepEqual(entries[3], { name: 'bob', uid: 1001, gid: 1001, gecos: '', home: '/home/bob', shell: '' });
  assert.deepEqual(parsePasswd(''), []);
  assert.deepEqual(parsePasswd('\n\n#only\n'), []);
  assert.deepEqual(parsePasswd('x:x:-1:0::/:/bin/sh\ny:x:1:-1::/:/bin/sh\n:x:1:1::/:/bin/sh'), []);
});

test('parseGroup keeps well-formed lines and tolerates short ones', () => {
  const groups = parseGroup(GROUP);
  assert.deepEqual(groups.map((g) => g.name), ['root', 'daemon', 'wheel', 'audio', 'alice', 'bob', 'staff', 'video', '1234', 'nogroup']);
  assert.deepEqual(groups.find((g) => g.name === 'wheel'), { name: 'wheel', gid: 10, members: ['alice', 'root'] });
  assert.deepEqual(groups.find((g) => g.name === 'audio'), { name: 'audio', gid: 29, members: ['bob', 'alice'] });
  assert.deepEqual(groups.find((g) => g.name === 'bob'), { name: 'bob', gid: 1001, members: [] });
  assert.deepEqual(parseGroup('g:x:5'), [{ name: 'g', gid: 5, members: [] }]);
  assert.deepEqual(parseGroup('g:x'), []);
});

test('no user: root from passwd, with root\'s supplementary groups', () => {
  assert.deepEqual(resolveUser(undefined, files), { uid: 0, gid: 0, additionalGids: [10], home: '/root', name: 'root' });
  assert.deepEqual(resolveUser('', files), resolveUser(undefined, files));
});

test('no user and no files: 0:0 with home /', () => {
  assert.deepEqual(resolveUser(undefined, {}), { uid: 0, gid: 0, additionalGids: [], home: '/' });
  assert.deepEqual(resolveUser(undefined), { uid: 0, gid: 0, additionalGids: [], home: '/' });
  assert.deepEqual(resolveUser(undefined, { passwd: 'alice:x:1000:1000::/home/alice:/bin/sh' }),
    { uid: 0, gid: 0, additionalGids: [], home: '/' });
});

test('a name: its passwd entry plus the groups listing it', () => {
  assert.deepEqual(resolveUser('alice', files), {
    uid: 1000, gid: 1000, additionalGids: [10, 29, 50, 44], home: '/home/alice', name: 'alice',
  });
  assert.deepEqual(resolveUser('bob', files), { uid: 1001, gid: 1001, additionalGids: [29], home: '/home/bob', name: 'bob' });
  assert.deepEqual(resolveUser('daemon', files), { uid: 1, gid: 1, additionalGids: [], home: '/usr/sbin', name: 'daemon' });
  assert.deepEqual(resolveUser('carol', files), { uid: 1004, gid: 1004, additionalGids: [44], home: '/', name: 'carol' },
    'an empty home field falls back to /');
  assert.deepEqual(resolveUser('alice', { passwd: PASSWD }), {
    uid: 1000, gid: 1000, additionalGids: [], home: '/home/alice', name: 'alice',
  }, 'no group file: no supplementary groups');
});

test('the first matching passwd entry wins', () => {
  assert.deepEqual(resolveUser('dup', files), { uid: 2000, gid: 2000, additionalGids: [], home: '/first', name: 'dup' });
});

test('a uid: the entry with that uid, or just the uid when none', () => {
  assert.deepEqual(resolveUser('1000', files), resolveUser('alice', files));
  assert.deepEqual(resolveUser('0', files), resolveUser(undefined, files));
  assert.deepEqual(resolveUser('4242', files), { uid: 4242, gid: 0, additionalGids: [], home: '/' });
  assert.deepEqual(resolveUser('4242', {}), { uid: 4242, gid: 0, additionalGids: [], home: '/' });
  assert.deepEqual(resolveUser('+1001', files).name, 'bob');
  // Numeric means uid, even though a user is named "1234".
  assert.deepEqual(resolveUser('1234', files), { uid: 1234, gid: 0, additionalGids: [], home: '/' });
  assert.deepEqual(resolveUser('3000', files).name, '1234');
});

test('user:group in all four combinations; an explicit group drops supplementary groups', () => {
  assert.deepEqual(resolveUser('alice:staff', files), { uid: 1000, gid: 50, additionalGids: [], home: '/home/alice', name: 'alice' });
  assert.deepEqual(resolveUser('alice:44', files), { uid: 1000, gid: 44, additionalGids: [], home: '/home/alice', name: 'alice' });
  assert.deepEqual(resolveUser('alice:7777', files), { uid: 1000, gid: 7777, additionalGids: [], home: '/home/alice', name: 'alice' });
  assert.deepEqual(resolveUser('1001:audio', files), { uid: 1001, gid: 29, additionalGids: [], home: '/home/bob', name: 'bob' });
  assert.deepEqual(resolveUser('1000:1000', files), { uid: 1000, gid: 1000, additionalGids: [], home: '/home/alice', name: 'alice' });
  assert.deepEqual(resolveUser('4242:4343', files), { uid: 4242, gid: 4343, additionalGids: [], home: '/' });
  assert.deepEqual(resolveUser('4242:wheel', files), { uid: 4242, gid: 10, additionalGids: [], home: '/' });
  assert.deepEqual(resolveUser('4242:4343', {}), { uid: 4242, gid: 4343, additionalGids: [], home: '/' });
  // Numeric group means gid, even though a group is named "1234".
  assert.deepEqual(resolveUser('alice:1234', files).gid, 1234);
  assert.deepEqual(resolveUser('alice:3001', files).gid, 3001);
});

test('empty halves follow runc: ":gid" is root with that gid, "name:" is the implicit form', () => {
  assert.deepEqual(resolveUser(':50', files), { uid: 0, gid: 50, additionalGids: [], home: '/root', name: 'root' });
  assert.deepEqual(resolveUser('alice:', files), resolveUser('alice', files));
  assert.deepEqual(resolveUser(':', files), resolveUser(undefined, files));
});

test('a user name with no passwd entry is a NotFoundError naming the user', () => {
  assertNotFound(() => resolveUser('mallory', files), 'unable to find user mallory: no matching entries in passwd file');
  assertNotFound(() => resolveUser('mallory', {}), 'unable to find user mallory: no matching entries in passwd file');
  assertNotFound(() => resolveUser('mallory:wheel', files), 'unable to find user mallory: no matching entries in passwd file');
  assertNotFound(() => resolveUser('nisuser', files), 'unable to find user nisuser: no matching entries in passwd file');
  assertNotFound(() => resolveUser('broken', files), 'unable to find user broken: no matching entries in passwd file');
  assertNotFound(() => resolveUser('Alice', files), 'unable to find user Alice: no matching entries in passwd file');
});

test('a group name with no group entry is a NotFoundError naming the group', () => {
  assertNotFound(() => resolveUser('alice:nosuch', files), 'unable to find group nosuch: no matching entries in group file');
  assertNotFound(() => resolveUser('4242:wheel', { passwd: PASSWD }), 'unable to find group wheel: no matching entries in group file');
  assertNotFound(() => resolveUser('alice:bad', files), 'unable to find group bad: no matching entries in group file');
});

test('ids outside 0..2^32-2 and malformed specs are ValidationErrors', () => {
  assert.equal(MAX_ID, 4294967294);
  assert.deepEqual(resolveUser('4294967294:4294967294', {}), { uid: MAX_ID, gid: MAX_ID, additionalGids: [], home: '/' });
  assertInvalid(() => resolveUser('4294967295', {}), '"4294967295"', 'uid', 'outside 0..4294967294');
  assertInvalid(() => resolveUser('0:4294967295', files), 'gid', '4294967295');
  assertInvalid(() => resolveUser('-1', files), '"-1"', '-1');
  assertInvalid(() => resolveUser('alice:-5', files), '-5');
  assertInvalid(() => resolveUser('99999999999999999999', files), 'outside');
  assertInvalid(() => resolveUser('a:b:c', files), '"a:b:c"', 'user:group');
  assertInvalid(() => resolveUser(1000 as unknown as string, files), 'number');
  assertInvalid(() => resolveUser('big', { passwd: 'big:x:4294967295:0::/:/bin/sh' }), 'uid 4294967295');
  assertInvalid(() => resolveUser('big', { passwd: 'big:x:1:1::/:/bin/sh', group: 'g:x:4294967296:big' }), 'supplementary gid');
});

test('the real /etc/passwd and /etc/group of this machine resolve root', () => {
  let passwd: string | undefined;
  let group: string | undefined;
  try {
    passwd = readFileSync('/etc/passwd', 'utf8');
    group = readFileSync('/etc/group', 'utf8');
  } catch {
    return;
  }
  const root = resolveUser(undefined, { passwd, group });
  assert.equal(root.uid, 0);
  assert.equal(root.gid, 0);
  assert.equal(root.name, 'root');
  assert.deepEqual(resolveUser('root', { passwd, group }), root);
  assert.deepEqual(resolveUser('0', { passwd, group }), root);
  for (const entry of parsePasswd(passwd)) {
    assert.ok(entry.uid <= MAX_ID && entry.gid <= MAX_ID, entry.name);
  }
});
