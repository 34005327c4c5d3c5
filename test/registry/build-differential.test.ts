/**
 * Differential tests: the same Dockerfiles built by berth and by real builders — Docker's
 * legacy builder (a private dockerd, as the benchmark starts one) and `buildah bud` — from a
 * base image in the loopback registry. Each built layer is compared entry by entry (type,
 * mode, owner, size, content hash, link target, xattrs), the flattened roots likewise, and the
 * configs and history. Covers multi-stage builds, COPY --from, USER and --chown with names,
 * WORKDIR creation, whiteouts and opaque directories from `rm` in RUN, hard links and
 * .dockerignore.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdirSync, writeFileSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Runtime } from '../../lib/runtime.js';
import type { ImageConfig } from '../../lib/image/manifest.js';
import { Dockerd } from '../../bench/dockerd.js';
import { registryToolsMissing, skopeoPush, startRegistry, tempDir, type TestRegistry } from '../helpers/registry.js';
import { buildBaseImage, BASE_TAG } from '../helpers/build-base-image.js';
import { describeTree, diffTrees } from '../helpers/tree-compare.js';
import { diffEntries, dockerfileConfig, historyShape, layerEntries } from '../helpers/build-compare.js';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';

const exec = promisify(execFile);
const skip = registryToolsMissing() ?? kernelSkipReason();

let registry: TestRegistry;
let work: { path: string; remove: () => void };
let base: string;
let dockerd: Dockerd | undefined;
let rt: Runtime;
let peers: Runtime;

before(async () => {
  if (skip) return;
  work = tempDir('berth-build-diff-');
  registry = await startRegistry();
  await skopeoPush(await buildBaseImage(work.path), BASE_TAG, registry, 'fixtures/base:1');
  base = `${registry.host}/fixtures/base:1`;
  rt = await Runtime.open({ root: join(work.path, 'berth') });
  peers = await Runtime.open({ root: join(work.path, 'peers') });
  dockerd = await Dockerd.start(join(work.path, 'dockerd'), () => {});
});

after(async () => {
  await dockerd?.stop();
  await registry?.stop();
  work?.remove();
});

/** A context exercising .dockerignore (with an exception), nested dirs, modes, a symlink, a hard link. */
function makeContext(name: string, dockerfile: string): string {
  const ctx = join(work.path, name);
  mkdirSync(join(ctx, 'src/sub/deeper'), { recursive: true });
  mkdirSync(join(ctx, 'node_modules/pkg'), { recursive: true });
  writeFileSync(join(ctx, 'src/main.sh'), '#!/bin/sh\necho main\n', { mode: 0o755 });
  writeFileSync(join(ctx, 'src/sub/data.txt'), 'data\n', { mode: 0o600 });
  writeFileSync(join(ctx, 'src/sub/deeper/x.bin'), Buffer.alloc(3000, 7));
  symlinkSync('main.sh', join(ctx, 'src/run'));
  writeFileSync(join(ctx, 'src/debug.log'), 'noise\n');
  writeFileSync(join(ctx, 'src/keep.log'), 'kept\n');
  writeFileSync(join(ctx, 'node_modules/pkg/index.js'), 'x\n');
  writeFileSync(join(ctx, '.dockerignore'), '# build noise\n**/*.log\n!src/keep.log\nnode_modules\n');
  writeFileSync(join(ctx, 'Dockerfile'), dockerfile);
  return ctx;
}

const DOCKERFILE = (from: string) => `FROM ${from} AS build
ARG GREETING=hello
WORKDIR /src/app
COPY src/ ./
RUN echo "$GREETING" > /built.txt && ln /built.txt /built-link.txt \\
 && rm -r /opt/old && rm -rf /var/cache/apt && mkdir /var/cache/apt && touch /var/cache/apt/fresh \\
 && chown user:user /built.txt && chmod 0640 /built.txt
FROM ${from}
COPY --from=build --chown=user:appgrp /built.txt /built-link.txt /home/user/out/
COPY --from=build /src/app /app
COPY --chown=user src/main.sh /usr/local/bin/
USER user
WORKDIR /home/user/work
ENV MODE=prod PATH=/app:$PATH
EXPOSE 8080 53/udp
LABEL org.example.kind=test
VOLUME ["/data"]
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=30s --retries=2 CMD ["true"]
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hi"]
`;

