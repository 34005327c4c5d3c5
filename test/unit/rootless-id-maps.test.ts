import { test } from 'node:test';
import assert from 'node:assert/strict';
import { UnsupportedError } from '../../lib/errors.js';
import type { IdMappingInfo } from '../../lib/host/index.js';
import { assertUserNamespaces, checkIdsMapped, defaultRuntimeDir, defaultStateDir, rootlessIdMaps } from '../../lib/rootless/index.js';

const helpers = { newuidmap: { path: '/usr/bin/newuidmap', setuid: true }, newgidmap: { path: '/usr/bin/newgidmap', setuid: true } };
const subordinate: IdMappingInfo = { mode: 'subordinate', reason: 'ok', ...helpers, subuid: [{ start: 165536, count: 65536 }], subgid: [{ start: 231072, count: 65536 }] };
const single: IdMappingInfo = { mode: 'single', reason: 'no /etc/subuid range of 65536 ids for dev', ...helpers, subuid: [], subgid: [] };

test("subordinate: root -> the caller, 1..65535 -> the range's first ids (Podman's layout), written by the helpers", () => {
  const m = rootlessIdMaps(1002, 1003, subordinate);
  assert.deepEqual(m.uidMap, [{ containerId: 0, hostId: 1002, size: 1 }, { containerId: 1, hostId: 165536, size: 65535 }]);
  assert.deepEqual(m.gidMap, [{ containerId: 0, hostId: 1003, size: 1 }, { containerId: 1, hostId: 231072, size: 65535 }]);
  assert.deepEqual(m.helpers, { newuidmap: '/usr/bin/newuidmap', newgidmap: '/usr/bin/newgidmap' });
  checkIdsMapped(m, { uid: 1000, gid: 1000, additionalGids: [50] }, 'dev');
  assert.throws(() => checkIdsMapped(m, { uid: 70000, gid: 0, additionalGids: [] }, 'dev'), /uid 70000/);
});

test('single: only root, no helpers; another container user is refused with the reason and the fix', () => {
  const m = rootlessIdMaps(1002, 1003, single);
  assert.equal(m.mode, 'single');
  assert.deepEqual(m.uidMap, [{ containerId: 0, hostId: 1002, size: 1 }]);
  assert.equal(m.helpers, undefined);
  checkIdsMapped(m, { uid: 0, gid: 0, additionalGids: [] }, 'dev');
  assert.throws(
    () => checkIdsMapped(m, { uid: 1000, gid: 1000, additionalGids: [] }, 'dev'),
    (e: unknown) => e instanceof UnsupportedError && /uid 1000, gid 1000/.test(e.message) && /single-id map/.test(e.message) && /usermod --add-subuids .* dev/.test(e.message),
  );
});

test('user namespaces forbidden: the refusal names the knob and its fix', () => {
  const proc = (files: Record<string, string>) => ({ read: (p: string) => files[p] });
  assert.throws(() => assertUserNamespaces(proc({ '/proc/sys/user/max_user_namespaces': '100', '/proc/sys/kernel/apparmor_restrict_unprivileged_userns': '1' })), /apparmor_restrict_unprivileged_userns=0/);
  assert.throws(() => assertUserNamespaces(proc({ '/proc/sys/user/max_user_namespaces': '100', '/proc/sys/kernel/unprivileged_userns_clone': '0' })), /unprivileged_userns_clone=1/);
  assert.throws(() => assertUserNamespaces(proc({ '/proc/sys/user/max_user_namespaces': '0' })), /max_user_namespaces=/);
  assertUserNamespaces(proc({ '/proc/sys/user/max_user_namespaces': '100' }));
});

test('state and runtime dirs follow XDG for a user, /var/lib/berth and /run/berth for root', () => {
  assert.equal(defaultStateDir({ uid: 0, env: { XDG_DATA_HOME: '/x' } }), '/var/lib/berth');
  assert.equal(defaultStateDir({ uid: 1000, env: { XDG_DATA_HOME: '/data' } }), '/data/berth');
  assert.equal(defaultStateDir({ uid: 1000, env: { XDG_DATA_HOME: 'relative' }, home: '/home/u' }), '/home/u/.local/share/berth');
  assert.equal(defaultRuntimeDir({ uid: 0 }), '/run/berth');
  assert.equal(defaultRuntimeDir({ uid: 1000, env: { XDG_RUNTIME_DIR: '/run/user/1000' } }), '/run/user/1000/berth');
  assert.match(defaultRuntimeDir({ uid: 1000, env: {} }), /berth-run-1000$/);
});
