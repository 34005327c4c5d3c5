import { join } from 'node:path';
import { CleanupStack, removeLaterIfNew } from './cleanup.js';
import type { Fixtures } from './fixtures.js';
import { isHybridRefusal, NsHolder } from './ns-holder.js';
import type { Log } from './measure.js';
import { NotAvailable } from './berth.js';
import type { PeerInfo } from './peers.js';
import { capture, spawnTimed } from './spawn-timed.js';
import { Dockerd } from './dockerd.js';
import { LoopbackRegistry } from './registry.js';
import { buildPullImages, dockerBuilder } from './pull-images.js';

/** The cgroup2 mount of a hybrid host that crun 1.8 must not see. */
export const HYBRID_UNIFIED_MOUNT = '/sys/fs/cgroup/unified';

export interface Settings {
  runs: number;
  warmup: number;
  /** Runs for the slow workloads (pull). */
  pullRuns: number;
  throughputMs: number;
  throughputRounds: number;
  /** --tools: only rows whose name equals or starts with one of these (e.g. `berth`, `crun`). */
  tools?: string[];
}

/** An image the container engines know, and the argv prefix that reaches the engine. */
export interface Engine {
  argv: string[];
  image: string;
  /** Flags every `run` needs on this host. */
  runFlags: string[];
}

/**
 * Everything the workloads share: the fixtures, the peers found, and the per-host quirks,
 * each set up on first use (so `--only start` never starts dockerd) and undone by `cleanup`.
 */
export class BenchContext {
  readonly cleanup = new CleanupStack();
  readonly notes = new Map<string, string>();
  private crunPrefixP?: Promise<string[]>;
  private podmanP?: Promise<Engine>;
  private podmanNetP?: Promise<Engine & { holder: NsHolder }>;
  private dockerP?: Promise<Engine>;
  private registryP?: Promise<LoopbackRegistry>;
  private pullImagesP?: Promise<LoopbackRegistry>;
  private idSeq = 0;

  constructor(
    readonly fx: Fixtures,
    readonly peers: Map<string, PeerInfo>,
    readonly settings: Settings,
    readonly log: Log,
  ) {}

  /** The subjects --tools selects (all when it was not given). */
  pick<T extends { name: string }>(subjects: T[]): T[] {
    const want = this.settings.tools;
    if (!want?.length) return subjects;
    // A tool name matches itself and its variants: `crun` selects `crun no-seccomp`, not `crunx`.
    return subjects.filter((s) => want.some((w) => s.name === w || (s.name.startsWith(w) && !/[\w-]/.test(s.name[w.length]!))));
  }

  has(peer: string): boolean {
    return this.peers.get(peer)?.path !== undefined;
  }

  need(peer: string): void {
    if (!this.has(peer)) throw new NotAvailable(`${peer} not installed (npm run bench -- --peers installs it)`);
  }

  /** A container name unique to this process, so leftovers are recognisable as ours. */
  nextId(prefix = 'bb'): string {
    return `${prefix}-${process.pid}-${++this.idSeq}`;
  }

  /**
   * argv prefix under which crun (and podman, whose default runtime is crun) runs: empty when
   * crun accepts this host, else nsenter into the private mount namespace of an NsHolder.
   * Probed by running crun once, not guessed from the mounts.
   */
  crunPrefix(): Promise<string[]> {
    this.crunPrefixP ??= (async () => {
      this.need('crun');
      const id = this.nextId('probe');
      const r = await spawnTimed(['crun', 'run', '--bundle', this.fx.bundle, id], { timeoutMs: 30_000 });
      if (r.code === 0) return [];
      if (!isHybridRefusal(r.stderr)) throw new Error(`crun run failed: ${r.stderr.trim()}`);
      const ns = await NsHolder.start({ unmount: HYBRID_UNIFIED_MOUNT });
      this.cleanup.push('stop the crun mount namespace holder', () => ns.stop());
      this.notes.set(
        'crun',
        'crun 1.8 refuses this hybrid cgroup host; it runs via `nsenter --mount=/proc/<holder>/ns/mnt` into a private mount namespace where /sys/fs/cgroup/unified is unmounted (see bench/ns-holder.ts). The nsenter exec is included in its times.',
      );
      return ns.prefix();
    })();
    return this.crunPrefixP;
  }

  /**
   * podman with its storage in the temp dir (nothing left in /var/lib/containers), run through the
   * crun prefix because podman's default OCI runtime is crun.
   */
  podman(): Promise<Engine> {
    this.podmanP ??= (async () => {
      this.need('podman');
      const prefix = this.has('crun') ? await this.crunPrefix() : [];
      return this.podmanIn(prefix, join(this.fx.dir, 'podman'));
    })();
    return this.podmanP;
  }

