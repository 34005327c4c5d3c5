/**
 * `rt.compose.load()`'s loader on real files: YAML anchors and merge keys, the merge rules for
 * several files, the short and long syntaxes, naming, profiles, unknown and unsupported keys.
 * The files are our own, written after the compose specification's examples.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { UnsupportedError, ValidationError } from '../../lib/errors.js';
import { loadProject, type ComposeLoadOptions } from '../../lib/compose/load.js';
import { parseShortPort, parseShortVolume } from '../../lib/compose/service-syntax.js';
import { splitShellWords } from '../../lib/compose/shell-words.js';
import { durationMs } from '../../lib/compose/service-options.js';
import { chooseProjectName } from '../../lib/compose/project-name.js';

const base = mkdtempSync(join(tmpdir(), 'berth-compose-load-'));
after(() => rmSync(base, { recursive: true, force: true }));
let n = 0;

/** A project directory named `dir` holding `files` (name -> text). */
function project(files: Record<string, string>, dir = `My App.${n++}`): string {
  const d = join(base, dir);
  mkdirSync(d, { recursive: true });
  for (const [name, text] of Object.entries(files)) writeFileSync(join(d, name), text);
  return d;
}

async function load(files: Record<string, string>, options: ComposeLoadOptions = {}) {
  return loadProject({ projectDir: project(files), ...options });
}

describe('compose load: YAML', () => {
  it('anchors, aliases and << merge keys', async () => {
    const p = await load({
      'compose.yaml': `
x-common: &common
  restart: always
  environment: { LEVEL: info }
services:
  a:
    <<: *common
    image: busybox
  b:
    <<: *common
    image: busybox
    environment: { LEVEL: debug }
`,
    });
    assert.equal(p.services.a!.options.restart, 'always');
    assert.deepEqual(p.services.a!.options.env, { LEVEL: 'info' });
    assert.deepEqual(p.services.b!.options.env, { LEVEL: 'debug' });
  });
  it('an alias bomb is a ValidationError, not an exhausted heap', async () => {
    const levels = ['a: &a [x, x, x, x, x, x, x, x, x, x]'];
    for (let i = 1; i < 9; i++) levels.push(`l${i}: &l${i} [${Array(10).fill(i === 1 ? '*a' : `*l${i - 1}`).join(', ')}]`);
    const text = `services:\n  s:\n    image: busybox\n${levels.join('\n')}\n`;
    await assert.rejects(() => load({ 'compose.yaml': text }), (e: unknown) => e instanceof ValidationError && /alias/i.test(e.message));
  });
  it('a syntax error names the file', async () => {
    await assert.rejects(() => load({ 'compose.yaml': 'services: [\n' }), (e: unknown) => e instanceof ValidationError && /compose\.yaml/.test(e.option ?? ''));
  });
  it('a duplicate key is an error', async () => {
    await assert.rejects(() => load({ 'compose.yaml': 'services:\n  a: {image: x}\n  a: {image: y}\n' }), ValidationError);
  });
});

