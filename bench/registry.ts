import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, openSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer } from 'node:net';
import { join } from 'node:path';
import type { Fixtures } from './fixtures.js';
import type { PullImageName } from './pull-images.js';
import { capture } from './spawn-timed.js';

/** Sizes of the multi-layer image's layers; random bytes, so gzip cannot shrink them. */
export const MULTI_LAYERS = { smallFiles: 2000, smallFileBytes: 1024, bigFiles: 4, bigFileBytes: 8 << 20 };

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

function httpStatus(url: string): Promise<number> {
  return new Promise((resolve) => {
    const req = get(url, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on('error', () => resolve(0));
    req.setTimeout(2000, () => req.destroy());
  });
}

/**
 * Debian's docker-registry on 127.0.0.1 (a free port), storage in the temp dir, fed with images
 * built by umoci from the benchmark's busybox rootfs and pushed by skopeo:
 * - `bench/busybox:1`: one layer, the rootfs (for berth's run-from-image);
 * - `bench/multi:1`: four layers (rootfs, 2000 small files, 4 × 8 MiB, one tiny file) for pull + unpack.
 */
export class LoopbackRegistry {
  private constructor(
    private readonly child: ChildProcess,
    readonly addr: string,
  ) {}

  /** `layers15` and `single100` exist once `BenchContext.pullImages()` has built them. */
  ref(name: 'busybox' | 'multi' | PullImageName): string {
    return `${this.addr}/bench/${name}:1`;
  }

  static async start(dir: string, fx: Fixtures, log: (s: string) => void): Promise<LoopbackRegistry> {
    mkdirSync(dir, { recursive: true });
    const port = await freePort();
    const addr = `127.0.0.1:${port}`;
    const config = join(dir, 'config.yml');
    writeFileSync(
      config,
      [
        'version: 0.1',
        'log:',
        '  level: error',
        'storage:',
        `  filesystem: { rootdirectory: ${join(dir, 'data')} }`,
        '  delete: { enabled: true }',
        'http:',
        `  addr: ${addr}`,
        '',
      ].join('\n'),
    );
    const fd = openSync(join(dir, 'registry.log'), 'a');
    const child = spawn('docker-registry', ['serve', config], { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const reg = new LoopbackRegistry(child, addr);
    const deadline = Date.now() + 20_000;
    while ((await httpStatus(`http://${addr}/v2/`)) !== 200) {
      if (Date.now() > deadline || child.exitCode !== null) {
        await reg.stop();
        throw new Error(`docker-registry did not answer on ${addr} (log: ${join(dir, 'registry.log')})`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
    log(`registry: docker-registry pid ${child.pid} on ${addr}; building and pushing fixture images`);
    await reg.push(dir, fx);
    return reg;
  }

  private async push(dir: string, fx: Fixtures): Promise<void> {
    const layout = join(dir, 'layout');
    await capture(['umoci', 'init', '--layout', layout]);
    for (const name of ['busybox', 'multi']) {
      await capture(['umoci', 'new', '--image', `${layout}:${name}`]);
      await capture(['umoci', 'insert', '--image', `${layout}:${name}`, fx.rootfs, '/']);
      await capture(['umoci', 'config', '--image', `${layout}:${name}`, '--config.cmd', '/bin/sh']);
    }
    const content = join(dir, 'content');
    const small = join(content, 'small');
    const big = join(content, 'big');
    mkdirSync(small, { recursive: true });
    mkdirSync(big, { recursive: true });
    for (let i = 0; i < MULTI_LAYERS.smallFiles; i++) writeFileSync(join(small, `f${i}`), randomBytes(MULTI_LAYERS.smallFileBytes));
    for (let i = 0; i < MULTI_LAYERS.bigFiles; i++) writeFileSync(join(big, `b${i}`), randomBytes(MULTI_LAYERS.bigFileBytes));
    writeFileSync(join(content, 'hello.txt'), 'hello from the last layer\n');
    const img = `${layout}:multi`;
    await capture(['umoci', 'insert', '--image', img, small, '/data/small']);
    await capture(['umoci', 'insert', '--image', img, big, '/data/big']);
    await capture(['umoci', 'insert', '--image', img, join(content, 'hello.txt'), '/hello.txt']);
    for (const name of ['busybox', 'multi']) {
      await capture(['skopeo', 'copy', '--quiet', '--dest-tls-verify=false', `oci:${layout}:${name}`, `docker://${this.ref(name as 'busybox' | 'multi')}`]);
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(t);
  }
}
