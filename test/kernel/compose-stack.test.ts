/**
 * Compose stacks end to end on the real kernel, through `rt.compose` only: a "db" with a
 * healthcheck, a one-shot "migrate" that waits for it and writes into a named volume, and a
 * "web" that waits for both (service_healthy, service_completed_successfully), publishes a
 * port on 127.0.0.1 and answers each request by asking "db" by name. db and migrate run a
 * busybox image served by a loopback registry (Debian's docker-registry); web's image is built
 * by `up` from a Dockerfile on top of it. Then `down`, and nothing of
 * the stack is left. And a dependency that exits early makes `up` fail at once, naming it,
 * its exit code and its last output.
 *
 * Creates bridge networks and publishes ports: run under `flock /tmp/berth-net-tests.lock`.
 */
import assert from 'node:assert/strict';
import { cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Runtime } from '../../lib/runtime.js';
import { DependencyFailedError } from '../../lib/compose/errors.js';
import { AbortError, isBerthError } from '../../lib/errors.js';
import { WaitTimeoutError } from '../../lib/containers/wait-strategies.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';
import { mountLines } from '../helpers/leaks.js';
import { linksOf, networkSkipReason, tcpRead } from '../helpers/network-fixture.js';
import { registryToolsMissing, run, skopeoPush, startRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';

const skip = networkSkipReason() || registryToolsMissing() || false;

/** An OCI image of the busybox rootfs (every applet), pushed as `<registry>/compose/busybox:1`. */
async function pushBusyboxImage(work: string, registry: TestRegistry): Promise<string> {
  const layout = join(work, 'layout');
  const bundle = join(work, 'bundle');
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', `${layout}:1`]);
  await run('umoci', ['unpack', '--image', `${layout}:1`, bundle]);
  cpSync(busyboxRootfs(), join(bundle, 'rootfs'), { recursive: true, verbatimSymlinks: true });
  await run('umoci', ['repack', '--image', `${layout}:1`, bundle]);
  await skopeoPush(layout, '1', registry, 'compose/busybox:1');
  return `${registry.host}/compose/busybox:1`;
}

const STACK = `
name: shop
services:
  db:
    image: \${IMAGE}
    command: ["sh", "-c", "mkdir -p /www && echo \\"rows from $$(hostname)\\" > /www/rows && exec httpd -f -p 5432 -h /www"]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:5432/rows"]
      interval: 200ms
      retries: 50
  migrate:
    image: \${IMAGE}
    command: sh -c 'wget -q -O- http://db:5432/rows > /shared/migrated && echo migrated'
    volumes: ["shared:/shared"]
    depends_on:
      db: { condition: service_healthy }
  web:
    build:
      context: ./web
      args: { BASE: "\${IMAGE}" }
    environment:
      GREETING: \${GREETING:-hello}
    command: ["httpd", "-f", "-p", "8080", "-h", "/www"]
    ports: ["127.0.0.1::8080"]
    volumes: ["shared:/shared:ro"]
    depends_on:
      db: { condition: service_healthy }
      migrate: { condition: service_completed_successfully }
networks:
  default:
    ipam: { config: [ { subnet: 10.231.141.0/24 } ] }
volumes:
  shared: {}
`;

/**
 * HTTP GET from the host to 127.0.0.1:port. Lenient parser: busybox httpd passes the CGI's
 * LF-only header lines through, which Node's strict parser refuses.
 */
function httpGet(port: number, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get({ host: '127.0.0.1', port, path, insecureHTTPParser: true, agent: false, timeout: 30_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}: ${body}`))));
    });
    req.on('timeout', () => req.destroy(new Error('no answer in 30 s'))).on('error', reject);
  });
}

describe('compose: a 3-service stack on the real kernel', { skip }, () => {
  let registry: TestRegistry;
  let work: { path: string; remove: () => void };
  let rt: Runtime;
  let image: string;
  let projectDir: string;

  before(async () => {
    work = tempDir('berth-compose-');
    registry = await startRegistry();
    image = await pushBusyboxImage(work.path, registry);
    rt = await Runtime.open({ root: join(work.path, 'state') });
    projectDir = join(work.path, 'shop');
    mkdirSync(projectDir);
    writeFileSync(join(projectDir, 'compose.yaml'), STACK);
    writeFileSync(join(projectDir, '.env'), 'GREETING=hello from .env\n');
    // web's image is built from a Dockerfile on the registry's image: its CGI asks db by name.
    mkdirSync(join(projectDir, 'web'));
    writeFileSync(join(projectDir, 'web', 'Dockerfile'), 'ARG BASE\nFROM ${BASE}\nCOPY q /www/cgi-bin/q\n');
    writeFileSync(join(projectDir, 'web', 'q'), '#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "$GREETING"\ncat /shared/migrated\nwget -q -O- http://db:5432/rows\n', { mode: 0o755 });
  });

  after(async () => {
    // Whatever a failed test left: every container, network and volume of the state dir.
    if (rt) {
      for (const c of await rt.containers.list({ all: true }).catch(() => [])) await (await rt.containers.get(c.Id)).remove({ force: true, volumes: true }).catch(() => {});
      for (const n of await rt.networks.list().catch(() => [])) await n.remove().catch(() => {});
      for (const v of await rt.volumes.list().catch(() => [])) await rt.volumes.remove(v, { force: true }).catch(() => {});
      await rt.close();
    }
    await registry?.stop();
    work?.remove();
  });

  test('up in dependency order, web answers on 127.0.0.1 asking db by name, down leaves nothing', async () => {
    const mountsBefore = new Set(mountLines());
    const stack = await rt.compose.load({ projectDir, env: { IMAGE: image } });
    assert.equal(stack.name, 'shop');
    const events = stack.events();
    const seen: string[] = [];
    const collecting = (async () => {
      for await (const e of events) seen.push(`${e.name} ${e.action}`);
    })();
    await stack.up({ timeout: 300_000 });

    assert.equal((await rt.images.get('shop-web')).config.Labels?.['com.docker.compose.service'], 'web', 'web was built');
    const ps = await stack.ps();
    assert.deepEqual(ps.map((c) => [c.service, c.Names[0], c.State]), [
      ['db', '/shop-db-1', 'running'],
      ['migrate', '/shop-migrate-1', 'exited'],
      ['web', '/shop-web-1', 'running'],
    ]);
    const web = stack.container('web');
    const labels = (await web.inspect()).Config.Labels;
    assert.equal(labels['com.docker.compose.project'], 'shop');
    assert.equal(labels['com.docker.compose.service'], 'web');
    assert.equal(labels['com.docker.compose.container-number'], '1');
    assert.equal(labels['com.docker.compose.oneoff'], 'False');
    assert.equal((await web.inspect()).Berth.Lifetime, 'detached');
    const migrate = stack.container('migrate');
    assert.equal((await migrate.inspect()).State.ExitCode, 0);

    // The host reaches web; web reaches db by its service name and reads what migrate wrote.
    const port = web.getMappedPort(8080);
    // web has no healthcheck: up resolved once it ran; its server listens a moment later.
    await web.waitForPort(8080, { timeout: 60_000 });
    const body = await httpGet(port, '/cgi-bin/q');
    const dbHost = (await stack.container('db').inspect()).Config.Hostname;
    assert.equal(body, `hello from .env\nrows from ${dbHost}\nrows from ${dbHost}\n`);
    assert.deepEqual((await rt.networks.list()).map((n) => n.name), ['shop_default']);
    assert.deepEqual((await rt.volumes.list()).map((v) => v.name), ['shop_shared']);

    const lines = [];
    for await (const l of stack.logs()) lines.push(`${l.service} ${l.container} ${l.line}`);
    assert.ok(lines.includes('migrate shop-migrate-1 migrated'), lines.join('\n'));

    // Converge: a second up leaves running containers as they are.
    const webId = web.id;
    const dbId = stack.container('db').id;
    await stack.up({ timeout: 300_000 });
    assert.equal(stack.container('web').id, webId);
    // A changed service is recreated; the others stay.
    const changed = await rt.compose.load({ projectDir, env: { IMAGE: image, GREETING: 'changed' } });
    // A stack loaded while the project is up answers container() at once, synchronously.
    assert.equal(changed.container('db').id, dbId);
    await changed.up({ timeout: 300_000 });
    const web2 = changed.container('web');
    assert.notEqual(web2.id, webId);
    assert.equal(changed.container('db').id, dbId);
    await web2.waitForPort(8080, { timeout: 60_000 });
    assert.match(await httpGet(web2.getMappedPort(8080), '/cgi-bin/q'), /^changed\n/);

    await stack.down();
    assert.throws(() => stack.container('web'), (e: unknown) => e instanceof Error && /has no container 1 \(is the stack up\?\)/.test(e.message));
    events.close();
    await collecting;
    for (const name of ['shop-db-1', 'shop-migrate-1', 'shop-web-1']) for (const action of ['create', 'start', 'destroy']) assert.ok(seen.includes(`${name} ${action}`), `${name} ${action} in ${seen.join(', ')}`);
    assert.ok(seen.includes('shop-db-1 health_status'), seen.join(', '));
    // Down in reverse dependency order: web goes before db.
    assert.ok(seen.lastIndexOf('shop-web-1 destroy') < seen.indexOf('shop-db-1 destroy'), seen.join(', '));
    assert.deepEqual(await stack.ps(), []);
    assert.deepEqual(await rt.containers.list({ all: true }), []);
    assert.deepEqual(await rt.networks.list(), []);
    assert.deepEqual(await linksOf(rt.networks), [], 'no bridge or veth of the stack is left');
    assert.deepEqual((await rt.volumes.list()).map((v) => v.name), ['shop_shared'], 'named volumes stay without volumes: true');
    await stack.down({ volumes: true });
    assert.deepEqual(await rt.volumes.list(), []);
    // Other suites may mount meanwhile on this shared machine: only mounts under our work dir count.
    assert.deepEqual(mountLines().filter((l) => !mountsBefore.has(l) && l.includes(work.path)), [], 'no mount of the stack is left');
    await assert.rejects(tcpRead(port, { attempts: 1 }));
  });

  for (const [condition, command, code] of [
    ['service_healthy', "echo starting; echo 'db: cannot open data dir' >&2; exit 3", 3],
    ['service_completed_successfully', 'echo migrating; echo "migration 7 failed" >&2; exit 5', 5],
  ] as const) {
    test(`a dependency that exits early (${condition}) makes up fail at once with its name, exit code and output`, async () => {
      const dir = join(work.path, `broken-${code}`);
      mkdirSync(dir);
      writeFileSync(
        join(dir, 'compose.yaml'),
        `services:
  dep:
    image: ${image}
    command: ["sh", "-c", ${JSON.stringify(command.replace(/\$/g, '$$$$'))}]
    network_mode: none
    healthcheck: { test: ["CMD", "false"], interval: 1h }
  app:
    image: ${image}
    command: ["sleep", "600"]
    network_mode: none
    depends_on:
      dep: { condition: ${condition} }
`,
      );
      const stack = await rt.compose.load({ projectDir: dir, projectName: `broken${code}` });
      try {
        // Far longer than any run of this test: only a fail-fast rejection satisfies the assertion.
        await assert.rejects(stack.up({ timeout: 600_000 }), (e: unknown) => {
          assert.ok(isBerthError(e) && e instanceof DependencyFailedError, String(e));
          assert.equal(e.service, 'app');
          assert.equal(e.dependency, 'dep');
          assert.equal(e.exitCode, code);
          assert.equal(e.container, `broken${code}-dep-1`);
          assert.match(e.message, new RegExp(`exited with code ${code}`));
          assert.ok(e.lastLogLines.some((l) => /cannot open data dir|migration 7 failed/.test(l)), e.lastLogLines.join('|'));
          return true;
        });
        assert.deepEqual((await stack.ps()).map((c) => c.service), ['dep'], 'app was never created');
      } finally {
        await stack.down();
      }
      assert.deepEqual(await stack.ps(), []);
    });
  }

  test('a dependency that never turns healthy: up ends with WaitTimeoutError at its timeout, or AbortError on its signal', async () => {
    const dir = join(work.path, 'stuck');
    mkdirSync(dir);
    writeFileSync(
      join(dir, 'compose.yaml'),
      `services:
  dep:
    image: ${image}
    command: ["sleep", "600"]
    network_mode: none
    healthcheck: { test: ["CMD", "false"], interval: 1h, start_period: 1h }
  app:
    image: ${image}
    command: ["sleep", "600"]
    network_mode: none
    depends_on:
      dep: { condition: service_healthy }
`,
    );
    const stack = await rt.compose.load({ projectDir: dir });
    try {
      await assert.rejects(stack.up({ timeout: 500 }), (e: unknown) => isBerthError(e) && e instanceof WaitTimeoutError && /stack stuck/.test(e.message));
      const ac = new AbortController();
      const up = stack.up({ signal: ac.signal });
      setImmediate(() => ac.abort());
      await assert.rejects(up, (e: unknown) => isBerthError(e) && e instanceof AbortError);
      assert.deepEqual((await stack.ps()).map((c) => c.service), ['dep'], 'app was never created');
    } finally {
      await stack.down({ timeout: 0 });
    }
    assert.deepEqual(await stack.ps(), []);
  });
});