describe('compose load: merge of several files', () => {
  const files = {
    'compose.yaml': `
services:
  web:
    image: example/webapp
    command: ["serve", "--port", "80"]
    ports: ["8080:80", "127.0.0.1:9090:90"]
    volumes: ["data:/data", "./static:/static:ro"]
    environment: { A: "1", B: "2" }
    labels: [ "tier=front" ]
    cap_add: [NET_ADMIN]
    healthcheck: { test: ["CMD", "true"], interval: 10s }
    depends_on: [db]
  db:
    image: example/db
volumes:
  data: {}
`,
    'compose.override.yaml': `
services:
  web:
    image: example/webapp:dev
    command: serve --debug
    ports: ["8081:80", "127.0.0.1:9090:90"]
    volumes: ["other:/data"]
    environment: [ "B=3", "C=4" ]
    labels: { owner: me }
    cap_add: [NET_ADMIN, SYS_TIME]
    healthcheck: { test: ["CMD", "false"] }
    depends_on: { db: { condition: service_healthy } }
volumes:
  other: {}
`,
  };
  let p: Awaited<ReturnType<typeof loadProject>>;
  let web: Awaited<ReturnType<typeof loadProject>>['services'][string];
  before(async () => {
    p = await load(files);
    web = p.services.web!;
  });
  it('default files: compose.yaml then compose.override.yaml', async () => assert.deepEqual(p.files.map((f) => f.split('/').pop()), ['compose.yaml', 'compose.override.yaml']));
  it('scalars replaced', async () => assert.equal(web.image, 'example/webapp:dev'));
  it('command replaced (and a string is split as shell words)', async () => assert.deepEqual(web.options.cmd, ['serve', '--debug']));
  it('ports unique by address, host port, container port and protocol', () =>
    assert.deepEqual(web.ports, [
      { target: 80, published: '8080', protocol: 'tcp' },
      { target: 80, published: '8081', protocol: 'tcp' },
      { target: 90, published: '9090', protocol: 'tcp', host_ip: '127.0.0.1' },
    ]));
  it('volumes unique by target', async () => {
    assert.deepEqual(web.volumes.map((v) => [v.type, v.source?.replace(/.*\//, ''), v.target]), [
      ['bind', 'static', '/static'],
      ['volume', 'other', '/data'],
    ]);
  });
  it('environment and labels merged as mappings (list or map form)', async () => {
    assert.deepEqual(web.options.env, { A: '1', B: '3', C: '4' });
    assert.deepEqual(web.labels, { tier: 'front', owner: 'me' });
  });
  it('other lists appended without repeats', async () => assert.deepEqual(web.options.capAdd, ['NET_ADMIN', 'SYS_TIME']));
  it('healthcheck merged, its test replaced', async () => assert.deepEqual(web.options.healthcheck, { test: ['CMD', 'false'], interval: '10s' }));
  it('depends_on merged in the long form', async () => assert.deepEqual(web.dependsOn, { db: { condition: 'service_healthy', required: true } }));
  it('explicit files in order, relative to projectDir', async () => {
    const dir = project({ 'a.yml': 'services: {s: {image: one}}\n', 'b.yml': 'services: {s: {image: two}}\n' });
    assert.equal((await loadProject({ projectDir: dir, files: ['b.yml', 'a.yml'] })).services.s!.image, 'one');
  });
});

describe('compose load: interpolation sources', () => {
  it('env option > process env > env files (.env by default)', async () => {
    process.env.BERTH_COMPOSE_TEST_P = 'from-process';
    try {
      const p = await load(
        {
          'compose.yaml': 'services:\n  s:\n    image: "busybox:${TAG:-latest}"\n    environment:\n      P: $BERTH_COMPOSE_TEST_P\n      O: ${OPT}\n      F: ${FILE_ONLY}\n      PASS:\n',
          '.env': 'TAG=1.36\nFILE_ONLY=file\nBERTH_COMPOSE_TEST_P=from-file\nOPT=file\nPASS=passed\n',
        },
        { env: { OPT: 'from-option' } },
      );
      assert.equal(p.services.s!.image, 'busybox:1.36');
      assert.deepEqual(p.services.s!.options.env, { P: 'from-process', O: 'from-option', F: 'file', PASS: 'passed' });
    } finally {
      delete process.env.BERTH_COMPOSE_TEST_P;
    }
  });
  it('envFiles replaces .env; a missing explicit one is an error', async () => {
    const p = await load({ 'compose.yaml': 'services: {s: {image: "x:${T}"}}\n', '.env': 'T=dot\n', 'other.env': 'T=other\n' }, { envFiles: ['other.env'] });
    assert.equal(p.services.s!.image, 'x:other');
    await assert.rejects(() => load({ 'compose.yaml': 'services: {s: {image: x}}\n' }, { envFiles: ['nope.env'] }), (e: unknown) => e instanceof ValidationError && e.option === 'envFiles[0]');
  });
  it('a required variable names the key it is in', async () => {
    await assert.rejects(
      () => load({ 'compose.yaml': 'services:\n  db:\n    image: postgres\n    environment:\n      PASSWORD: ${DB_PASSWORD:?set DB_PASSWORD}\n' }),
      (e: unknown) => e instanceof ValidationError && e.option === 'services.db.environment.PASSWORD' && /set DB_PASSWORD/.test(e.message),
    );
  });
  it('keys are not interpolated', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  s:\n    image: x\n    labels:\n      $KEY: v\n' });
    assert.deepEqual(p.services.s!.labels, { $KEY: 'v' });
  });
  it('service env_file: values under environment, relative to the project', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  s:\n    image: x\n    env_file: [app.env, {path: absent.env, required: false}]\n    environment: {B: override}\n', 'app.env': 'A=1\nB=2\n' });
    assert.deepEqual(p.services.s!.options.env, { A: '1', B: 'override' });
  });
});

