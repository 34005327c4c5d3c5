/**
 * Differential: one compose file brought up by Debian's `docker-compose` 1.29 (against a private
 * dockerd started as the benchmark starts it) and by berth's `rt.compose`, then the same facts
 * read from both: the services and their containers' names, compose's labels (project, service,
 * container-number, oneoff), each container's environment, the published port answering on
 * 127.0.0.1, a one-shot service's exit code and output, and name resolution between services
 * (service name, alias, container name).
 *
 * One documented difference is compared modulo: docker-compose 1.x names containers
 * `<project>_<service>_<n>`, Compose v2 (and berth, as issue 14 asks) `<project>-<service>-<n>`.
 * Both images are the same busybox tree imported under the same reference.
 *
 * Creates bridge networks and publishes ports: run under `flock /tmp/berth-net-tests.lock`.
 */
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { Runtime } from '../../lib/runtime.js';
import { busyboxRootfs } from '../helpers/busybox-rootfs.js';
import { composePeerMissing, DockerPeer, removeDockerTree } from '../helpers/compose-docker.js';
import { linksOf, networkSkipReason } from '../helpers/network-fixture.js';
import { run, tempDir } from '../helpers/registry.js';

const IMAGE = 'berth-test/compose-diff:1';
const PROJECT = 'diffp';

const STACK = `
services:
  db:
    image: ${IMAGE}
    init: true
    command: ["sh", "-c", "mkdir -p /www && echo \\"rows of $$ROLE\\" > /www/rows && exec httpd -f -p 5432 -h /www"]
    environment:
      ROLE: database
      FROM_DOTENV: \${FROM_DOTENV}
    networks:
      default:
        aliases: [store]
    healthcheck:
      test: ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:5432/rows"]
      interval: 500ms
      retries: 60
  migrate:
    image: ${IMAGE}
    command: ["sh", "-c", "wget -q -O- http://db:5432/rows"]
    depends_on:
      db: { condition: service_healthy }
  web:
    image: ${IMAGE}
    init: true
    environment: ["GREETING=\${GREETING:-hello}", "SPACED=a b"]
    env_file: [web.env]
    command: ["sh", "-c", "mkdir -p /www && echo \\"$$GREETING $$FROM_FILE\\" > /www/index.html && exec httpd -f -p 8080 -h /www"]
    ports: ["127.0.0.1::8080"]
    depends_on:
      db: { condition: service_healthy }
      migrate: { condition: service_completed_successfully }
`;

/** What the test reads from either engine, names already in Compose v2's spelling. */
interface Facts {
  containers: Array<{ name: string; service: string; number: string; oneoff: string; project: string; state: string }>;
  /** `env` inside db and web (HOSTNAME's value, a container id, masked). */
  env: Record<string, string[]>;
  /** What web's published port answers on 127.0.0.1. */
  published: string;
  /** migrate's exit code and output. */
  migrate: { exitCode: number; output: string };
  /** From web: db by service name, alias and container name. */
  resolution: string[];
}

