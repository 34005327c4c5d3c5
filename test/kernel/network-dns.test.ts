/**
 * The embedded resolver of user networks (docs/design/networks.md § DNS), observed from inside
 * containers with busybox's nslookup (a DNS client of its own: no /etc/hosts involved): names,
 * aliases and hostnames with and without the network's name as domain, PTR, isolation between
 * networks, forwarding to an upstream (a dnsmasq on 127.0.0.77, the only server contacted),
 * REFUSED on internal networks, a flooding member, and the resolver's exit when its network is
 * empty. Every address contacted is on loopback or in a namespace these tests made.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';
import { Runtime } from '../../lib/index.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';
import { background, eventually, networkSandbox, networkSkipReason, sh, testSubnet, type NetworkSandbox } from '../helpers/network-fixture.js';

const UPSTREAM = '127.0.0.77';
const dnsmasq = ['/usr/sbin/dnsmasq', '/usr/bin/dnsmasq'].find((p) => spawnSync('test', ['-x', p]).status === 0);
const skip = networkSkipReason() || (dnsmasq ? false : 'dnsmasq is not installed (scripts/test-deps.sh: dnsmasq-base)');

/** nslookup through the container's resolver, retried (bounded) until it answers at all. */
const lookup = (host: string) => `for i in $(seq 50); do out=$(nslookup ${host} 127.0.0.11 2>&1) && break; case "$out" in *NXDOMAIN*|*REFUSED*) break;; esac; sleep 0.1; done; echo "== ${host}"; echo "$out"`;

/** Pids of the resolvers of the state root `root`. */
function resolversOf(root: string): number[] {
  const out: number[] = [];
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const argv = readFileSync(`/proc/${d}/cmdline`, 'utf8').split('\0');
      if (argv[1] === 'dns' && argv[2] === root) out.push(Number(d));
    } catch {
      // gone
    }
  }
  return out;
}

