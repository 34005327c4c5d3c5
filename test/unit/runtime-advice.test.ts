/**
 * The fixes `rt.info()` derives from host facts, over made-up hosts: each missing piece gives
 * its one-line fix, what only matters without root is silent for root, and a healthy host
 * gets no advice at all.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { CgroupInfo, ControllerStatus } from '../../lib/cgroup/controllers.js';
import type { FeatureProbe, IdMappingInfo, KernelFeatures } from '../../lib/host/index.js';
import type { NetworkToolsInfo } from '../../lib/network/host-tools.js';
import { deriveAdvice, warningLines, type Advice, type HostFacts } from '../../lib/runtime-advice.js';

const yes: FeatureProbe = { available: true, method: 'tried', detail: 'ok' };
const usable: ControllerStatus = { usable: true, detail: '/sys/fs/cgroup/x' };

const features: KernelFeatures = {
  overlay: yes,
  openat2: yes,
  pidfd: yes,
  seccomp: { available: true, method: 'procfs', detail: 'actions: errno allow kill_process' },
  userNamespaces: { available: true, method: 'procfs', detail: 'user.max_user_namespaces = 1000' },
  idmappedMounts: { available: true, method: 'kernel-version', detail: 'Linux 6.1 >= 5.12' },
  clone3IntoCgroup: { available: true, method: 'kernel-version', detail: 'Linux 6.1 >= 5.7' },
};

const cgroups: CgroupInfo = {
  version: 2,
  mode: 'unified',
  detail: '',
  parents: ['/sys/fs/cgroup/berth'],
  controllers: { memory: usable, cpu: usable, pids: usable, cpuset: usable, io: usable, devices: usable },
};

const network: NetworkToolsInfo = {
  bridge: { available: true, detail: 'kernel bridge with nftables' },
  firewall: 'nftables',
  nft: '/usr/sbin/nft',
  iptables: null,
  pasta: '/usr/bin/pasta',
  slirp4netns: null,
  userMode: { stack: 'pasta', path: '/usr/bin/pasta', reason: 'pasta is installed', tun: { usable: true, detail: '/dev/net/tun is readable and writable' } },
};

const subordinate: IdMappingInfo = {
  mode: 'subordinate',
  reason: 'present',
  newuidmap: { path: '/usr/bin/newuidmap', setuid: true },
  newgidmap: { path: '/usr/bin/newgidmap', setuid: true },
  subuid: [{ start: 100000, count: 65536 }],
  subgid: [{ start: 100000, count: 65536 }],
};

const rootHost: HostFacts = {
  root: '/var/lib/berth',
  uid: 0,
  userName: 'root',
  kernelRelease: '6.1.0-18-amd64',
  backingFilesystem: 'extfs',
  features,
  idMapping: { ...subordinate, mode: 'host', reason: 'root', subuid: [], subgid: [] },
  cgroups,
  network,
};

const userHost: HostFacts = { ...rootHost, root: '/home/ann/.local/share/berth', uid: 1000, userName: 'ann', idMapping: subordinate };

function fixes(advice: Advice[]): string[] {
  return advice.map((a) => a.fix ?? '(none)');
}

describe('deriveAdvice', () => {
  it('gives a healthy host, root or not, no advice', () => {
    assert.deepEqual(deriveAdvice(rootHost), []);
    assert.deepEqual(deriveAdvice(userHost), []);
  });

  it('names a state directory on overlayfs and moves the state to a volume', () => {
    const advice = deriveAdvice({ ...rootHost, backingFilesystem: 'overlayfs', features: { ...features, overlay: { available: false, method: 'tried', detail: "fsconfig(upperdir) '/x/u': Invalid argument" } } });
    assert.equal(advice.length, 1);
    assert.equal(advice[0]!.area, 'storage');
    assert.match(advice[0]!.problem, /\/var\/lib\/berth is on overlayfs.*Invalid argument/);
    assert.match(advice[0]!.fix!, /Runtime\.open\(\{ root:/);
  });

  it('says nothing about an overlayfs state directory when overlay mounted there anyway', () => {
    assert.deepEqual(deriveAdvice({ ...rootHost, backingFilesystem: 'overlayfs' }), []);
  });

  it('loads the overlay module when the kernel lacks it, and asks for 6.8 when the mount API is refused on an old kernel', () => {
    const noDev = deriveAdvice({ ...rootHost, features: { ...features, overlay: { available: false, method: 'tried', detail: 'fsopen(overlay): No such device' } } });
    assert.deepEqual(fixes(noDev), ['modprobe overlay']);
    const old = deriveAdvice({ ...rootHost, kernelRelease: '6.1.0', features: { ...features, overlay: { available: false, method: 'tried', detail: "fsconfig(lowerdir+) '/x/l': Invalid argument" } } });
    assert.deepEqual(fixes(old), ['upgrade the kernel to Linux 6.8 or newer']);
  });

  it('does not blame the filesystem of a non-root process whose overlay probe (outside a user namespace) got EPERM: its containers mount overlay in their own', () => {
    const eperm = { ...features, overlay: { available: false, method: 'tried' as const, detail: "fsopen 'overlay': Operation not permitted" } };
    const advice = deriveAdvice({ ...userHost, features: eperm });
    assert.deepEqual(advice.filter((a) => a.area === 'storage'), []);
    assert.match(deriveAdvice({ ...rootHost, features: eperm })[0]!.fix!, /Runtime\.open/, 'root refused by EPERM is something else');
  });

  it('turns a controller offered but not enabled on v2 into its echo, and names unusable v1 hierarchies', () => {
    const off: ControllerStatus = { usable: false, detail: 'offered but not enabled', fix: 'echo +memory > /sys/fs/cgroup/cgroup.subtree_control' };
    assert.deepEqual(fixes(deriveAdvice({ ...rootHost, cgroups: { ...cgroups, controllers: { ...cgroups.controllers, memory: off } } })), ['echo +memory > /sys/fs/cgroup/cgroup.subtree_control']);
    const noCgroups = deriveAdvice({ ...rootHost, cgroups: { ...cgroups, version: null, mode: 'none', detail: 'no cgroup filesystem' } });
    assert.deepEqual(fixes(noCgroups), ['mount -t cgroup2 none /sys/fs/cgroup']);
  });

  it('explains that cgroup v1 gives a user no limits and how v2 delegation fixes it', () => {
    const ro: ControllerStatus = { usable: false, detail: '/sys/fs/cgroup/memory is not writable' };
    const v1: CgroupInfo = { version: 1, mode: 'hybrid', detail: '', parents: [], controllers: { memory: ro, cpu: ro, pids: ro, cpuset: ro, io: ro, devices: ro } };
    const advice = deriveAdvice({ ...userHost, cgroups: v1 });
    assert.equal(advice.length, 1);
    assert.match(advice[0]!.problem, /cgroup v1 without root: limits on memory, cpu, pids, cpuset, io, devices are refused/);
    assert.match(advice[0]!.fix!, /systemd\.unified_cgroup_hierarchy=1/);
  });

  it('asks root for a packet filter and a user for a user-mode network stack', () => {
    const noFirewall = { ...network, firewall: null, nft: null, bridge: { available: false, detail: 'neither nft nor iptables works here' } };
    assert.deepEqual(fixes(deriveAdvice({ ...rootHost, network: noFirewall })), ['apt-get install nftables']);
    const noStack = { ...network, pasta: null, slirp4netns: null };
    assert.deepEqual(deriveAdvice({ ...rootHost, network: noStack }), [], 'root does not need pasta');
    assert.deepEqual(fixes(deriveAdvice({ ...userHost, network: noStack })), ['apt-get install passt']);
    const noTun = { ...network, userMode: { ...network.userMode, stack: null, tun: { usable: false, detail: '/dev/net/tun: EACCES', fix: 'chmod 0666 /dev/net/tun (Debian\'s udev default)' } } };
    assert.deepEqual(fixes(deriveAdvice({ ...userHost, network: noTun })), ["chmod 0666 /dev/net/tun (Debian's udev default)"]);
    assert.deepEqual(deriveAdvice({ ...rootHost, network: noTun }), [], 'root does not need the tun device');
  });

  it('gives a user without uidmap or subordinate ranges the install and usermod lines, and root nothing', () => {
    const bare: IdMappingInfo = { mode: 'single', reason: 'x', newuidmap: { path: null, setuid: false }, newgidmap: { path: null, setuid: false }, subuid: [], subgid: [] };
    assert.deepEqual(fixes(deriveAdvice({ ...userHost, idMapping: bare })), ['apt-get install uidmap', 'usermod --add-subuids 100000-165535 --add-subgids 100000-165535 ann']);
    assert.deepEqual(deriveAdvice({ ...rootHost, idMapping: { ...bare, mode: 'host' } }), []);
    const notSetuid = { ...subordinate, newuidmap: { path: '/usr/bin/newuidmap', setuid: false } };
    assert.deepEqual(fixes(deriveAdvice({ ...userHost, idMapping: notSetuid })), ['chmod u+s /usr/bin/newuidmap /usr/bin/newgidmap']);
    const onlyGid = { ...subordinate, subuid: [{ start: 100000, count: 1000 }] };
    assert.deepEqual(fixes(deriveAdvice({ ...userHost, idMapping: onlyGid })), ['usermod --add-subuids 100000-165535 ann']);
  });

  it('names the sysctl or AppArmor knob that forbids user namespaces, for users only unless the kernel forbids root too', () => {
    const apparmor = { ...features, userNamespaces: { available: false, method: 'procfs' as const, detail: 'AppArmor restricts unprivileged user namespaces (sysctl kernel.apparmor_restrict_unprivileged_userns is 1)' } };
    assert.match(fixes(deriveAdvice({ ...userHost, features: apparmor })).join(), /sysctl -w kernel\.apparmor_restrict_unprivileged_userns=0/);
    assert.deepEqual(deriveAdvice({ ...rootHost, features: apparmor }), []);
    const zero = { ...features, userNamespaces: { available: false, method: 'procfs' as const, detail: 'sysctl user.max_user_namespaces is 0' } };
    assert.deepEqual(fixes(deriveAdvice({ ...rootHost, features: zero })), ['sysctl -w user.max_user_namespaces=15000']);
    const debian = { ...features, userNamespaces: { available: false, method: 'procfs' as const, detail: 'sysctl kernel.unprivileged_userns_clone is 0' } };
    assert.deepEqual(fixes(deriveAdvice({ ...userHost, features: debian })), ['sysctl -w kernel.unprivileged_userns_clone=1']);
  });

  it('reports missing essentials (pidfd, openat2, seccomp) to everyone', () => {
    const no: FeatureProbe = { available: false, method: 'tried', detail: 'ENOSYS' };
    const advice = deriveAdvice({ ...rootHost, features: { ...features, pidfd: no, openat2: no, seccomp: { ...no, method: 'procfs' } } });
    assert.deepEqual(advice.map((a) => a.area), ['kernel', 'kernel', 'kernel']);
    assert.deepEqual(fixes(advice), ['upgrade the kernel', 'upgrade the kernel', '(none)']);
  });

  it("prints Docker's WARNING lines with the fix", () => {
    assert.deepEqual(warningLines([{ area: 'network', problem: 'no filter', fix: 'apt-get install nftables' }, { area: 'kernel', problem: 'no seccomp' }]), [
      'WARNING: no filter. Fix: apt-get install nftables',
      'WARNING: no seccomp',
    ]);
  });
});
