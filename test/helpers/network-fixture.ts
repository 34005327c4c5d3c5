/**
 * Shared pieces of the network suites: a throw-away state directory with its network service,
 * cleanup that removes every network, link and rule the suite made (also after a failure),
 * and bounded clients for published ports. Traffic goes only to 127.0.0.1 and to the
 * addresses of containers the suites start themselves.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { createSocket } from 'node:dgram';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { spawnSync } from 'node:child_process';
import assert from 'node:assert/strict';
import { AbortError, run, type RunOptions, type RunResult } from '../../lib/index.js';
import { native } from '../../lib/native.js';
import { nftTableName } from '../../lib/network/firewall-rules.js';
import { NetworkService } from '../../lib/network/network-service.js';
import { rootTag } from '../../lib/network/bridge-driver.js';
import { busyboxRootfs, kernelSkipReason } from './busybox-rootfs.js';

/** Why the kernel network suites cannot run here, or false. */
export function networkSkipReason(): string | false {
  const base = kernelSkipReason();
  if (base) return base;
  if (spawnSync('nft', ['list', 'tables']).status !== 0 && spawnSync('iptables', ['-t', 'nat', '-S']).status !== 0) {
    return 'needs nftables or iptables (apt-get install nftables)';
  }
  return false;
}

/** Subnets for the suites: inside 10.231.0.0/16, which this machine does not route. */
export function testSubnet(n: number): string {
  return `10.231.${n}.0/24`;
}

export interface NetworkSandbox {
  root: string;
  svc: NetworkService;
  /** Removes every network of the root (retrying while containers finish), then checks nothing is left. */
  cleanup(): Promise<void>;
}

/** A fresh state directory with its network service. */
export function networkSandbox(): NetworkSandbox {
  const root = mkdtempSync(join(tmpdir(), 'berth-net-'));
  const svc = new NetworkService(root);
  return {
    root,
    svc,
    cleanup: async () => {
      for (let attempt = 0; attempt < 50; attempt++) {
        const nets = await svc.list().catch(() => []);
        if (nets.length === 0) break;
        for (const n of nets) await n.remove().catch(() => {});
        await sleep(100);
      }
      await svc.reconcile().catch(() => {});
      // Whatever is still there (a failed removal): by alias, and the rules by table name.
      const mark = `berth:${svc.tag}:`;
      for (const l of await native().netListLinks()) if (l.alias.startsWith(mark)) await native().netDeleteLink(l.name).catch(() => false);
      spawnSync('nft', ['delete', 'table', 'ip', nftTableName(svc.tag)], { stdio: 'ignore' });
      rmSync(root, { recursive: true, force: true });
    },
  };
}

/**
 * Deletes whatever kernel objects of a root's networks are left (its bridges and veths by
 * alias, its nftables table): for suites whose scenario runs in a child process that may fail
 * half-way, before the root itself is deleted.
 */
export async function removeRootNetworkObjects(root: string): Promise<void> {
  const tag = rootTag(root);
  for (const l of await native().netListLinks()) if (l.alias.startsWith(`berth:${tag}:`)) await native().netDeleteLink(l.name).catch(() => false);
  spawnSync('nft', ['delete', 'table', 'ip', nftTableName(tag)], { stdio: 'ignore' });
}

/** run() from the busybox rootfs with a shell script. */
export const sh = <O extends RunOptions = RunOptions>(script: string, options?: O) => run({ rootfs: busyboxRootfs() }, ['sh', '-c', script], options);

export { freePort } from './loopback.js';

/** A long-running container of {@link sh}: `stop()` aborts it and fails if it had ended by itself. */
export function background(script: string, options: RunOptions): { done: Promise<unknown>; stop(): Promise<void> } {
  const ac = new AbortController();
  const done = sh(script, { ...options, signal: ac.signal }).then(
    (r) => r,
    (e: unknown) => e,
  );
  return {
    done,
    stop: async () => {
      ac.abort();
      const r = await done;
      if (!(r instanceof AbortError)) assert.fail(`the background container ended by itself: ${JSON.stringify(r as RunResult)}`);
    },
  };
}

/** Links of the root's networks (bridges and veths tagged with its alias). */
export async function linksOf(svc: NetworkService): Promise<string[]> {
  const mark = `berth:${svc.tag}:`;
  return (await native().netListLinks()).filter((l) => l.alias.startsWith(mark)).map((l) => l.name).sort();
}

/** Whether the root's nftables table exists. */
export function hasRulesTable(svc: NetworkService): boolean {
  return spawnSync('nft', ['list', 'table', 'ip', nftTableName(svc.tag)], { stdio: 'ignore' }).status === 0;
}

/** Reads one TCP reply from 127.0.0.1:port, retrying (bounded) while the container starts listening. */
export async function tcpRead(port: number, { attempts = 50, send }: { attempts?: number; send?: string } = {}): Promise<string> {
  let last: unknown;
  for (let i = 0; i < attempts; i++) {
    try {
      return await new Promise<string>((resolve, reject) => {
        const s = connect(port, '127.0.0.1');
        let data = '';
        s.setTimeout(3000, () => s.destroy(new Error('timeout')));
        s.on('connect', () => (send !== undefined ? s.end(send) : undefined));
        s.on('data', (d) => (data += d));
        s.on('end', () => (data === '' ? reject(new Error('empty reply')) : resolve(data)));
        s.on('error', reject);
      });
    } catch (e) {
      last = e;
      await sleep(100);
    }
  }
  throw last;
}

/** Sends a datagram to 127.0.0.1:port and waits for one reply, retrying (bounded). */
export async function udpAsk(port: number, message: string, attempts = 40): Promise<string> {
  const sock = createSocket('udp4');
  try {
    await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
    for (let i = 0; i < attempts; i++) {
      const reply = new Promise<string | undefined>((resolve) => {
        const t = setTimeout(() => resolve(undefined), 250);
        sock.once('message', (m) => {
          clearTimeout(t);
          resolve(m.toString());
        });
      });
      sock.send(message, port, '127.0.0.1');
      const r = await reply;
      if (r !== undefined) return r;
    }
    throw new Error(`no UDP reply from 127.0.0.1:${port}`);
  } finally {
    sock.close();
  }
}

/** Polls `check` every 50 ms until it holds or `ms` pass; returns its last value. */
export async function eventually<T>(check: () => T | Promise<T>, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  let v = await check();
  while (!v && Date.now() < deadline) {
    await sleep(50);
    v = await check();
  }
  return v;
}
