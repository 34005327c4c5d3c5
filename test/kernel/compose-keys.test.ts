/**
 * Compose keys honoured end to end, checked from inside the containers a stack starts (not
 * only parsed): `ipv4_address`, `aliases`, `container_name`, replica container names,
 * `extra_hosts`, `dns`, `ulimits`, `init`, `tty`/`stdin_open`, `expose`, `stop_signal`,
 * `stop_grace_period`, `security_opt: seccomp=<file>`, `deploy.replicas` (and scaling down on
 * a second `up`), a `required: false` dependency on a service whose profile is off. And a
 * stack whose owner is SIGKILLed in the middle of `up`: another process's `Runtime.open()`,
 * `load()` and `down()` leave nothing of it.
 *
 * Creates bridge networks: run under `flock /tmp/berth-net-tests.lock`.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, test } from 'node:test';
import { Runtime } from '../../lib/runtime.js';
import { berthCgroupDirs, mountLines } from '../helpers/leaks.js';
import { linksOf, networkSkipReason } from '../helpers/network-fixture.js';
import { run, tempDir } from '../helpers/registry.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';

const skip = networkSkipReason() || false;
const IMAGE = 'berth-test/compose-keys:1';

/** mkdir and mkdirat fail with EPERM; everything else is allowed. */
const NO_MKDIR = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir', 'mkdirat'], action: 'SCMP_ACT_ERRNO', errnoRet: 1 }] };

const STACK = `
name: keys
services:
  srv:
    image: ${IMAGE}
    container_name: keys-server
    command: ["sh", "-c", "mkdir -p /www && echo pong > /www/ping && exec httpd -f -p 80 -h /www"]
    networks:
      back:
        aliases: [store]
        ipv4_address: 10.231.142.10
    expose: ["80", "9000/udp"]
  app:
    image: ${IMAGE}
    command: ["sh", "-c", "if [ -t 1 ]; then echo stdout is a tty; fi; exec sleep 600"]
    init: true
    tty: true
    stdin_open: true
    ulimits: { nofile: { soft: 1024, hard: 2048 } }
    extra_hosts: ["gw.example:10.231.142.1"]
    dns: [10.231.142.53]
    stop_signal: SIGUSR1
    stop_grace_period: 3s
    security_opt: ["seccomp=./no-mkdir.json"]
    deploy:
      replicas: \${APP_REPLICAS:-2}
    networks: [back]
    depends_on:
      srv: { condition: service_started }
      debug: { condition: service_started, required: false }
  debug:
    image: ${IMAGE}
    profiles: [debug]
    command: ["sleep", "600"]
networks:
  back:
    ipam: { config: [ { subnet: 10.231.142.0/24 } ] }
`;

/** A stack whose db never turns healthy, so `up` is certainly still waiting when the owner dies. */
const STUCK = `
name: killed
services:
  db:
    image: ${IMAGE}
    command: ["sleep", "600"]
    init: true
    healthcheck: { test: ["CMD", "false"], interval: 1h, start_period: 1h }
  web:
    image: ${IMAGE}
    command: ["sleep", "600"]
    depends_on:
      db: { condition: service_healthy }
`;

/** Brings STUCK up in its own process and prints every event of the stack, one per line. */
const OWNER = `
import { Runtime } from ${JSON.stringify(resolve('lib/runtime.ts'))};
const [root, projectDir] = process.argv.slice(2);
const rt = await Runtime.open({ root });
const stack = await rt.compose.load({ projectDir });
(async () => { for await (const e of stack.events()) console.log(e.name + ' ' + e.action); })();
await stack.up();
console.log('up resolved');
`;