describe('compose load: service syntax', () => {
  const ports: Array<[string, unknown]> = [
    ['80', [{ target: 80, protocol: 'tcp' }]],
    ['8080:80', [{ target: 80, published: '8080', protocol: 'tcp' }]],
    ['127.0.0.1:8080:80/udp', [{ target: 80, published: '8080', protocol: 'udp', host_ip: '127.0.0.1' }]],
    ['127.0.0.1::80', [{ target: 80, protocol: 'tcp', host_ip: '127.0.0.1' }]],
    ['9090-9091:8080-8081', [{ target: 8080, published: '9090', protocol: 'tcp' }, { target: 8081, published: '9091', protocol: 'tcp' }]],
    ['[::1]:80:80', [{ target: 80, published: '80', protocol: 'tcp', host_ip: '::1' }]],
  ];
  for (const [spec, want] of ports) it(`port ${spec}`, async () => assert.deepEqual(parseShortPort(spec, 'p'), want));
  for (const bad of ['0', '70000', 'abc', '1-3:1-2', '80:80:80:80']) it(`port ${bad} is refused`, async () => assert.throws(() => parseShortPort(bad, 'services.s.ports[0]'), ValidationError));

  const volumes: Array<[string, unknown]> = [
    ['/anon', { type: 'volume', target: '/anon', read_only: false }],
    ['data:/var/lib/data', { type: 'volume', source: 'data', target: '/var/lib/data', read_only: false }],
    ['data:/d:ro', { type: 'volume', source: 'data', target: '/d', read_only: true }],
    ['./src:/app', { type: 'bind', source: './src', target: '/app', read_only: false, bind: { create_host_path: true } }],
    ['/etc/x:/x:ro,rshared', { type: 'bind', source: '/etc/x', target: '/x', read_only: true, bind: { create_host_path: true, propagation: 'rshared' } }],
  ];
  for (const [spec, want] of volumes) it(`volume ${spec}`, async () => assert.deepEqual(parseShortVolume(spec, 'v'), want));
  it('volume with a bad mode is refused', async () => assert.throws(() => parseShortVolume('a:/b:rx', 'v'), ValidationError));

  const durations: Array<[unknown, number | undefined]> = [['10s', 10_000], ['1m30s', 90_000], ['500ms', 500], ['1h', 3_600_000], ['1.5s', 1500], [2, 2000], ['10', undefined], ['1x', undefined], ['', undefined]];
  for (const [input, want] of durations) {
    it(`stop_grace_period ${JSON.stringify(input)} -> ${want ?? 'ValidationError'}`, async () => {
      if (want === undefined) assert.throws(() => durationMs(input, 'services.s.stop_grace_period'), (e: unknown) => e instanceof ValidationError && e.option === 'services.s.stop_grace_period');
      else assert.equal(durationMs(input, 'x'), want);
    });
  }

  const words: Array<[string, string[]]> = [
    ['echo hi', ['echo', 'hi']],
    [`sh -c 'echo "a b"; exit 3'`, ['sh', '-c', 'echo "a b"; exit 3']],
    ['a\\ b "c\\"d" \'\'', ['a b', 'c"d', '']],
  ];
  for (const [text, want] of words) it(`command ${text}`, async () => assert.deepEqual(splitShellWords(text, 'c'), want));

  it('every supported key in long form', async () => {
    const p = await load({
      'compose.yaml': `
services:
  app:
    image: busybox
    entrypoint: ["/bin/sh", "-c"]
    command: "echo ok"
    ports:
      - target: 80
        published: "8080"
        host_ip: 127.0.0.1
        protocol: tcp
    expose: ["3000"]
    volumes:
      - type: volume
        source: data
        target: /data
        read_only: true
      - type: tmpfs
        target: /cache
        tmpfs: { size: 1m }
    tmpfs: /run
    networks:
      front:
        aliases: [app-alias]
        ipv4_address: 10.123.0.10
    depends_on:
      db: { condition: service_completed_successfully, required: false }
    healthcheck: { test: "true", interval: 1s, timeout: 1s, retries: 2, start_period: 0s }
    restart: on-failure:3
    deploy: { replicas: 2, resources: { limits: { memory: 64m, cpus: "0.5", pids: 100 } } }
    profiles: [debug]
    hostname: apphost
    user: "1000:1000"
    working_dir: /srv
    extra_hosts: ["gw:10.0.0.1", "other=10.0.0.2"]
    dns: 1.1.1.1
    cap_add: [NET_ADMIN]
    cap_drop: [ALL]
    privileged: false
    read_only: true
    init: true
    ulimits: { nofile: { soft: 1024, hard: 2048 }, nproc: 512 }
    stop_signal: SIGINT
    stop_grace_period: 1m30s
    security_opt: [no-new-privileges:true, seccomp=unconfined]
    stdin_open: true
    tty: true
  db:
    image: busybox
    network_mode: none
networks:
  front:
    ipam: { config: [ { subnet: 10.123.0.0/24 } ] }
volumes:
  data:
    name: shared-data
`,
    });
    const app = p.services.app!;
    assert.deepEqual(app.options.entrypoint, ['/bin/sh', '-c']);
    assert.deepEqual(app.options.cmd, ['echo', 'ok']);
    assert.deepEqual(app.ports, [{ target: 80, published: '8080', host_ip: '127.0.0.1', protocol: 'tcp' }]);
    assert.deepEqual(app.volumes.map((v) => v.type + ':' + v.target), ['volume:/data', 'tmpfs:/cache', 'tmpfs:/run']);
    assert.deepEqual(app.networks, { front: { aliases: ['app-alias'], ipv4Address: '10.123.0.10' } });
    assert.deepEqual(app.dependsOn, { db: { condition: 'service_completed_successfully', required: false } });
    assert.equal(app.replicas, 2);
    assert.deepEqual(app.profiles, ['debug']);
    assert.equal(app.options.memory, '64m');
    assert.equal(app.options.pids, 100);
    assert.deepEqual(app.options.extraHosts, { gw: '10.0.0.1', other: '10.0.0.2' });
    assert.deepEqual(app.options.dns, ['1.1.1.1']);
    assert.equal(app.options.seccomp, 'unconfined');
    assert.equal(app.options.stopTimeout, 90_000);
    assert.equal(app.options.openStdin, true);
    assert.deepEqual(app.options.healthcheck, { test: 'true', interval: '1s', timeout: '1s', retries: 2, startPeriod: '0s' });
    assert.equal(p.networks.front!.name, `${p.name}_front`);
    assert.equal(p.networks.front!.subnet, '10.123.0.0/24');
    assert.equal(p.volumes.data!.name, 'shared-data');
    assert.equal(p.networks.default, undefined, 'no service uses the default network');
    assert.deepEqual(p.enabled, ['db'], 'app is in profile debug, not active');
    assert.deepEqual((await loadProject({ projectDir: p.projectDir, profiles: ['debug'] })).enabled, ['app', 'db']);
  });
  it('a service without networks joins <project>_default', async () => {
    const p = await load({ 'compose.yaml': 'services: {s: {image: x}}\n' });
    assert.deepEqual(p.services.s!.networks, { default: { aliases: [] } });
    assert.equal(p.networks.default!.name, `${p.name}_default`);
  });
});