interface Built {
  config: ImageConfig;
  layerTars: string[];
  root: string;
}

async function inspectIn(runtime: Runtime, ref: string, label: string): Promise<Built> {
  const record = await runtime.images.record(ref);
  const config = await runtime.images.config(ref);
  const root = join(work.path, `root-${label}`);
  await runtime.images.unpack(ref, root);
  return { config, root, layerTars: record.layers.map((l) => runtime.images.store.blobPath(l.digest)) };
}

function compare(ours: Built, theirs: Built, label: string, { layers = true, allowed = [] as string[], normalise = (c: Record<string, unknown>) => c } = {}): void {
  const diffs: string[] = [];
  if (layers) assert.equal(ours.layerTars.length, theirs.layerTars.length, `${label}: layer count (history ours ${JSON.stringify(historyShape(ours.config))} theirs ${JSON.stringify(historyShape(theirs.config))})`);
  for (let i = 1; layers && i < ours.layerTars.length; i++) {
    diffs.push(...diffEntries(layerEntries(ours.layerTars[i]!), layerEntries(theirs.layerTars[i]!), ['berth', label]).map((d) => `layer ${i}: ${d}`));
  }
  diffs.push(...diffTrees(describeTree(ours.root), describeTree(theirs.root), ['berth', label]));
  assert.deepEqual(diffs.filter((d) => !allowed.some((a) => d.startsWith(a))), [], `${label}: entries differ`);
  assert.deepEqual(normalise(dockerfileConfig(ours.config)), normalise(dockerfileConfig(theirs.config)), `${label}: config`);
}

test('berth builds what docker build (legacy builder) builds: layers, root, config, history', { skip }, async () => {
  const ctx = makeContext('ctx-docker', DOCKERFILE(base));
  const ours = await rt.images.build({ context: ctx, tags: ['diff/docker:1'] });
  const env = { ...process.env, DOCKER_BUILDKIT: '0', DOCKER_HOST: dockerd!.host };
  await exec('docker', ['build', '-q', '-t', 'diff:1', ctx], { env });
  const archive = join(work.path, 'docker.tar');
  await exec('docker', ['save', '-o', archive, 'diff:1'], { env });
  await peers.images.load(archive);
  const theirs = await inspectIn(peers, 'diff:1', 'docker');
  compare(await inspectIn(rt, ours.id, 'berth-docker'), theirs, 'docker');
  assert.deepEqual(historyShape(await rt.images.config(ours.id)), historyShape(theirs.config), 'history created_by and empty_layer, as Docker writes them');
});

test('berth builds what buildah bud builds', { skip }, async () => {
  const ctx = makeContext('ctx-buildah', DOCKERFILE(base));
  const ours = await rt.images.build({ context: ctx, tags: ['diff/buildah:1'] });
  const store = ['--root', join(work.path, 'buildah/root'), '--runroot', join(work.path, 'buildah/run'), '--storage-driver', 'vfs'];
  await exec('buildah', [...store, 'bud', '--layers', '--tls-verify=false', '--isolation', 'chroot', '--format', 'docker', '-t', 'diff-buildah:1', ctx], { maxBuffer: 64 * 1024 * 1024 });
  const archive = join(work.path, 'buildah.tar');
  await exec('buildah', [...store, 'push', 'diff-buildah:1', `docker-archive:${archive}:diff-buildah:1`]);
  await peers.images.load(archive);
  const theirs = await inspectIn(peers, 'diff-buildah:1', 'buildah');
  // buildah's layers differ from Docker's by design (its history records the Dockerfile
  // text, and its WORKDIR creates no directory until a RUN needs one): berth follows Docker
  // there, so only the resulting root (but for that directory) and config are compared.
  compare(await inspectIn(rt, ours.id, 'berth-buildah'), theirs, 'buildah', {
    layers: false,
    allowed: ['home/user/work: only in berth'],
    // buildah moves a replaced ENV to the end and labels its images with its version.
    normalise: (c) => {
      const labels = { ...(c.Labels as Record<string, string>) };
      delete labels['io.buildah.version'];
      return { ...c, Env: [...(c.Env as string[])].sort(), Labels: labels };
    },
  });
  await exec('buildah', [...store, 'rmi', '--all', '--force']).catch(() => {});
});
