/**
 * The pull workload's images as users pull them: built by `docker build` (one layer per COPY and
 * RUN) and pushed by `docker push` to the loopback registry, gzip-compressed by Docker's own
 * writer.
 *
 * - `bench/layers15:1`, 15 layers, ≈ 23 MB (issue 17's shape): the busybox base, 2,000 small
 *   files in four COPY layers, a 20 MiB file of random bytes, hard links within a layer and to
 *   a file of a lower layer, files and a whole directory deleted by later layers (whiteouts,
 *   an opaque directory), a setuid file.
 * - `bench/single100:1`, one layer of ≈ 100 MiB: a busybox rootfs plus 3,000 text-like files
 *   (compressible, as binaries and libraries are) and 40 MiB of random 1 MiB files.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, cpSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { capture, spawnTimed } from './spawn-timed.js';

export type PullImageName = 'layers15' | 'single100';

/** What a bench image is, for the report. */
export const PULL_IMAGES: Record<PullImageName, string> = {
  layers15:
    '15 layers, ≈ 23 MB, built by `docker build` FROM bench/busybox:1: 4 COPY layers of 500 small files (0.25–2 KiB, half random, half text), a 20 MiB random file, hard links in one layer and to a lower layer\'s file, deleted files and a directory replaced by later RUN layers (whiteouts, an opaque directory), a setuid file',
  single100:
    'one layer of ≈ 100 MiB, built by `docker build` FROM scratch: a busybox rootfs, 3,000 text-like files of 4–24 KiB (≈ 40 MiB, compressible), 40 × 1 MiB random files',
};

/** Small pseudo-text: words and numbers, compressible about 3:1 like code and config. */
function textBytes(n: number): Buffer {
  const words = ['config', 'value', 'return', 'function', 'import', 'export', 'const', 'server', 'layer', 'image', 'error', 'true', 'false', 'null'];
  const rnd = randomBytes(n);
  const parts: string[] = [];
  let len = 0;
  for (let i = 0; len < n; i++) {
    const w = rnd[i % n]! % 16 < 14 ? words[rnd[i % n]! % words.length]! : String(rnd.readUInt16LE(i % (n - 2)));
    parts.push(w, i % 12 === 11 ? '\n' : ' ');
    len += w.length + 1;
  }
  return Buffer.from(parts.join('')).subarray(0, n);
}

function smallFiles(dir: string, count: number, seed: number): void {
  mkdirSync(dir, { recursive: true });
  for (let i = 0; i < count; i++) {
    const size = 256 + ((i * 7919 + seed) % 1793);
    writeFileSync(join(dir, `f${i}`), i % 2 === 0 ? randomBytes(size) : textBytes(size));
  }
}

function layers15Context(dir: string, base: string): string {
  const ctx = join(dir, 'layers15');
  for (const part of ['a', 'b', 'c', 'd']) {
    for (let s = 0; s < 5; s++) smallFiles(join(ctx, part, `s${s}`), 100, s);
  }
  writeFileSync(join(ctx, 'big.bin'), randomBytes(20 << 20));
  mkdirSync(join(ctx, 'etc'));
  for (let i = 0; i < 50; i++) writeFileSync(join(ctx, 'etc', `c${i}.conf`), textBytes(600));
  mkdirSync(join(ctx, 'bin'));
  for (const t of ['tool', 'helper', 'run']) {
    writeFileSync(join(ctx, 'bin', t), `#!/bin/sh\necho ${t} "$@"\n`);
    chmodSync(join(ctx, 'bin', t), 0o755);
  }
  writeFileSync(join(ctx, 'Dockerfile'), [
    `FROM ${base}`,
    'COPY a/ /data/a/',
    'COPY b/ /data/b/',
    'COPY c/ /data/c/',
    'COPY d/ /data/d/',
    'COPY big.bin /data/big.bin',
    'RUN mkdir -p /links && cp /data/a/s0/f1 /links/one && ln /links/one /links/two && ln /links/one /links/three',
    'RUN rm -rf /data/b/s1 /data/b/s2/f1* /data/a/s4',
    'RUN rm -rf /data/c && mkdir -p /data/c && echo fresh > /data/c/new',
    'COPY etc/ /etc/app/',
    'RUN ln /data/d/s0/f0 /data/d/f0.link',
    'RUN rm /etc/app/c3.conf && echo changed > /etc/app/c4.conf',
    'COPY bin/ /usr/local/bin/',
    'RUN chmod 4755 /usr/local/bin/tool && echo done > /stamp',
    'RUN rm -f /data/d/s3/f9* && echo 15 > /last',
    'CMD ["/bin/sh"]',
    '',
  ].join('\n'));
  return ctx;
}

