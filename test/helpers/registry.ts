/**
 * Test fixtures for the image tests: a real registry server (Debian's `docker-registry`) on
 * 127.0.0.1, and images built by independent tools (`umoci`, `skopeo`) from /bin/busybox.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

export const run = promisify(execFile);

/** Whether the external tools these tests need are installed. */
export function registryToolsMissing(): string | undefined {
  for (const tool of ['/usr/bin/docker-registry', '/usr/bin/skopeo', '/usr/bin/umoci', '/usr/bin/htpasswd', '/bin/busybox']) {
    if (!existsSync(tool)) return `${tool} is not installed (apt-get install docker-registry skopeo umoci apache2-utils busybox-static)`;
  }
  return undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === 'object' && addr ? resolve(addr.port) : reject(new Error('no port'))));
    });
    srv.on('error', reject);
  });
}

export interface TestRegistry {
  /** `127.0.0.1:PORT` */
  host: string;
  /** The registry's storage root (to tamper with blobs). */
  storageDir: string;
  pid: number;
  credentials?: { username: string; password: string };
  /** Path of a blob's data file in the storage dir. */
  blobFile(digest: string): string;
  stop(): Promise<void>;
}

/** Starts `docker-registry` on a free loopback port with a temp storage dir. */
export async function startRegistry({ auth }: { auth?: { username: string; password: string } } = {}): Promise<TestRegistry> {
  const dir = mkdtempSync(join(tmpdir(), 'berth-registry-'));
  const storageDir = join(dir, 'storage');
  mkdirSync(storageDir);
  let lastErr: unknown;
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freePort();
    const lines = [
      'version: 0.1',
      'log:',
      '  level: error',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${storageDir}`,
      '  delete:',
      '    enabled: true',
      // The tests tamper with blobs on disk: a cache would hide that.
      '  cache:',
      '    blobdescriptor: ""',
      'http:',
      `  addr: 127.0.0.1:${port}`,
    ];
    if (auth) {
      const htpasswd = join(dir, 'htpasswd');
      const { stdout } = await run('htpasswd', ['-Bbn', auth.username, auth.password]);
      writeFileSync(htpasswd, stdout);
      lines.push('auth:', '  htpasswd:', '    realm: berth-test', `    path: ${htpasswd}`);
    }
    const configPath = join(dir, 'config.yml');
    writeFileSync(configPath, `${lines.join('\n')}\n`);
    const child: ChildProcess = spawn('/usr/bin/docker-registry', ['serve', configPath], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr!.on('data', (d) => (stderr += d));
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    const host = `127.0.0.1:${port}`;
    const ready = await waitReady(host, child);
    if (!ready) {
      child.kill('SIGKILL');
      await exited;
      lastErr = new Error(`docker-registry did not start: ${stderr}`);
      continue;
    }
    const stop = async () => {
      if (child.exitCode === null && child.signalCode === null) {
        process.kill(child.pid!, 'SIGTERM');
        const timer = setTimeout(() => child.exitCode === null && process.kill(child.pid!, 'SIGKILL'), 3000);
        await exited;
        clearTimeout(timer);
      }
      rmSync(dir, { recursive: true, force: true });
    };
    return {
      host,
      storageDir,
      pid: child.pid!,
      ...(auth ? { credentials: auth } : {}),
      blobFile: (digest: string) => {
        const hex = digest.slice('sha256:'.length);
        return join(storageDir, 'docker/registry/v2/blobs/sha256', hex.slice(0, 2), hex, 'data');
      },
      stop,
    };
  }
  rmSync(dir, { recursive: true, force: true });
  throw lastErr;
}

async function waitReady(host: string, child: ChildProcess): Promise<boolean> {
  for (let i = 0; i < 200; i++) {
    if (child.exitCode !== null) return false;
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.arrayBuffer();
      if (res.status === 200 || res.status === 401) return true;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return false;
}

/** Copies an image from an OCI layout to the registry with skopeo. */
export async function skopeoPush(layout: string, tag: string, registry: TestRegistry, repo: string, { compress }: { compress?: 'zstd' | 'gzip' } = {}): Promise<void> {
  let source = `oci:${layout}:${tag}`;
  if (compress) {
    // Recompress into a layout of its own first: pushing straight to the registry, skopeo's
    // blob-info cache would reuse the gzip blobs it already pushed there.
    const recompressed = `${layout}-${compress}`;
    await run('skopeo', ['copy', '--quiet', '--dest-compress-format', compress, '--dest-compress', source, `oci:${recompressed}:${tag}`]);
    source = `oci:${recompressed}:${tag}`;
  }
  const args = ['copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false'];
  if (registry.credentials) args.push('--dest-creds', `${registry.credentials.username}:${registry.credentials.password}`);
  args.push(source, `docker://${registry.host}/${repo}`);
  await run('skopeo', args);
}

/** A temp dir removed by the returned function. */
export function tempDir(prefix: string): { path: string; remove: () => void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, remove: () => rmSync(path, { recursive: true, force: true }) };
}
