/**
 * deploy/: the Kubernetes manifests are parsed and checked against the fields the API server
 * requires and the rules it enforces at admission (names, selectors matching the template,
 * ports and probes that refer to declared ports, mounts of declared volumes, the
 * allowPrivilegeEscalation rule for added CAP_SYS_ADMIN), and against what berth needs (the
 * settings of docs/deploy-kubernetes.md, which test/kernel/inside-container.test.ts runs). The
 * Dockerfile is parsed with berth's own parser and cross-checked with the manifests.
 *
 * Why not `kubectl`: `kubectl apply --dry-run=client` asks the API server for discovery even
 * with --validate=false (it fails offline), and `kubectl label --local -f` parses but accepts
 * a `kind: Deploymnt` and a string `replicas`: neither checks more than this file does.
 */
import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAllDocuments } from 'yaml';
import { parseDockerfile } from '../../lib/build/dockerfile-parser.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const MANIFEST = join(REPO, 'deploy/kubernetes/code-exec.yaml');

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

function load(text: string): Obj[] {
  return parseAllDocuments(text).map((d) => {
    assert.deepEqual(d.errors, [], `YAML errors: ${d.errors.join('; ')}`);
    return d.toJS() as Obj;
  });
}

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^(?=.{1,253}$)[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
/** A resource quantity (k8s.io/apimachinery resource.Quantity), e.g. `500m`, `1Gi`, `2`. */
const QUANTITY = /^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;
const KNOWN: Record<string, string> = { Deployment: 'apps/v1', Service: 'v1' };

/** The problems of one object: the admission checks this file knows, as messages. */
export function checkObject(o: Obj): string[] {
  const p: string[] = [];
  const need = (cond: unknown, msg: string): void => {
    if (!cond) p.push(msg);
  };
  need(KNOWN[o.kind] !== undefined, `kind ${o.kind} is not one this deployment uses (Deployment, Service)`);
  need(KNOWN[o.kind] === o.apiVersion, `${o.kind}: apiVersion ${o.apiVersion}, expected ${KNOWN[o.kind]}`);
  need(typeof o.metadata?.name === 'string' && DNS1123_SUBDOMAIN.test(o.metadata.name), `metadata.name ${o.metadata?.name} is not a DNS-1123 name`);
  if (o.kind === 'Deployment') p.push(...checkDeployment(o));
  if (o.kind === 'Service') {
    need(Object.keys(o.spec?.selector ?? {}).length > 0, 'Service: spec.selector is empty');
    need(Array.isArray(o.spec?.ports) && o.spec.ports.length > 0, 'Service: spec.ports is empty');
    for (const port of o.spec?.ports ?? []) need(Number.isInteger(port.port) && port.port > 0 && port.port < 65536, `Service: port ${port.port} is not a port number`);
  }
  return p;
}

function checkDeployment(d: Obj): string[] {
  const p: string[] = [];
  const need = (cond: unknown, msg: string): void => {
    if (!cond) p.push(msg);
  };
  need(Number.isInteger(d.spec?.replicas ?? 1) && (d.spec?.replicas ?? 1) >= 0, `replicas ${d.spec?.replicas} is not a count`);
  const match: Obj = d.spec?.selector?.matchLabels ?? {};
  const labels: Obj = d.spec?.template?.metadata?.labels ?? {};
  need(Object.keys(match).length > 0, 'spec.selector.matchLabels is empty (required by apps/v1)');
  for (const [k, v] of Object.entries(match)) need(labels[k] === v, `selector ${k}=${v} does not match the template's labels`);
  const pod: Obj = d.spec?.template?.spec ?? {};
  need(Array.isArray(pod.containers) && pod.containers.length > 0, 'the pod has no containers');
  const volumes = new Set<string>((pod.volumes ?? []).map((v: Obj) => v.name));
  for (const c of pod.containers ?? []) {
    need(typeof c.name === 'string' && DNS1123_LABEL.test(c.name), `container name ${c.name} is not a DNS-1123 label`);
    need(typeof c.image === 'string' && c.image !== '', `container ${c.name} has no image`);
    const ports = new Map<string, number>((c.ports ?? []).map((x: Obj) => [x.name, x.containerPort]));
    for (const x of c.ports ?? []) need(Number.isInteger(x.containerPort) && x.containerPort > 0 && x.containerPort < 65536, `containerPort ${x.containerPort} is not a port number`);
    for (const probe of ['readinessProbe', 'livenessProbe'] as const) {
      const port = c[probe]?.httpGet?.port;
      if (port !== undefined) need(typeof port === 'number' || ports.has(port), `${c.name}.${probe} refers to port ${port}, which the container does not declare`);
    }
    for (const kind of ['requests', 'limits'] as const) {
      for (const [r, q] of Object.entries(c.resources?.[kind] ?? {})) need(QUANTITY.test(String(q)), `${c.name}.resources.${kind}.${r}: ${q} is not a quantity`);
    }
    for (const m of c.volumeMounts ?? []) need(volumes.has(m.name), `${c.name} mounts volume ${m.name}, which the pod does not declare`);
    for (const e of c.env ?? []) need(typeof e.value === 'string' || e.valueFrom !== undefined, `env ${e.name}: a value must be a string`);
    const sc: Obj = c.securityContext ?? {};
    // The API server rejects CAP_SYS_ADMIN (or privileged) with allowPrivilegeEscalation: false.
    if ((sc.capabilities?.add ?? []).includes('SYS_ADMIN') || sc.privileged === true) {
      need(sc.allowPrivilegeEscalation !== false, `${c.name}: allowPrivilegeEscalation: false is refused together with CAP_SYS_ADMIN or privileged`);
    }
  }
  return p;
}

describe('deploy/kubernetes/code-exec.yaml', () => {
  const objects = load(readFileSync(MANIFEST, 'utf8'));
  const deployment = objects.find((o) => o.kind === 'Deployment')!;
  const service = objects.find((o) => o.kind === 'Service')!;
  const container = deployment?.spec.template.spec.containers[0];

  test('a Deployment and a Service, each passing the admission checks', () => {
    assert.deepEqual(objects.map((o) => o.kind), ['Deployment', 'Service']);
    for (const o of objects) assert.deepEqual(checkObject(o), [], `${o.kind} ${o.metadata?.name}`);
  });

  test('the checks catch what the API server would refuse (they can fail)', () => {
    assert.match(checkObject({ ...deployment, kind: 'Deploymnt' }).join(' | '), /kind Deploymnt/);
    const broken = structuredClone(deployment);
    broken.spec.replicas = 'three';
    broken.spec.selector.matchLabels = { app: 'other' };
    broken.spec.template.spec.containers[0].securityContext.allowPrivilegeEscalation = false;
    broken.spec.template.spec.containers[0].readinessProbe.httpGet.port = 'htp';
    broken.spec.template.spec.containers[0].resources.requests.memory = '512MB';
    broken.spec.template.spec.containers[0].volumeMounts[0].name = 'nope';
    const problems = checkObject(broken);
    for (const pattern of [/replicas three/, /selector app=other/, /allowPrivilegeEscalation/, /port htp/, /512MB/, /volume nope/]) {
      assert.ok(problems.some((m) => pattern.test(m)), `${pattern} not reported: ${problems.join(' | ')}`);
    }
  });

  test('the Service selects the Deployment’s pods and targets a declared port', () => {
    for (const [k, v] of Object.entries(service.spec.selector)) assert.equal(deployment.spec.template.metadata.labels[k], v);
    const names = container.ports.map((p: Obj) => p.name);
    for (const p of service.spec.ports) assert.ok(typeof p.targetPort === 'number' || names.includes(p.targetPort), `targetPort ${p.targetPort}`);
  });

  test('the security settings are the minimal set the inside-container test runs, nothing broader', () => {
    const sc = container.securityContext;
    assert.deepEqual([...sc.capabilities.add].sort(), ['NET_ADMIN', 'SYS_ADMIN']);
    assert.equal(sc.privileged, false);
    assert.equal(sc.seccompProfile.type, 'Unconfined');
    assert.equal(sc.appArmorProfile.type, 'Unconfined');
    assert.equal(sc.runAsUser, 0);
    assert.equal(sc.procMount, undefined, 'the entrypoint makes /proc/sys/net writable; /proc stays masked');
    assert.equal(deployment.spec.template.spec.hostPID ?? false, false);
    assert.equal(deployment.spec.template.spec.hostNetwork ?? false, false);
    assert.equal(deployment.spec.template.spec.automountServiceAccountToken, false);
  });

  test('the state dir is an emptyDir at BERTH_ROOT; requests, limits and a readiness probe are set', () => {
    const root = container.env.find((e: Obj) => e.name === 'BERTH_ROOT').value;
    const mount = container.volumeMounts.find((m: Obj) => m.mountPath === root);
    assert.ok(mount, `nothing is mounted at BERTH_ROOT ${root}`);
    const volume = deployment.spec.template.spec.volumes.find((v: Obj) => v.name === mount.name);
    assert.ok(volume.emptyDir !== undefined, 'the state dir must be an emptyDir: each replica its own, never the overlay root');
    assert.equal(volume.emptyDir.medium, undefined, "on the node's disk, not tmpfs (memory would count against the pod)");
    for (const r of ['cpu', 'memory']) assert.ok(container.resources.requests[r], `requests.${r}`);
    assert.ok(container.resources.limits.memory, 'a memory limit bounds the pod and every sandbox nested in its cgroup');
    assert.equal(container.readinessProbe.httpGet.path, '/readyz');
    const server = readFileSync(join(REPO, 'deploy/server.mjs'), 'utf8');
    assert.match(server, /req\.url === '\/readyz'/);
    assert.match(server, /req\.url === '\/healthz'/);
  });
});

describe('deploy/Dockerfile', () => {
  const parsed = parseDockerfile(readFileSync(join(REPO, 'deploy/Dockerfile'), 'utf8'), 'deploy/Dockerfile');
  const of = (k: string) => parsed.instructions.filter((i) => i.keyword === k);

  test('FROM a Node base, installs the packed berth, copies files that exist, enters through the entrypoint', () => {
    assert.match(of('FROM')[0]!.rest, /^node:20[-\w.]*$/);
    assert.ok(of('RUN').some((i) => /npm install .*berth-\*\.tgz/.test(i.rest)));
    for (const copy of of('COPY')) {
      const sources = copy.rest.split(/\s+/).slice(0, -1);
      for (const s of sources) if (!s.includes('*')) assert.ok(existsSync(join(REPO, s)), `COPY ${s}: no such file in the repository`);
    }
    assert.deepEqual(JSON.parse(of('ENTRYPOINT')[0]!.rest), ['/srv/berth-entrypoint.sh']);
    assert.deepEqual(JSON.parse(of('CMD')[0]!.rest), ['node', 'server.mjs']);
  });

  test("its BERTH_ROOT is the manifest's state dir", () => {
    const env = of('ENV').map((i) => i.rest).join(' ');
    const manifestRoot = load(readFileSync(MANIFEST, 'utf8'))[0]!.spec.template.spec.containers[0].env.find((e: Obj) => e.name === 'BERTH_ROOT').value;
    assert.match(env, new RegExp(`BERTH_ROOT=${manifestRoot}(\\s|$)`));
  });
});