describe('compose load: naming', () => {
  const names: Array<[Parameters<typeof chooseProjectName>[0], string]> = [
    [{ projectDir: '/x/My App.v2' }, 'myappv2'],
    [{ projectDir: '/x/__Web_1' }, 'web_1'],
    [{ projectDir: '/x/dir', file: 'from-file' }, 'from-file'],
    [{ projectDir: '/x/dir', file: 'from-file', env: 'from-env' }, 'from-env'],
    [{ projectDir: '/x/dir', file: 'from-file', env: 'from-env', option: 'opt' }, 'opt'],
  ];
  for (const [input, want] of names) it(`${JSON.stringify(input)} -> ${want}`, async () => assert.equal(chooseProjectName(input), want));
  it('an explicit name that is not normal is an error', async () => {
    assert.throws(() => chooseProjectName({ projectDir: '/x', option: 'My App' }), (e: unknown) => e instanceof ValidationError && e.option === 'projectName');
    await assert.rejects(() => load({ 'compose.yaml': 'name: Bad_Name\nservices: {s: {image: x}}\n' }), (e: unknown) => e instanceof ValidationError && e.option === 'name');
  });
  it('name: is interpolated', async () => assert.equal((await load({ 'compose.yaml': 'name: app-${V:-x}\nservices: {s: {image: x}}\n' })).name, 'app-x'));
});