describe('compose: keys honoured on the real kernel', { skip }, () => {
  let work: { path: string; remove: () => void };
  let rt: Runtime;
  let root: string;

  before(async () => {
    work = tempDir('berth-compose-keys-');
    root = join(work.path, 'state');
    rt = await Runtime.open({ root });
    const tar = join(work.path, 'busybox.tar');
    await run('tar', ['-C', busyboxRootfs(), '-cf', tar, '.']);
    await rt.images.import(tar, { ref: IMAGE });
  });

  after(async () => {
    if (rt) {
      for (const c of await rt.containers.list({ all: true }).catch(() => [])) await (await rt.containers.get(c.Id)).remove({ force: true, volumes: true }).catch(() => {});
      for (const n of await rt.networks.list().catch(() => [])) await n.remove().catch(() => {});
      await rt.close();
    }
    work?.remove();
  });

  test('every key reaches the container: names, addresses, hosts, dns, limits, init, tty, seccomp file, replicas', async () => {
    const dir = join(work.path, 'keys');
    mkdirSync(dir);
    writeFileSync(join(dir, 'compose.yaml'), STACK);
    writeFileSync(join(dir, 'no-mkdir.json'), JSON.stringify(NO_MKDIR));
    const stack = await rt.compose.load({ projectDir: dir });
    try {
      await stack.up({ timeout: 120_000 });
      assert.deepEqual((await stack.ps()).map((c) => c.Names[0]), ['/keys-app-1', '/keys-app-2', '/keys-server'], 'two app replicas, srv by container_name, debug (profile off, required: false) not started');
      const [app1, app2] = stack.containers('app');
      const exec = async (c: NonNullable<typeof app1>, script: string) => {
        const r = await c.exec(['sh', '-c', script]);
        return { code: r.exitCode, out: `${r.stdout}${r.stderr}`.trim() };
      };
      // Peers by service name, alias, container name and static address; replicas by their names.
      // (Not `wget -T`: Debian's busybox 1.35 wget segfaults on it.)
      for (const host of ['srv', 'store', 'keys-server', '10.231.142.10']) assert.deepEqual(await exec(app1!, `timeout 10 wget -q -O- http://${host}/ping`), { code: 0, out: 'pong' }, host);
      assert.match((await exec(app1!, 'nslookup keys-app-2 127.0.0.11')).out, /Address:\s*10\.231\.142\.\d+/, 'a replica finds the other by container name');
      assert.match((await exec(app2!, 'cat /etc/hosts')).out, /^10\.231\.142\.1\s+gw\.example$/m, 'extra_hosts');
      // `dns` is the network resolver's upstream for this container; the container asks 127.0.0.11.
      assert.match((await exec(app1!, 'cat /etc/resolv.conf')).out, /^nameserver 127\.0\.0\.11$/m, 'dns');
      assert.deepEqual((await app1!.inspect()).HostConfig.Dns, ['10.231.142.53'], 'dns');
      assert.deepEqual(await exec(app1!, 'echo $(ulimit -n) $(ulimit -Hn)'), { code: 0, out: '1024 2048' }, 'ulimits');
      assert.notEqual((await exec(app1!, 'cat /proc/1/comm')).out, 'sleep', 'init: PID 1 is the init, not the command');
      const denied = await exec(app1!, 'mkdir /tmp/x');
      assert.equal(denied.code, 1, 'the seccomp file');
      assert.match(denied.out, /Operation not permitted/, 'the seccomp file');
      assert.deepEqual(await exec(stack.container('srv'), 'mkdir /tmp/x && echo made'), { code: 0, out: 'made' }, 'the profile is app\'s only');
      const i = await app1!.inspect();
      assert.equal(i.Config.Tty, true);
      assert.equal(i.Config.OpenStdin, true);
      assert.equal(i.Config.StopSignal, 'SIGUSR1');
      assert.equal(i.Config.StopTimeout, 3);
      const lines = [];
      for await (const l of stack.logs({ services: ['app'] })) lines.push(l.line.trim());
      assert.ok(lines.includes('stdout is a tty'), lines.join('|'));
      const srv = await stack.container('srv').inspect();
      assert.deepEqual(Object.keys(srv.Config.ExposedPorts).sort(), ['80/tcp', '9000/udp']);

      // Scaling down on a second up: replica 2 goes, replica 1 (unchanged) stays.
      const app1Id = app1!.id;
      const smaller = await rt.compose.load({ projectDir: dir, env: { APP_REPLICAS: '1' } });
      await smaller.up({ timeout: 120_000 });
      assert.deepEqual((await smaller.ps()).map((c) => c.Names[0]), ['/keys-app-1', '/keys-server']);
      assert.equal(smaller.container('app').id, app1Id);
    } finally {
      await stack.down();
    }
    assert.deepEqual(await rt.containers.list({ all: true }), []);
    assert.deepEqual(await rt.networks.list(), []);
    assert.deepEqual(await linksOf(rt.networks), []);
  });

  test('the owner SIGKILLed in the middle of up: another process opens the runtime, loads the files and down() leaves nothing', async () => {
    const dir = join(work.path, 'killed');
    mkdirSync(dir);
    writeFileSync(join(dir, 'compose.yaml'), STUCK);
    const script = join(work.path, 'owner.mts');
    writeFileSync(script, OWNER);
    const mountsBefore = new Set(mountLines());
    const owner = spawn(process.execPath, ['--import', 'tsx', script, root, dir], { stdio: ['ignore', 'pipe', 'inherit'] });
    const exited = once(owner, 'exit');
    // db has started and web waits for it to turn healthy (it never does): up is mid-way.
    for await (const line of createInterface({ input: owner.stdout! })) {
      assert.notEqual(line, 'up resolved');
      if (line === 'killed-db-1 start') break;
    }
    owner.kill('SIGKILL');
    assert.deepEqual(await exited, [null, 'SIGKILL']);

    const other = await Runtime.open({ root });
    try {
      const stack = await other.compose.load({ projectDir: dir });
      const ids = (await stack.ps()).map((c) => c.Id);
      assert.deepEqual((await stack.ps()).map((c) => [c.Names[0], c.State]), [['/killed-db-1', 'running']], 'the detached db outlived its owner; web was never created');
      await stack.down();
      assert.deepEqual(await other.containers.list({ all: true }), []);
      assert.deepEqual(await other.networks.list(), []);
      assert.deepEqual(await linksOf(other.networks), [], 'no bridge or veth left');
      assert.deepEqual(berthCgroupDirs().filter((d) => ids.some((id) => d.includes(id))), [], 'no cgroup of the stack left');
      assert.deepEqual(mountLines().filter((l) => !mountsBefore.has(l) && l.includes(work.path)), [], 'no mount left');
      for (const id of ids) assert.equal(existsSync(join(root, 'containers', id)), false, 'no container state left');
    } finally {
      await other.close();
    }
  });
});
