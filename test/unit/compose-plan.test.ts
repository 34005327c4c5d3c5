/**
 * What `up` makes of a loaded project, without a kernel: the start and stop orders, and each
 * replica's container options (compose's names and labels, networks with the service as an
 * alias, ports, mounts of the project's volumes, the config hash that decides recreation).
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { NotFoundError, UnsupportedError, ValidationError } from '../../lib/errors.js';
import { Stack, type ComposeRuntime } from '../../lib/compose/stack.js';
import { loadProject } from '../../lib/compose/load.js';
import type { ComposeProject } from '../../lib/compose/model.js';
import { configHash, createOptionsFor } from '../../lib/compose/container-plan.js';
import { startOrder, stopOrder } from '../../lib/compose/order.js';

const dir = mkdtempSync(join(tmpdir(), 'berth-compose-plan-'));
after(() => rmSync(dir, { recursive: true, force: true }));

async function project(yaml: string, profiles?: string[]): Promise<ComposeProject> {
  writeFileSync(join(dir, 'compose.yaml'), yaml);
  return loadProject({ projectDir: dir, projectName: 'demo', ...(profiles ? { profiles } : {}) });
}

describe('compose plan: order', () => {
  let p: ComposeProject;
  before(async () => {
    p = await project(`
services:
  web: { image: x, depends_on: { api: { condition: service_healthy } } }
  api: { image: x, depends_on: [db, cache] }
  db: { image: x }
  cache: { image: x }
  sidecar: { image: x, network_mode: "service:web" }
  debug: { image: x, profiles: [debug], depends_on: [db] }
  lonely: { image: x, depends_on: { debug: { condition: service_started, required: false } } }
`);
  });
  it('dependencies first; profile-disabled services out; an optional disabled dependency skipped', () => {
    const order = startOrder(p);
    for (const [before, after] of [['db', 'api'], ['cache', 'api'], ['api', 'web'], ['web', 'sidecar']]) assert.ok(order.indexOf(before!) < order.indexOf(after!), `${before} before ${after} in ${order}`);
    assert.ok(!order.includes('debug'));
    assert.ok(order.includes('lonely'));
  });
  it('asked services bring their dependencies, and an asked service is started whatever its profile', () => {
    assert.deepEqual(startOrder(p, ['api']), ['db', 'cache', 'api']);
    assert.deepEqual(startOrder(p, ['debug']), ['db', 'debug']);
  });
  it('an unknown service is a ValidationError naming it', () => {
    assert.throws(() => startOrder(p, ['nope']), (e: unknown) => e instanceof ValidationError && e.option === 'services[0]');
  });
  it('stop order: dependents before their dependencies', () => {
    const order = stopOrder(p);
    for (const [first, then] of [['api', 'db'], ['web', 'api'], ['sidecar', 'web'], ['debug', 'db']]) assert.ok(order.indexOf(first!) < order.indexOf(then!), `${first} before ${then} in ${order}`);
  });
});

describe('compose plan: container options', () => {
  let p: ComposeProject;
  before(async () => {
    p = await project(`
services:
  web:
    image: example/web
    ports: ["127.0.0.1:8080:80", "9000/udp"]
    volumes: ["data:/data:ro", "./conf:/etc/conf", "/scratch"]
    tmpfs: ["/run:size=1m"]
    networks:
      front: { aliases: [www] }
      back: {}
    labels: { team: shop }
    deploy: { replicas: 2 }
  db:
    image: example/db
  helper:
    image: example/helper
    network_mode: "service:db"
networks:
  front: {}
  back: { name: shared-back }
volumes:
  data: {}
`);
  });
  it('names, compose labels, detached lifetime', () => {
    const o = createOptionsFor(p, p.services.web!, 2, 'example/web');
    assert.equal(o.name, 'demo-web-2');
    assert.equal(o.lifetime, 'detached');
    assert.equal(o.labels!['com.docker.compose.project'], 'demo');
    assert.equal(o.labels!['com.docker.compose.service'], 'web');
    assert.equal(o.labels!['com.docker.compose.container-number'], '2');
    assert.equal(o.labels!['com.docker.compose.oneoff'], 'False');
    assert.equal(o.labels!['com.docker.compose.project.working_dir'], dir);
    assert.equal(o.labels!.team, 'shop');
    assert.match(o.labels!['com.docker.compose.config-hash']!, /^[0-9a-f]{64}$/);
  });
  it('networks by their machine names, the service name an alias on each', () => {
    const o = createOptionsFor(p, p.services.web!, 1, 'example/web');
    assert.deepEqual(o.networks, [
      { network: 'demo_front', aliases: ['web', 'www'] },
      { network: 'shared-back', aliases: ['web'] },
    ]);
    assert.deepEqual(createOptionsFor(p, p.services.db!, 1, 'example/db').networks, [{ network: 'demo_default', aliases: ['db'] }]);
    assert.equal(createOptionsFor(p, p.services.helper!, 1, 'example/helper').network, 'container:demo-db-1');
  });
  it('ports and mounts', () => {
    const o = createOptionsFor(p, p.services.web!, 1, 'example/web');
    assert.deepEqual(o.ports, [
      { container: 80, host: 8080, hostIp: '127.0.0.1', protocol: 'tcp' },
      { container: 9000, host: 0, protocol: 'udp' },
    ]);
    assert.deepEqual(o.mounts, [
      { type: 'volume', source: 'demo_data', target: '/data', readonly: true },
      { type: 'bind', source: join(dir, 'conf'), target: '/etc/conf', readonly: false },
      { type: 'volume', target: '/scratch', readonly: false },
      { type: 'tmpfs', target: '/run', size: '1m' },
    ]);
  });
  it('the config hash: equal options give equal hashes whatever the key order; a change changes it', () => {
    const a = createOptionsFor(p, p.services.web!, 1, 'example/web');
    const b = createOptionsFor(p, p.services.web!, 1, 'example/web');
    assert.equal(a.labels!['com.docker.compose.config-hash'], b.labels!['com.docker.compose.config-hash']);
    assert.equal(configHash({ image: 'x', cmd: ['a'], env: { A: '1', B: '2' } }), configHash({ env: { B: '2', A: '1' }, cmd: ['a'], image: 'x' }));
    assert.notEqual(configHash({ image: 'x', cmd: ['a'] }), configHash({ image: 'x', cmd: ['b'] }));
    assert.notEqual(a.labels!['com.docker.compose.config-hash'], createOptionsFor(p, p.services.web!, 1, 'example/web:2').labels!['com.docker.compose.config-hash']);
  });
});

describe('compose plan: build', () => {
  it('a build: service whose image is missing is built by rt.images.build() with its context, dockerfile, target and args, tagged <project>-<service>', async () => {
    const p = await project('services:\n  app:\n    build: { context: ./src, dockerfile: app.Dockerfile, target: prod, args: { V: "1", UNSET: null } }\n    network_mode: none\n');
    assert.equal(p.services.app!.image, 'demo-app');
    const calls: Array<[string, unknown]> = [];
    const stop = new Error('stop after the build');
    // Only the calls up() makes up to the build are answered: the image lookup, then the build.
    const rt = {
      images: {
        get: async (ref: string) => {
          calls.push(['images.get', ref]);
          throw new NotFoundError(ref);
        },
        build: async (options: Record<string, unknown>) => {
          calls.push(['images.build', { ...options, signal: options.signal instanceof AbortSignal }]);
          throw stop;
        },
      },
    } as unknown as ComposeRuntime;
    await assert.rejects(new Stack(rt, p).up(), (e: unknown) => e === stop);
    assert.deepEqual(calls, [
      ['images.get', 'demo-app'],
      ['images.build', { context: join(dir, 'src'), dockerfile: 'app.Dockerfile', target: 'prod', buildArgs: { V: '1' }, tags: ['demo-app'], labels: { 'com.docker.compose.project': 'demo', 'com.docker.compose.service': 'app' }, signal: true }],
    ]);
  });
  it('build keys berth does not read are an UnsupportedError naming them', async () => {
    await assert.rejects(project('services:\n  app:\n    build: { context: ., ssh: [default] }\n'), (e: unknown) => e instanceof UnsupportedError && e.option === 'services.app.build.ssh');
  });
});

describe('compose plan: options of up, down and logs', () => {
  // Validation comes before any use of the runtime: an empty one proves it.
  const stack = async () => new Stack({} as ComposeRuntime, await project('services: {s: {image: x}}\n'));
  const cases: Array<[string, (s: Stack) => Promise<unknown>, string]> = [
    ['up: unknown option', (s) => s.up({ servics: ['s'] } as never), 'servics'],
    ['up: pull', (s) => s.up({ pull: 'sometimes' as never }), 'pull'],
    ['up: timeout', (s) => s.up({ timeout: -1 }), 'timeout'],
    ['up: wait', (s) => s.up({ wait: 'yes' as never }), 'wait'],
    ['up: signal', (s) => s.up({ signal: {} as never }), 'signal'],
    ['up: unknown service', (s) => s.up({ services: ['nope'] }), 'services[0]'],
    ['down: unknown option', (s) => s.down({ volume: true } as never), 'volume'],
    ['down: timeout', (s) => s.down({ timeout: Number.NaN }), 'timeout'],
    ['logs: tail', (s) => s.logs({ tail: -2 }).next(), 'tail'],
    ['logs: unknown service', (s) => s.logs({ services: ['nope'] }).next(), 'services'],
  ];
  for (const [name, call, option] of cases) {
    it(`${name}: ValidationError naming ${option}`, async () => {
      await assert.rejects(call(await stack()), (e: unknown) => e instanceof ValidationError && e.option === option);
    });
  }
});