describe('compose load: unknown, unsupported and wrong keys', () => {
  it('unknown keys give warnings', async () => {
    const p = await load({ 'compose.yaml': 'version: "3.8"\nservices:\n  s:\n    image: x\n    imagee: typo\n    x-mine: ok\nx-top: 1\ntopp: 2\n' });
    assert.deepEqual([...p.warnings].sort(), ['services.s: unknown keys ignored: imagee', 'topp: unknown top-level key ignored', 'version: obsolete, ignored (as compose v2 does)']);
  });
  for (const [yaml, option] of [
    ['services:\n  gpu:\n    image: x\n    gpus: all\n', 'services.gpu.gpus'],
    ['services:\n  s:\n    image: x\n    configs: [c]\n', 'services.s.configs'],
    ['services:\n  s:\n    image: x\nsecrets: {a: {file: ./a}}\n', 'secrets'],
    ['services:\n  s:\n    image: x\n    security_opt: [apparmor=unconfined]\n', 'services.s.security_opt[0]'],
    ['services:\n  s:\n    image: x\n    deploy: { placement: {} }\n', 'services.s.deploy.placement'],
  ] as const) {
    it(`${option}: UnsupportedError naming service and key; a warning with ignoreUnsupported`, async () => {
      await assert.rejects(() => load({ 'compose.yaml': yaml }), (e: unknown) => e instanceof UnsupportedError && e.option === option && e.message.includes(option));
      const p = await load({ 'compose.yaml': yaml }, { ignoreUnsupported: true });
      assert.ok(p.warnings.some((w) => w.startsWith(option)), p.warnings.join('; '));
    });
  }
  const wrong: Array<[string, string]> = [
    ['services:\n  s:\n    image: x\n    depends_on: [nope]\n', 'services.s.depends_on.nope'],
    ['services:\n  s:\n    image: x\n    networks: [nope]\n', 'services.s.networks.nope'],
    ['services:\n  s:\n    image: x\n    volumes: ["nope:/d"]\n', 'services.s.volumes[0]'],
    ['services:\n  s:\n    image: x\n    depends_on: {t: {condition: service_done}}\n  t: {image: x}\n', 'services.s.depends_on.t.condition'],
    ['services:\n  s:\n    image: x\n    ports: ["http"]\n', 'services.s.ports[0]'],
    ['services:\n  s:\n    image: x\n    privileged: "yes"\n', 'services.s.privileged'],
    ['services:\n  s:\n    command: x\n', 'services.s'],
    ['services:\n  a: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: [a]}\n', 'services.a.depends_on'],
    ['services:\n  s:\n    image: x\n    container_name: one\n    scale: 2\n', 'services.s.container_name'],
  ];
  for (const [yaml, option] of wrong) {
    it(`${option}: ValidationError`, async () => await assert.rejects(() => load({ 'compose.yaml': yaml }), (e: unknown) => e instanceof ValidationError && e.option === option));
  }
  it('depends_on a missing service with required: false is accepted', async () => {
    const p = await load({ 'compose.yaml': 'services:\n  s:\n    image: x\n    depends_on: {gone: {condition: service_started, required: false}}\n' });
    assert.equal(p.services.s!.dependsOn.gone!.required, false);
  });
  it('a FIFO named as the compose file is refused at once, not waited on (the open would block a libuv thread until a writer came)', async () => {
    const dir = project({});
    execFileSync('mkfifo', [join(dir, 'compose.yaml')]);
    await assert.rejects(() => loadProject({ projectDir: dir }), (e: unknown) => e instanceof ValidationError && /not a regular file/.test(e.message));
  });
  it('no compose file: a ValidationError naming the directory', async () => {
    await assert.rejects(() => loadProject({ projectDir: project({}) }), (e: unknown) => e instanceof ValidationError && e.option === 'files');
  });
});

