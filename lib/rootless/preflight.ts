/**
 * What a rootless launch needs from the host before it tries: user namespaces the caller may
 * create. A refusal here names the knob that forbids them, never a bare EPERM of clone().
 * @module
 */
import { UnsupportedError } from '../errors.js';
import { userNamespacesFeature, type ProcSource } from '../host/index.js';

/** The fix for each way unprivileged user namespaces are switched off. */
function fixFor(detail: string): string {
  if (/apparmor/i.test(detail)) return 'sysctl -w kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04), or an AppArmor profile granting "userns," to node';
  if (/unprivileged_userns_clone/.test(detail)) return 'sysctl -w kernel.unprivileged_userns_clone=1';
  if (/max_user_namespaces/.test(detail)) return 'sysctl -w user.max_user_namespaces=28633';
  return 'a kernel built with CONFIG_USER_NS';
}

let checked: true | undefined;

/**
 * @throws UnsupportedError when this host forbids unprivileged user namespaces (the reason
 *   and the sysctl or AppArmor fix in the message).
 */
export function assertUserNamespaces(proc?: ProcSource): void {
  if (checked && proc === undefined) return;
  const f = userNamespacesFeature(proc);
  if (!f.available) throw new UnsupportedError(`berth without root needs user namespaces, and ${f.detail}. Fix: ${fixFor(f.detail)}`);
  if (proc === undefined) checked = true;
}
