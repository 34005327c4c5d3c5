/**
 * `{ host: true }`: the host's own tools, read-only, with a generated /etc and a fresh /tmp, and
 * the same isolation as any container.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { run, type RunOptions } from '../../lib/index.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';
import { mountLines } from '../helpers/leaks.js';

function skipReason(): string | false {
  if (process.platform !== 'linux') return 'needs Linux';
  if (process.getuid?.() !== 0) return 'needs root';
  if (!existsSync('/bin/sh')) return 'the host has no /bin/sh';
  return false;
}
const skip = skipReason();
const hostSh = (script: string, options?: RunOptions) => run({ host: true }, ['/bin/sh', '-c', script], options);

describe('{ host: true }: files', { skip }, () => {
  test('host tools run: ls /usr/bin works and lists the host binaries', async () => {
    const r = await hostSh('ls /usr/bin');
    assert.equal(r.exitCode, 0, r.stderr);
    const inside = r.stdout.trim().split('\n');
    assert.ok(inside.includes('env'), 'env missing from /usr/bin');
    assert.equal(inside.length, readdirSync('/usr/bin').length);
  });

  test('a dynamically linked host program runs (ld.so cache and libraries are there)', async () => {
    const r = await run({ host: true }, ['/usr/bin/env', 'ls', '/']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /^usr$/m);
  });

  test('no shadow files or other host secrets under /etc', async () => {
    const secrets = ['/etc/shadow', '/etc/gshadow', '/etc/shadow-', '/etc/sudoers', '/etc/ssh', '/etc/machine-id', '/etc/ssl/private'];
    const r = await hostSh(secrets.map((p) => `if [ -e ${p} ]; then echo present:${p}; fi`).join('; ') + '; true');
    assert.equal(r.stdout, '', 'host secrets visible');
  });

  test('/etc/passwd and /etc/group are generated: no host accounts except root and nobody', async () => {
    const r = await hostSh('cat /etc/passwd; echo ---; cat /etc/group');
    const [passwd, group] = r.stdout.split('---\n');
    const users = passwd!.trim().split('\n').map((l) => l.split(':')[0]);
    assert.ok(users.includes('root'));
    for (const u of users) assert.ok(['root', 'nobody'].includes(u!), `host account ${u} in /etc/passwd`);
    const hostUsers = readFileSync('/etc/passwd', 'utf8').split('\n').map((l) => l.split(':')[0]).filter((u) => u && !['root', 'nobody'].includes(u));
    for (const u of hostUsers) assert.ok(!passwd!.includes(`${u}:`), `host account ${u} leaked`);
    const groups = group!.trim().split('\n').map((l) => l.split(':')[0]);
    for (const g of groups) assert.ok(['root', 'nogroup', 'nobody'].includes(g!), `host group ${g} in /etc/group`);
  });

  test('/usr is read-only', async () => {
    const r = await hostSh('touch /usr/berth-was-here; echo rc=$?; touch /usr/bin/berth-was-here');
    assert.match(r.stdout, /rc=1/);
    assert.match(r.stderr, /Read-only file system/);
    assert.equal(existsSync('/usr/berth-was-here'), false);
    assert.equal(existsSync('/usr/bin/berth-was-here'), false);
  });

  test('/tmp is writable and starts empty, and is not the host /tmp', async () => {
    // The host /tmp holds at least this process's busybox rootfs.
    if (existsSync('/bin/busybox')) busyboxRootfs();
    const r = await hostSh('ls -A /tmp | wc -l; echo data > /tmp/f && cat /tmp/f; stat -c %a /tmp');
    assert.equal(r.stdout, '0\ndata\n1777\n', r.stderr);
  });

  test('the root is writable, and writes never reach the host', async () => {
    const name = `berth-host-root-${process.pid}`;
    const r = await hostSh(`echo x > /${name} && cat /${name} && mkdir -p /home/someone && echo ok`);
    assert.equal(r.stdout, 'x\nok\n', r.stderr);
    assert.equal(existsSync(`/${name}`), false);
  });

  test('host directories outside the bound set are absent (/home, /root contents, this repo)', async () => {
    const repo = process.cwd();
    const r = await hostSh(`ls -A /root | wc -l; test -e ${repo} && echo repo-visible; test -e /var/lib && echo var-lib-visible; true`);
    assert.equal(r.stdout, '0\n', r.stdout);
  });

  test('CA certificates are visible when the host has them', { skip: existsSync('/etc/ssl/certs') ? false : 'no /etc/ssl/certs on this host' }, async () => {
    const r = await hostSh('ls /etc/ssl/certs | wc -l');
    assert.ok(Number(r.stdout.trim()) > 0, 'no certificates inside');
    if (existsSync('/etc/ssl/certs/ca-certificates.crt')) {
      const c = await hostSh('head -c 27 /etc/ssl/certs/ca-certificates.crt');
      assert.equal(c.stdout, '-----BEGIN CERTIFICATE-----');
    }
  });

  test('/etc/hostname, hosts and resolv.conf are generated for the container', async () => {
    const r = await hostSh('hostname; cat /etc/hostname; grep -c localhost /etc/hosts', { hostname: 'hosted' });
    assert.equal(r.stdout.split('\n').slice(0, 2).join('\n'), 'hosted\nhosted');
    assert.ok(Number(r.stdout.split('\n')[2]) >= 1);
  });
});

describe('{ host: true }: isolation', { skip }, () => {
  test('same security floor as a rootfs container', async () => {
    const r = await hostSh('grep -E "^(CapEff|Seccomp|NoNewPrivs):" /proc/self/status');
    assert.match(r.stdout, /^CapEff:\s+00000000a80405fb$/m);
    assert.match(r.stdout, /^Seccomp:\s+2$/m);
    assert.match(r.stdout, /^NoNewPrivs:\s+1$/m);
  });

  test('own pid, net, uts, ipc and mount namespaces', async () => {
    const kinds = ['pid', 'mnt', 'uts', 'ipc', 'net', 'cgroup'];
    const r = await hostSh(`echo $$; ls /sys/class/net; ${kinds.map((k) => `readlink /proc/self/ns/${k}`).join('; ')}`);
    const lines = r.stdout.trim().split('\n');
    assert.equal(lines[0], '1');
    assert.equal(lines[1], 'lo');
    kinds.forEach((k, i) => assert.notEqual(lines[2 + i], readlinkSync(`/proc/self/ns/${k}`), `${k} namespace shared with the host`));
  });

  test('mount is refused and nothing appears in the host mount table', async () => {
    const before = mountLines();
    const r = await hostSh('mount -t tmpfs none /tmp && echo mounted; true');
    assert.equal(r.stdout, '');
    assert.deepEqual(mountLines().filter((l) => !before.includes(l)), []);
  });

  test('masked paths are masked here too', async () => {
    const r = await hostSh('cat /proc/keys | wc -c; ls -A /sys/firmware | wc -l');
    assert.equal(r.stdout, '0\n0\n');
  });

  test('command not found: 127 with a message', async () => {
    const r = await run({ host: true }, ['berth-no-such-tool']);
    assert.equal(r.exitCode, 127);
    assert.match(r.stderr, /berth-no-such-tool/);
  });

  test("user '1000' runs unprivileged and may write /tmp", async () => {
    const r = await hostSh('id -u; touch /tmp/mine && echo ok; grep CapEff /proc/self/status', { user: '1000' });
    assert.equal(r.stdout.split('\n')[0], '1000');
    assert.match(r.stdout, /^ok$/m);
    assert.match(r.stdout, /CapEff:\s+0{16}/);
  });
});