describe('compose load: security_opt seccomp=<file>', () => {
  it('reads the Docker-format profile at load, relative to the project directory', async () => {
    const profile = { defaultAction: 'SCMP_ACT_ALLOW', syscalls: [{ names: ['mkdir'], action: 'SCMP_ACT_ERRNO' }] };
    const p = await load({ 'compose.yaml': 'services:\n  s:\n    image: x\n    security_opt: ["seccomp=./no-mkdir.json"]\n', 'no-mkdir.json': JSON.stringify(profile) });
    assert.deepEqual(p.services.s!.options.seccomp, profile);
  });
  for (const [files, why] of [
    [{ 'p.json': '{ not json' }, /p\.json is not JSON/],
    [{ 'p.json': '[1]' }, /p\.json must hold a JSON object/],
    [{}, /cannot read .*p\.json/],
  ] as const) {
    it(`a bad profile file (${why.source}): ValidationError naming the option and the file`, async () => {
      await assert.rejects(
        () => load({ 'compose.yaml': 'services:\n  s:\n    image: x\n    security_opt: ["seccomp=p.json"]\n', ...files }),
        (e: unknown) => e instanceof ValidationError && e.option === 'services.s.security_opt[0]' && why.test(e.message),
      );
    });
  }
});

describe('compose load: extends', () => {
  it('same file: the base merged under the service by the merge rules, chains followed', async () => {
    const p = await load({
      'compose.yaml': `
services:
  base:
    image: busybox
    command: ["sleep", "1"]
    environment: { A: "1", B: "base" }
    ports: ["127.0.0.1:8080:80"]
  middle:
    extends: base
    environment: { B: middle }
  app:
    extends: { service: middle }
    command: ["echo", "app"]
    environment: [C=3]
    ports: ["127.0.0.1:8080:80/udp"]
`,
    });
    const app = p.services.app!;
    assert.equal(app.image, 'busybox');
    assert.deepEqual(app.options.cmd, ['echo', 'app'], 'command replaced');
    assert.deepEqual(app.options.env, { A: '1', B: 'middle', C: '3' }, 'environment merged, nearest wins');
    assert.deepEqual(app.ports.map((x) => x.protocol), ['tcp', 'udp'], 'ports merged by their key');
    assert.deepEqual(p.services.base!.options.env, { A: '1', B: 'base' }, 'the base itself is unchanged');
  });
  it('file: relative to the extending file; the base\'s relative paths stay relative to its own file', async () => {
    const dir = project({
      'compose.yaml': 'services:\n  web:\n    extends: { file: common/base.yaml, service: web }\n    environment: { OWN: "yes" }\n',
    });
    mkdirSync(join(dir, 'common'));
    writeFileSync(join(dir, 'common', 'base.yaml'), 'services:\n  web:\n    build: ./ctx\n    env_file: base.env\n    volumes: ["./data:/data"]\n');
    writeFileSync(join(dir, 'common', 'base.env'), 'FROM_BASE=1\n');
    const p = await loadProject({ projectDir: dir });
    const web = p.services.web!;
    assert.equal(web.build!.context, join(dir, 'common', 'ctx'));
    assert.deepEqual(web.options.env, { FROM_BASE: '1', OWN: 'yes' });
    assert.equal(web.volumes[0]!.source, join(dir, 'common', 'data'));
  });
  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ['a cycle', { 'compose.yaml': 'services:\n  a: {image: x, extends: b}\n  b: {image: x, extends: a}\n' }, /extends cycle/],
    ['a missing service', { 'compose.yaml': 'services:\n  a: {image: x, extends: nope}\n' }, /no service nope/],
    ['a missing file', { 'compose.yaml': 'services:\n  a: {image: x, extends: {service: a, file: gone.yaml}}\n' }, /cannot read .*gone\.yaml/],
    ['a wrong key', { 'compose.yaml': 'services:\n  a: {image: x, extends: {service: b, files: x}}\n  b: {image: x}\n' }, /not an extends key/],
  ];
  for (const [what, files, why] of bad) {
    it(`${what}: ValidationError`, async () => {
      await assert.rejects(() => load(files), (e: unknown) => e instanceof ValidationError && why.test(e.message));
    });
  }
});