describe('embedded DNS on user networks', { skip }, () => {
  let box: NetworkSandbox;
  let upstream: ChildProcess;
  before(async () => {
    box = networkSandbox();
    upstream = spawn(dnsmasq!, ['-k', '--no-resolv', '--no-hosts', '--bind-interfaces', `--listen-address=${UPSTREAM}`, '--port=53', '--address=/upstream.test/10.9.8.7', '--log-facility=-'], {
      stdio: 'ignore',
    });
    // Ready when it answers.
    await eventually(() => spawnSync('busybox', ['nslookup', 'upstream.test', UPSTREAM], { encoding: 'utf8' }).stdout.includes('10.9.8.7'), 10_000);
  });
  after(async () => {
    upstream?.kill('SIGTERM');
    await box.cleanup();
  });

  test('names, aliases and hostnames resolve from a peer, bare and with the network as domain; PTR; upstream names', async () => {
    const net = await box.svc.create({ name: 'dnsnet', subnet: testSubnet(61) });
    const web = background('sleep 60', { networks: [{ network: net, aliases: ['db'] }], hostname: 'web' });
    try {
      const ip = await eventually(async () => Object.values((await net.inspect()).Containers)[0]?.IPv4Address.split('/')[0]);
      assert.ok(ip);
      const r = await sh(['web', 'db', 'web.dnsnet', 'WEB.DnsNet', ip, 'nobody', 'upstream.test', 'client'].map(lookup).join('; ') + '; cat /etc/resolv.conf; cat /etc/hosts', {
        network: net,
        hostname: 'client',
        dns: [UPSTREAM],
      });
      assert.equal(r.exitCode, 0, r.stderr);
      const section = (h: string) => r.stdout.split('== ').find((s) => s.startsWith(`${h}\n`)) ?? '';
      for (const h of ['web', 'db', 'web.dnsnet', 'WEB.DnsNet']) assert.match(section(h), new RegExp(`Address:\\s*${ip.replace(/\./g, '\\.')}`), h);
      assert.match(section(ip), /name = web\.dnsnet/, 'PTR');
      assert.match(section('nobody'), /NXDOMAIN/);
      assert.match(section('upstream.test'), /10\.9\.8\.7/, 'forwarded to the container\'s dns server');
      assert.match(section('client'), /Address:\s*10\.231\.61\./, 'itself');
      assert.match(r.stdout, /^nameserver 127\.0\.0\.11$/m);
      assert.doesNotMatch(r.stdout, /nameserver 127\.0\.0\.77/, 'the upstream is the resolver\'s, not the container\'s');
      assert.doesNotMatch(r.stdout.slice(r.stdout.indexOf('# Generated')), /\bweb\b/, 'peers are not in /etc/hosts');
    } finally {
      await web.stop();
    }
  });

  test('a member of another network is NXDOMAIN, by name and by PTR', async () => {
    const a = await box.svc.create({ name: 'dns-a', subnet: testSubnet(62) });
    const b = await box.svc.create({ name: 'dns-b', subnet: testSubnet(63) });
    const inB = background('sleep 60', { network: b, hostname: 'hidden' });
    try {
      const ip = await eventually(async () => Object.values((await b.inspect()).Containers)[0]?.IPv4Address.split('/')[0]);
      assert.ok(ip);
      const same = await sh(lookup('hidden'), { network: b });
      assert.match(same.stdout, new RegExp(ip.replace(/\./g, '\\.')), 'resolves on its own network (the test can fail)');
      const r = await sh(`${lookup('hidden')}; ${lookup('hidden.dns-b')}; ${lookup(ip)}`, { network: a, dns: [UPSTREAM] });
      assert.equal(r.stdout.match(/NXDOMAIN/g)?.length, 3, r.stdout);
      assert.doesNotMatch(r.stdout, /name = hidden/);
    } finally {
      await inB.stop();
    }
  });

  test('an internal network forwards nothing: REFUSED', async () => {
    const net = await box.svc.create({ name: 'dns-internal', subnet: testSubnet(64), internal: true });
    const peer = background('sleep 60', { network: net, hostname: 'inside' });
    try {
      const r = await sh(`${lookup('upstream.test')}; ${lookup('inside')}`, { network: net, dns: [UPSTREAM] });
      assert.match(r.stdout, /== upstream\.test\n[^=]*REFUSED/);
      assert.doesNotMatch(r.stdout, /10\.9\.8\.7/);
      assert.match(r.stdout, /== inside\n[^=]*Address:\s*10\.231\.64\./, 'its own names still resolve');
    } finally {
      await peer.stop();
    }
  });

  test('one member floods the resolver; a peer still resolves names and upstream names', async () => {
    const net = await box.svc.create({ name: 'dns-flood', subnet: testSubnet(65) });
    // A valid query for an upstream name (forwarded: it also exercises the forward limits),
    // concatenated many times per datagram read by nc; 4 writers.
    const q = '\\022\\064\\001\\000\\000\\001\\000\\000\\000\\000\\000\\000\\005flood\\010upstream\\004test\\000\\000\\001\\000\\001';
    const flood = `for w in 1 2 3 4; do (while :; do printf '${q}'; done | nc -u 127.0.0.11 53 >/dev/null 2>&1) & done; touch /tmp/started; sleep 60`;
    const target = background('sleep 60', { network: net, hostname: 'target' });
    const flooder = background(flood, { network: net, hostname: 'flooder', dns: [UPSTREAM] });
    try {
      await new Promise((r) => setTimeout(r, 1000));
      const r = await sh(`${lookup('target')}; ${lookup('upstream.test')}`, { network: net, dns: [UPSTREAM] });
      assert.match(r.stdout, /== target\n[^=]*Address:\s*10\.231\.65\./);
      assert.match(r.stdout, /== upstream\.test\n[^=]*10\.9\.8\.7/);
    } finally {
      await flooder.stop();
      await target.stop();
    }
  });

  test('the resolver exits once its network has no member, and comes back with the next one', async () => {
    const net = await box.svc.create({ name: 'dns-life', subnet: testSubnet(66) });
    const r = await sh(lookup('solo'), { network: net, hostname: 'solo' });
    assert.match(r.stdout, /Address:\s*10\.231\.66\./);
    assert.ok(await eventually(() => resolversOf(box.root).length === 0, 10_000), `resolver still running: ${resolversOf(box.root).join(' ')}`);
    const again = await sh(lookup('solo2'), { network: net, hostname: 'solo2' });
    assert.match(again.stdout, /Address:\s*10\.231\.66\./);
    assert.ok(await eventually(() => resolversOf(box.root).length === 0, 10_000));
  });

  test('the owner SIGKILLed with detached containers: names still resolve; reconciliation forgets the dead; the resolver exits with the last', async () => {
    const root = mkdtempSync(join(tmpdir(), 'berth-dns-owner-'));
    const script = join(root, 'owner.mts');
    // Creates the network and two detached containers, reports, then idles until killed.
    writeFileSync(
      script,
      `import { Runtime } from ${JSON.stringify(resolve('lib/runtime.ts'))};
const [root, rootfs] = process.argv.slice(2);
const rt = await Runtime.open({ root });
await rt.networks.create({ name: 'orphans', subnet: '10.231.67.0/24' });
const ids = [];
for (const name of ['alpha', 'beta']) {
  const c = await rt.containers.create({ image: { rootfs }, cmd: ['sleep', '600'], name, network: 'orphans', lifetime: 'detached' });
  await c.start();
  ids.push(c.id);
}
console.log(JSON.stringify(ids));
setInterval(() => {}, 1 << 30);
`,
    );
    const owner = spawn(process.execPath, ['--import', 'tsx', script, root, busyboxRootfs()], { stdio: ['ignore', 'pipe', 'inherit'] });
    let rt: Runtime | undefined;
    try {
      const [line] = (await once(owner.stdout!, 'data')) as [Buffer];
      const [alphaId, betaId] = JSON.parse(line.toString()) as [string, string];
      owner.kill('SIGKILL');
      await once(owner, 'exit');
      assert.equal(resolversOf(root).length, 1, 'the resolver is not tied to its starter');
      rt = await Runtime.open({ root });
      const alpha = await rt.containers.get(alphaId);
      const beta = await rt.containers.get(betaId);
      const ask = async (name: string) => (await beta.exec(['nslookup', name, '127.0.0.11'])).stdout;
      assert.match(await ask('alpha'), /Address:\s*10\.231\.67\./, 'a detached peer resolves after its owner died');
      assert.match(await ask('alpha.orphans'), /Address:\s*10\.231\.67\./);
      // alpha dies with no Node process watching; the next runtime's reconciliation forgets it.
      process.kill((await alpha.inspect()).State.Pid, 'SIGKILL');
      await eventually(async () => !(await alpha.inspect()).State.Running, 10_000);
      await (await Runtime.open({ root })).networks.reconcile();
      assert.ok(await eventually(async () => /NXDOMAIN/.test(await ask('alpha')), 10_000), 'the dead peer is forgotten');
      await alpha.remove({ force: true });
      await beta.remove({ force: true });
      assert.ok(await eventually(() => resolversOf(root).length === 0, 10_000), 'the resolver exits with its last member');
      await (await rt.networks.get('orphans')).remove();
    } finally {
      owner.kill('SIGKILL');
      if (rt) for (const c of await rt.containers.list({ all: true }).catch(() => [])) await (await rt.containers.get(c.Id)).remove({ force: true }).catch(() => {});
      for (const pid of resolversOf(root)) process.kill(pid, 'SIGKILL');
      if (rt) for (const n of await rt.networks.list().catch(() => [])) await n.remove().catch(() => {});
      rmSync(root, { recursive: true, force: true });
    }
  });

  test('250 containers on one network: each resolves its neighbour by name', { timeout: 15 * 60_000 }, async () => {
    const N = 250;
    const net = await box.svc.create({ name: 'dns-many', subnet: '10.232.0.0/16' });
    const marks = mkdtempSync(join(tmpdir(), 'berth-dns-many-'));
    const ac = new AbortController();
    const runs: Array<Promise<unknown>> = [];
    try {
      for (let i = 0; i < N; i++) {
        // Each asks for the next one (which may not have started yet: bounded retries), writes
        // the answer where the test reads it, then stays on the network for the others.
        const next = `m${(i + 1) % N}`;
        const script = `for t in $(seq 1200); do out=$(nslookup ${next} 127.0.0.11 2>/dev/null | grep -A1 'Name:' | grep Address) && break; sleep 0.5; done; echo "$out" > /out/${i}; exec sleep 3600`;
        runs.push(sh(script, { network: net, hostname: `m${i}`, signal: ac.signal, mounts: [{ type: 'bind', source: marks, target: '/out' }] }).catch((e: unknown) => e));
        // Batches of 10: the point is how many there are, not how fast they come.
        if (i % 10 === 9) await eventually(async () => Object.keys((await net.inspect()).Containers).length > i - 5, 120_000);
      }
      assert.ok(await eventually(() => readdirSync(marks).length === N, 10 * 60_000), `${readdirSync(marks).length} of ${N} answered`);
      const inspect = (await net.inspect()).Containers;
      const ipOf = new Map(Object.values(inspect).map((c) => [c.Name, c.IPv4Address.split('/')[0]]));
      let right = 0;
      for (let i = 0; i < N; i++) {
        const text = readFileSync(join(marks, String(i)), 'utf8');
        const want = [...ipOf.entries()].find(([, ip]) => text.includes(`Address: ${ip}`));
        if (want) right++;
      }
      assert.equal(right, N, 'every container got an address of its network');
      assert.equal(resolversOf(box.root).length, 1, 'one resolver for the whole network');
    } finally {
      ac.abort();
      await Promise.all(runs);
      rmSync(marks, { recursive: true, force: true });
    }
  });

  test('a join and a leave touch one name file: none of the other members\' (a counter, not a clock)', { skip: spawnSync('inotifywait', ['--help']).error ? 'inotifywait not installed (inotify-tools)' : false }, async () => {
    const net = await box.svc.create({ name: 'dns-o1', subnet: testSubnet(68) });
    const dir = join(box.root, 'networks', `${net.id}.dns`);
    const ac = new AbortController();
    const peers: Array<Promise<unknown>> = [];
    try {
      for (let i = 0; i < 12; i++) peers.push(sh('sleep 600', { network: net, hostname: `o${i}`, signal: ac.signal }).catch(() => {}));
      await eventually(async () => Object.keys((await net.inspect()).Containers).length === 12, 60_000);
      const watcher = spawn('inotifywait', ['-m', '--format', '%f|%e', '-e', 'open,modify,attrib,moved_to,moved_from,create,delete', dir], { stdio: ['ignore', 'pipe', 'pipe'] });
      let out = '';
      watcher.stdout!.on('data', (d) => (out += d));
      await new Promise<void>((resolve, reject) => {
        let err = '';
        watcher.stderr!.on('data', (d) => {
          err += d;
          if (err.includes('Watches established')) resolve();
        });
        watcher.on('exit', (code) => reject(new Error(`inotifywait exited ${code}: ${err}`)));
      });
      const r = await sh(lookup('o3'), { network: net, hostname: 'newcomer' });
      assert.match(r.stdout, /Address:\s*10\.231\.68\./, 'the newcomer resolved a peer');
      await new Promise((res) => setTimeout(res, 500));
      watcher.kill('SIGTERM');
      const touched = new Set(out.trim().split('\n').filter(Boolean).map((l) => l.split('|')[0]!).filter((f) => f !== ''));
      const files = [...touched].filter((f) => !f.startsWith('.'));
      assert.equal(files.length, 1, `files touched by one join + leave: ${[...touched].join(' ')}`);
      // The resolver (re)reads only the file an event names: opens of peers' files would show here.
      assert.ok(touched.size <= 2, `only the newcomer's file and its temp: ${[...touched].join(' ')}`);
      assert.doesNotMatch(out, /^\|OPEN,ISDIR/m, 'nobody listed the directory (no rescan per join)');
    } finally {
      ac.abort();
      await Promise.all(peers);
    }
  });
});