function single100Context(dir: string, rootfs: string): string {
  const ctx = join(dir, 'single100');
  const root = join(ctx, 'root');
  cpSync(rootfs, root, { recursive: true, verbatimSymlinks: true });
  for (let d = 0; d < 30; d++) {
    const sub = join(root, 'usr', 'share', 'app', `m${d}`);
    mkdirSync(sub, { recursive: true });
    for (let f = 0; f < 100; f++) writeFileSync(join(sub, `f${f}.txt`), textBytes(4096 + ((d * 100 + f) * 2654435761) % 20480));
  }
  mkdirSync(join(root, 'usr', 'lib', 'blobs'), { recursive: true });
  for (let i = 0; i < 40; i++) writeFileSync(join(root, 'usr', 'lib', 'blobs', `b${i}.bin`), randomBytes(1 << 20));
  writeFileSync(join(ctx, 'Dockerfile'), ['FROM scratch', 'COPY root/ /', 'CMD ["/bin/sh"]', ''].join('\n'));
  return ctx;
}

/** The two ways the bench can build its images; both push with their own gzip writer. */
export interface ImageBuilder {
  /** Shown in the report. */
  describe: string;
  /** Builds `ctx` (its Dockerfile) and pushes the result as `target`. */
  buildAndPush(ctx: string, target: string): Promise<void>;
  /** Removes what the builds left in the builder's store. */
  clean(): Promise<void>;
}

/**
 * `docker build` (the legacy builder of Debian's dockerd 20.10) with the bench's own dockerd,
 * then `docker push`; afterwards the built images and their base are removed from that
 * dockerd, so its `docker pull` row starts cold like every other row.
 */
export function dockerBuilder(argv: string[], base: string): ImageBuilder {
  const built: string[] = [];
  return {
    describe: '`docker build` (legacy builder) and `docker push` of the bench\'s private dockerd',
    buildAndPush: async (ctx, target) => {
      built.push(target);
      const env = { ...process.env, DOCKER_BUILDKIT: '0' };
      await capture([...argv, 'build', '-q', '-t', target, ctx], { env, timeoutMs: 600_000 });
      await capture([...argv, 'push', '-q', target], { timeoutMs: 600_000 });
    },
    clean: async () => {
      await spawnTimed([...argv, 'rmi', '-f', ...built, base], { timeoutMs: 120_000 });
      await spawnTimed([...argv, 'builder', 'prune', '-af'], { timeoutMs: 120_000 });
    },
  };
}

/**
 * Builds both images and pushes them to the registry at `addr` (plain http on loopback).
 * `base` is a reference the builder can pull the busybox base from; `rootfs` the busybox root
 * directory; contexts go under `dir`.
 */
export async function buildPullImages(dir: string, addr: string, base: string, rootfs: string, builder: ImageBuilder, log: (s: string) => void): Promise<void> {
  try {
    for (const [name, ctx] of [['layers15', layers15Context(dir, base)], ['single100', single100Context(dir, rootfs)]] as const) {
      log(`registry: building ${name} (${builder.describe})`);
      await builder.buildAndPush(ctx, `${addr}/bench/${name}:1`);
    }
  } finally {
    await builder.clean();
  }
}
