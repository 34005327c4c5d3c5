import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';

/**
 * A long-lived process holding private namespaces that peers are started in with `nsenter`.
 *
 * Why (1), the mount namespace: crun 1.8 refuses a hybrid cgroup host ("cgroups in hybrid mode
 * not supported, drop all controllers from cgroupv2"; the cgroup2 mount at /sys/fs/cgroup/unified
 * holds the hugetlb controller here). It runs fine where
 * /sys/fs/cgroup shows only the v1 hierarchies, so the holder unmounts the unified mount in its
 * own mount namespace (propagation private: the host's mounts are untouched) and crun is started
 * with `nsenter --mount=/proc/<pid>/ns/mnt`. Cost: one extra exec per start, shown by the
 * start-latency row `nsenter /bin/true`. Doing unshare + umount per start instead would add a
 * mount-namespace copy, a shell and an umount to every run, which would be unfair to crun.
 *
 * Why (2), the network namespace (network workload only): podman's bridge networking creates a
 * bridge, veths, NAT rules and sets ip_forward. Inside a private network namespace all of that
 * exists only there, the published port is on that namespace's 127.0.0.1, and everything
 * vanishes with the holder.
 *
 * The holder reads stdin until EOF, so it also goes away if the benchmark dies without cleanup.
 */
export class NsHolder {
  private constructor(
    private readonly child: ChildProcess,
    private readonly net: boolean,
  ) {}

  get pid(): number {
    return this.child.pid!;
  }

  /** argv prefix that runs a program inside the held namespaces. */
  prefix(): string[] {
    return ['nsenter', `--mount=/proc/${this.pid}/ns/mnt`, ...(this.net ? [`--net=/proc/${this.pid}/ns/net`] : []), '--'];
  }

  /** argv prefix that enters only the network namespace (for clients that need the host's mounts). */
  netPrefix(): string[] {
    return ['nsenter', `--net=/proc/${this.pid}/ns/net`, '--'];
  }

  static async start(opts: { unmount?: string; net?: boolean }): Promise<NsHolder> {
    const steps = [
      ...(opts.unmount ? [`umount '${opts.unmount}'`] : []),
      ...(opts.net ? ['ip link set lo up'] : []),
      'echo ready',
      'exec cat >/dev/null',
    ];
    const child = spawn(
      'unshare',
      ['--mount', ...(opts.net ? ['--net'] : []), '--propagation', 'private', '--', 'sh', '-c', steps.join(' && ')],
      { stdio: ['pipe', 'pipe', 'pipe'] },
    );
    let stderr = '';
    child.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
    const ready = await new Promise<boolean>((resolve) => {
      const rl = createInterface({ input: child.stdout! });
      rl.once('line', (l) => resolve(l === 'ready'));
      child.once('exit', () => resolve(false));
      child.once('error', () => resolve(false));
    });
    if (!ready) {
      child.kill('SIGKILL');
      throw new Error(`could not prepare private namespaces (${steps.slice(0, -2).join('; ') || 'unshare'}): ${stderr.trim() || 'holder exited'}`);
    }
    return new NsHolder(child, opts.net ?? false);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.stdin!.end();
    const t = setTimeout(() => this.child.kill('SIGKILL'), 2000);
    await gone;
    clearTimeout(t);
  }
}

/** True when stderr is crun's refusal of a hybrid cgroup host. */
export function isHybridRefusal(stderr: string): boolean {
  return /hybrid mode not supported/i.test(stderr);
}