describe('compose load: !reset and !override', () => {
  const BASE = `
services:
  app:
    image: busybox
    command: ["sleep", "1"]
    ports: ["127.0.0.1:8080:80", "127.0.0.1:8443:443"]
    environment: { A: "1", B: "2" }
    healthcheck: { test: ["CMD", "true"], interval: 1s }
    build: { context: ./app }
`;
  it('!reset in a later file drops the earlier value; !override replaces instead of merging', async () => {
    const p = await load(
      {
        'compose.yaml': BASE,
        'compose.override.yaml': `
services:
  app:
    ports: !override ["127.0.0.1:9090:90"]
    environment: !override { C: "3" }
    healthcheck: !reset null
    build: !reset {}
`,
      },
    );
    const app = p.services.app!;
    assert.deepEqual(app.ports, [{ target: 90, published: '9090', host_ip: '127.0.0.1', protocol: 'tcp' }]);
    assert.deepEqual(app.options.env, { C: '3' });
    assert.equal(app.options.healthcheck, undefined);
    assert.equal(app.build, undefined);
    assert.deepEqual(app.options.cmd, ['sleep', '1'], 'untagged keys merge as usual');
  });
  it('without the tags the same override file merges (the difference is the tags\')', async () => {
    const p = await load({ 'compose.yaml': BASE, 'compose.override.yaml': 'services:\n  app:\n    ports: ["127.0.0.1:9090:90"]\n    environment: { C: "3" }\n' });
    assert.equal(p.services.app!.ports.length, 3);
    assert.deepEqual(p.services.app!.options.env, { A: '1', B: '2', C: '3' });
  });
  it('!reset of a top-level network, !reset in an extends', async () => {
    const p = await load({
      'compose.yaml': 'services:\n  base: {image: x, environment: {A: "1", B: "2"}}\n  app:\n    extends: base\n    environment: !override {B: "3"}\n    networks: [front]\nnetworks:\n  front: {labels: {a: b}}\n',
      'compose.override.yaml': 'networks:\n  front:\n    labels: !reset {}\n',
    });
    assert.deepEqual(p.services.app!.options.env, { B: '3' });
    assert.deepEqual(p.networks.front!.labels, {});
  });
});

describe('compose load: include', () => {
  it('an included file\'s services, networks and volumes join the project, its relative paths against its own directory', async () => {
    const dir = project({ 'compose.yaml': 'include: [db/compose.yaml]\nservices:\n  web: {image: x, depends_on: [db]}\n' });
    mkdirSync(join(dir, 'db'));
    writeFileSync(join(dir, 'db', 'compose.yaml'), 'services:\n  db:\n    build: .\n    volumes: ["data:/data", "./init:/init"]\n    networks: [back]\nnetworks: {back: {}}\nvolumes: {data: {}}\n');
    const p = await loadProject({ projectDir: dir });
    assert.deepEqual(Object.keys(p.services).sort(), ['db', 'web']);
    assert.equal(p.services.db!.build!.context, join(dir, 'db'));
    assert.equal(p.services.db!.volumes[1]!.source, join(dir, 'db', 'init'));
    assert.equal(p.networks.back!.name, `${p.name}_back`, 'the included network is the project\'s');
    assert.equal(p.volumes.data!.name, `${p.name}_data`);
  });
  const bad: Array<[string, Record<string, string>, RegExp]> = [
    ['a service defined twice', { 'compose.yaml': 'include: [other.yaml]\nservices: {a: {image: x}}\n', 'other.yaml': 'services: {a: {image: y}}\n' }, /services\.a is defined both/],
    ['a cycle', { 'compose.yaml': 'include: [other.yaml]\nservices: {a: {image: x}}\n', 'other.yaml': 'include: [compose.yaml]\nservices: {b: {image: y}}\n' }, /include cycle/],
    ['a wrong key', { 'compose.yaml': 'include: [{paths: other.yaml}]\nservices: {a: {image: x}}\n' }, /not an include key/],
  ];
  for (const [what, files, why] of bad) {
    it(`${what}: ValidationError naming include[0]`, async () => {
      await assert.rejects(() => load(files), (e: unknown) => e instanceof ValidationError && e.option!.startsWith('include[0]') && why.test(e.message));
    });
  }
});