  /**
   * A second podman, with its own storage, inside a private mount + network namespace, for the
   * network workload: bridges and NAT rules stay in that namespace (see ns-holder.ts).
   */
  podmanNet(): Promise<Engine & { holder: NsHolder }> {
    this.podmanNetP ??= (async () => {
      this.need('podman');
      const hybrid = this.has('crun') && (await this.crunPrefix()).length > 0;
      const holder = await NsHolder.start({ net: true, ...(hybrid ? { unmount: HYBRID_UNIFIED_MOUNT } : {}) });
      this.cleanup.push('stop the network namespace holder', () => holder.stop());
      return { ...(await this.podmanIn(holder.prefix(), join(this.fx.dir, 'podman-net'))), holder };
    })();
    return this.podmanNetP;
  }

  private async podmanIn(prefix: string[], base: string): Promise<Engine> {
    const argv = [
      ...prefix, 'podman',
      '--root', join(base, 'root'), '--runroot', join(base, 'run'), '--tmpdir', join(base, 'tmp'),
      '--cgroup-manager', 'cgroupfs',
    ];
    const hostState = removeLaterIfNew([
      '/run/containers', '/run/containers/networks', '/run/containers/networks/ipam.db', '/run/netns', '/run/xtables.lock',
    ]);
    this.cleanup.push('podman: remove state it wrote outside its root', hostState);
    this.cleanup.push('podman: remove containers, images and storage', async () => {
      await spawnTimed([...argv, 'rm', '-af'], { timeoutMs: 60_000 });
      await spawnTimed([...argv, 'system', 'reset', '-f'], { timeoutMs: 60_000 });
    });
    const image = 'localhost/berth-bench/busybox:1';
    await capture([...argv, 'import', this.fx.rootfsTar, image]);
    this.notes.set(
      'podman',
      'podman runs with `--ulimit nofile=1024:1024 --ulimit nproc=4096:4096` (root here lacks CAP_SYS_RESOURCE, so the default rlimits cannot be set), storage in the temp dir, and through the same mount-namespace prefix as crun (its default runtime).',
    );
    return { argv, image, runFlags: ['--network', 'none', '--ulimit', 'nofile=1024:1024', '--ulimit', 'nproc=4096:4096'] };
  }

  /** docker against a running daemon, or against a private dockerd this run starts and stops. */
  docker(): Promise<Engine> {
    this.dockerP ??= (async () => {
      if (!this.has('docker') && !(await Dockerd.running())) this.need('docker');
      let argv = ['docker'];
      if (!(await Dockerd.running())) {
        const hostState = removeLaterIfNew(['/run/docker', '/run/docker/plugins', '/run/containerd', '/run/containerd/s']);
        this.cleanup.push('dockerd: remove state it wrote outside its roots', hostState);
        const d = await Dockerd.start(join(this.fx.dir, 'docker'), this.log);
        this.cleanup.push('stop the private dockerd', () => d.stop());
        argv = ['docker', '-H', d.host];
        this.notes.set('docker', `no dockerd was running: the run started a private one (\`${d.describe}\`) and stopped it after.`);
      }
      const image = 'berth-bench/busybox:1';
      await capture([...argv, 'import', this.fx.rootfsTar, image]);
      this.cleanup.push('docker: remove the imported image', async () => {
        await spawnTimed([...argv, 'rmi', '-f', image], { timeoutMs: 60_000 });
      });
      return { argv, image, runFlags: ['--network', 'none'] };
    })();
    return this.dockerP;
  }

  /**
   * The registry, also holding the pull workload's images built by `docker build` with this
   * run's dockerd (bench/pull-images.ts); built on first use (about a minute and a half here).
   */
  pullImages(): Promise<LoopbackRegistry> {
    this.pullImagesP ??= (async () => {
      const reg = await this.registry();
      const { argv } = await this.docker();
      const base = reg.ref('busybox');
      await buildPullImages(join(this.fx.dir, 'pull-images'), reg.addr, base, this.fx.rootfs, dockerBuilder(argv, base), this.log);
      return reg;
    })();
    return this.pullImagesP;
  }

  /** A docker-registry on 127.0.0.1 holding the fixture images (see registry.ts). */
  registry(): Promise<LoopbackRegistry> {
    this.registryP ??= (async () => {
      for (const p of ['docker-registry', 'skopeo', 'umoci']) this.need(p);
      const reg = await LoopbackRegistry.start(join(this.fx.dir, 'registry'), this.fx, this.log);
      this.cleanup.push('stop the loopback registry', () => reg.stop());
      return reg;
    })();
    return this.registryP;
  }
}