const v2Name = (name: string) => name.replace(/^\//, '').replace(/^diffp_(\w+)_(\d+)$/, 'diffp-$1-$2');
const maskEnv = (text: string) => text.trim().split('\n').map((l) => l.replace(/^HOSTNAME=.*/, 'HOSTNAME=<id>')).sort();
const RESOLVE = (dbName: string) => `for h in db store ${dbName}; do wget -q -O- http://$h:5432/rows || echo "$h: failed"; done`;

/** GET http://127.0.0.1:port/, retried until the server listens (it starts a moment after its container). */
async function httpGet(port: number): Promise<string> {
  const once = () =>
    new Promise<string>((resolve, reject) => {
      const req = get({ host: '127.0.0.1', port, path: '/', agent: false, timeout: 10_000 }, (res) => {
        let body = '';
        res.setEncoding('utf8').on('data', (c: string) => (body += c)).on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new Error(`HTTP ${res.statusCode}`))));
      });
      req.on('timeout', () => req.destroy(new Error('no answer in 10 s'))).on('error', reject);
    });
  for (let attempt = 0; ; attempt++) {
    try {
      return await once();
    } catch (error) {
      if (attempt >= 100) throw error;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const tools = networkSkipReason() || composePeerMissing() || false;

describe('compose differential: docker-compose 1.29 and berth bring up the same stack alike', { skip: tools }, () => {
  let work: { path: string; remove: () => void };
  let projectDir: string;
  let tar: string;
  let docker: DockerPeer | undefined;
  let dockerSkip: string | undefined;
  let rt: Runtime | undefined;

  before(async () => {
    work = tempDir('berth-compose-diff-');
    projectDir = join(work.path, PROJECT);
    mkdirSync(projectDir);
    writeFileSync(join(projectDir, 'compose.yaml'), STACK);
    writeFileSync(join(projectDir, '.env'), 'FROM_DOTENV=dotenv value\n');
    writeFileSync(join(projectDir, 'web.env'), 'FROM_FILE=from web.env\n# a comment\nQUOTED="x y"\n');
    tar = join(work.path, 'busybox.tar');
    await run('tar', ['-C', busyboxRootfs(), '-cf', tar, '.']);
    try {
      docker = await DockerPeer.start(work.path);
    } catch (error) {
      dockerSkip = `dockerd cannot start on this machine: ${(error as Error).message}`;
    }
  });

  after(async () => {
    if (docker) {
      await docker.compose(projectDir, ['-f', 'compose.yaml', 'down', '-v', '--timeout', '1']).catch(() => {});
      await docker.stop();
    }
    if (rt) {
      for (const c of await rt.containers.list({ all: true }).catch(() => [])) await (await rt.containers.get(c.Id)).remove({ force: true }).catch(() => {});
      for (const n of await rt.networks.list().catch(() => [])) await n.remove().catch(() => {});
      await rt.close();
    }
    if (work) removeDockerTree(work.path);
  });

  async function dockerFacts(d: DockerPeer): Promise<Facts> {
    await d.docker(['import', tar, IMAGE]);
    await d.compose(projectDir, ['-f', 'compose.yaml', 'up', '-d']);
    const ids = (await d.docker(['ps', '-a', '-q', '--filter', `label=com.docker.compose.project=${PROJECT}`])).trim().split('\n');
    const inspected = JSON.parse(await d.docker(['inspect', ...ids])) as Array<{ Name: string; State: { Status: string; ExitCode: number }; Config: { Labels: Record<string, string> }; NetworkSettings: { Ports: Record<string, Array<{ HostIp: string; HostPort: string }> | null> } }>;
    const byService = new Map(inspected.map((i) => [i.Config.Labels['com.docker.compose.service']!, i]));
    const name = (service: string) => byService.get(service)!.Name.replace(/^\//, '');
    const env: Record<string, string[]> = {};
    for (const s of ['db', 'web']) env[s] = maskEnv(await d.docker(['exec', name(s), 'env']));
    const binding = byService.get('web')!.NetworkSettings.Ports['8080/tcp']![0]!;
    assert.equal(binding.HostIp, '127.0.0.1');
    return {
      containers: inspected.map((i) => labelled(i.Name, i.Config.Labels, i.State.Status)),
      env,
      published: await httpGet(Number(binding.HostPort)),
      migrate: { exitCode: byService.get('migrate')!.State.ExitCode, output: (await d.docker(['logs', name('migrate')])).trim() },
      resolution: (await d.docker(['exec', name('web'), 'sh', '-c', RESOLVE(name('db'))])).trim().split('\n'),
    };
  }

  async function berthFacts(r: Runtime): Promise<Facts> {
    await r.images.import(tar, { ref: IMAGE });
    const stack = await r.compose.load({ projectDir });
    await stack.up({ timeout: 120_000 });
    const ps = await stack.ps();
    const exec = async (service: string, argv: string[]) => {
      const res = await stack.container(service).exec(argv);
      assert.equal(res.exitCode, 0, `${service}: ${argv.join(' ')}: ${res.stderr}`);
      return res.stdout;
    };
    const env: Record<string, string[]> = {};
    for (const s of ['db', 'web']) env[s] = maskEnv(await exec(s, ['env']));
    const migrateLines = [];
    for await (const l of stack.logs({ services: ['migrate'] })) migrateLines.push(l.line);
    const web = stack.container('web');
    return {
      containers: ps.map((c) => labelled(c.Names[0]!, c.Labels, c.State)),
      env,
      published: await httpGet(web.getMappedPort(8080)),
      migrate: { exitCode: (await stack.container('migrate').inspect()).State.ExitCode, output: migrateLines.join('\n').trim() },
      resolution: (await exec('web', ['sh', '-c', RESOLVE(`${PROJECT}-db-1`)])).trim().split('\n'),
    };
  }

  function labelled(name: string, labels: Record<string, string>, state: string): Facts['containers'][number] {
    return {
      name: v2Name(name),
      service: labels['com.docker.compose.service']!,
      number: labels['com.docker.compose.container-number']!,
      oneoff: labels['com.docker.compose.oneoff']!,
      project: labels['com.docker.compose.project']!,
      state,
    };
  }

  test('same services, names (modulo _ and -), labels, environment, published port, one-shot result and name resolution', async (t) => {
    if (!docker) return t.skip(dockerSkip);
    const theirs = await dockerFacts(docker);
    await docker.compose(projectDir, ['-f', 'compose.yaml', 'down', '--timeout', '10']);

    rt = await Runtime.open({ root: join(work.path, 'berth') });
    const ours = await berthFacts(rt);
    const sort = (f: Facts) => ({ ...f, containers: [...f.containers].sort((a, b) => a.name.localeCompare(b.name)) });

    // The expected values are spelled out once, so a fact both engines got wrong alike still fails.
    assert.deepEqual(sort(theirs).containers.map((c) => [c.name, c.service, c.number, c.oneoff, c.project, c.state]), [
      ['diffp-db-1', 'db', '1', 'False', 'diffp', 'running'],
      ['diffp-migrate-1', 'migrate', '1', 'False', 'diffp', 'exited'],
      ['diffp-web-1', 'web', '1', 'False', 'diffp', 'running'],
    ]);
    assert.ok(theirs.env.web!.includes('QUOTED=x y') && theirs.env.db!.includes('FROM_DOTENV=dotenv value'), JSON.stringify(theirs.env));
    assert.equal(theirs.published, 'hello from web.env\n');
    assert.deepEqual(theirs.resolution, ['rows of database', 'rows of database', 'rows of database']);
    assert.deepEqual(sort(ours), sort(theirs));

    await (await rt.compose.load({ projectDir })).down();
    assert.deepEqual(await rt.containers.list({ all: true }), []);
    assert.deepEqual(await rt.networks.list(), []);
    assert.deepEqual(await linksOf(rt.networks), []);
  });
});
