/**
 * The procfs-read kernel features over fake /proc contents: seccomp needs the actions berth's
 * profile returns; user namespaces are refused by whichever knob forbids them, named.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { kernelVersionOf, seccompFeature, userNamespacesFeature, type ProcSource } from '../../lib/host/kernel-features.js';

function proc(files: Record<string, string>): ProcSource {
  return { read: (path) => files[path] };
}

describe('seccompFeature', () => {
  it('is available with errno, allow and kill_process, and names a missing action', () => {
    assert.equal(seccompFeature(proc({ '/proc/sys/kernel/seccomp/actions_avail': 'kill_process kill_thread trap errno allow' })).available, true);
    const old = seccompFeature(proc({ '/proc/sys/kernel/seccomp/actions_avail': 'kill_thread trap errno allow' }));
    assert.equal(old.available, false);
    assert.match(old.detail, /kill_process/);
    assert.equal(seccompFeature(proc({})).available, false);
  });
});

describe('userNamespacesFeature', () => {
  const max = { '/proc/sys/user/max_user_namespaces': '1000' };

  it('is available when nothing forbids it', () => {
    assert.equal(userNamespacesFeature(proc(max)).available, true);
    assert.equal(userNamespacesFeature(proc({ ...max, '/proc/sys/kernel/unprivileged_userns_clone': '1', '/proc/sys/kernel/apparmor_restrict_unprivileged_userns': '0' })).available, true);
  });

  it('names the knob that forbids it', () => {
    assert.match(userNamespacesFeature(proc({ '/proc/sys/user/max_user_namespaces': '0' })).detail, /user\.max_user_namespaces is 0/);
    assert.match(userNamespacesFeature(proc({ ...max, '/proc/sys/kernel/unprivileged_userns_clone': '0' })).detail, /kernel\.unprivileged_userns_clone is 0/);
    const ubuntu = userNamespacesFeature(proc({ ...max, '/proc/sys/kernel/apparmor_restrict_unprivileged_userns': '1' }));
    assert.equal(ubuntu.available, false);
    assert.match(ubuntu.detail, /AppArmor.*apparmor_restrict_unprivileged_userns is 1/);
    assert.match(userNamespacesFeature(proc({})).detail, /no user namespaces/);
  });
});

describe('kernelVersionOf', () => {
  it('reads major.minor of a release string', () => {
    assert.deepEqual(kernelVersionOf('6.1.0-18-amd64'), [6, 1]);
    assert.deepEqual(kernelVersionOf('5.15.153.1-microsoft-standard-WSL2'), [5, 15]);
    assert.deepEqual(kernelVersionOf('weird'), [0, 0]);
  });
});
