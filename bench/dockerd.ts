import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, openSync, closeSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnTimed } from './spawn-timed.js';

/**
 * A private dockerd for one benchmark run: its data, exec root and socket live in the temp dir,
 * and it touches no host network configuration (no bridge, no iptables), which `--network none`
 * containers do not need anyway. Stopped by its pid; it stops the containerd it started.
 */
export class Dockerd {
  private constructor(
    private readonly child: ChildProcess,
    readonly host: string,
    readonly describe: string,
    private readonly logFile: string,
  ) {}

  /** True when a docker daemon already answers on the default socket. */
  static async running(): Promise<boolean> {
    try {
      const r = await spawnTimed(['docker', 'version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
      return r.code === 0;
    } catch {
      return false;
    }
  }

  static async start(dir: string, log: (s: string) => void): Promise<Dockerd> {
    mkdirSync(dir, { recursive: true });
    const sock = join(dir, 'docker.sock');
    const host = `unix://${sock}`;
    const args = [
      '--data-root', join(dir, 'root'), '--exec-root', join(dir, 'exec'), '--pidfile', join(dir, 'dockerd.pid'),
      '-H', host, '--bridge', 'none', '--iptables=false', '--ip6tables=false', '--ip-masq=false',
    ];
    const logFile = join(dir, 'dockerd.log');
    const fd = openSync(logFile, 'a');
    const child = spawn('dockerd', args, { stdio: ['ignore', fd, fd] });
    closeSync(fd);
    const d = new Dockerd(child, host, `dockerd ${args.join(' ')}`, logFile);
    log(`docker: started private dockerd (pid ${child.pid}), waiting for ${sock}`);
    const deadline = Date.now() + 60_000;
    while (Date.now() < deadline) {
      if (child.exitCode !== null) break;
      const r = await spawnTimed(['docker', '-H', host, 'version', '--format', '{{.Server.Version}}'], { timeoutMs: 10_000 });
      if (r.code === 0) return d;
      await new Promise((res) => setTimeout(res, 250));
    }
    await d.stop();
    throw new Error(`dockerd did not come up: ${d.tail()}`);
  }

  tail(): string {
    try {
      return readFileSync(this.logFile, 'utf8').trim().split('\n').slice(-3).join(' | ');
    } catch {
      return '(no log)';
    }
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.kill('SIGTERM');
    const t = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await gone;
    clearTimeout(t);
  }
}
