/**
 * Applying a runtime's packet-filter rules with whichever tool the host has: `nft` (preferred:
 * one atomic transaction per change) or `iptables-restore`. Both are run as commands, as
 * Docker does; they are needed only by bridge networks.
 * @module
 */
import { spawn } from 'node:child_process';
import { SystemError, UnsupportedError } from '../errors.js';
import { findTool as which } from './find-tool.js';
import { iptablesChains, iptablesJumps, renderIptables, renderNft, type FirewallModel } from './firewall-rules.js';

export type FirewallBackend = 'nftables' | 'iptables';


interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function exec(file: string, args: string[], input?: string): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    child.once('error', reject);
    child.once('close', (code) => resolve({ code: code ?? 1, stdout, stderr }));
    child.stdin.on('error', () => {});
    child.stdin.end(input ?? '');
  });
}

function failed(tool: string, r: Ran, script?: string): SystemError {
  return new SystemError('ERR_FIREWALL', `${tool} failed (exit ${r.code}): ${r.stderr.trim() || r.stdout.trim()}${script ? `\n--- rules ---\n${script}` : ''}`, {
    syscall: tool,
  });
}

/** Replaces the runtime's rules with `model`'s. */
export interface Firewall {
  readonly backend: FirewallBackend;
  apply(model: FirewallModel): Promise<void>;
}

class Nftables implements Firewall {
  readonly backend = 'nftables';
  constructor(private readonly nft: string) {}

  async apply(model: FirewallModel): Promise<void> {
    const script = renderNft(model);
    const r = await exec(this.nft, ['-f', '-'], script);
    if (r.code !== 0) throw failed('nft', r, script);
  }
}

class Iptables implements Firewall {
  readonly backend = 'iptables';
  constructor(
    private readonly iptables: string,
    private readonly restore: string,
  ) {}

  async apply(model: FirewallModel): Promise<void> {
    const jumps = iptablesJumps(model.tag);
    if (model.networks.length === 0) {
      for (const j of jumps) {
        while ((await exec(this.iptables, ['-w', '-t', j.table, '-D', j.chain, ...j.rule])).code === 0) {
          // a jump inserted twice by two racing processes: delete every copy
        }
      }
      const c = iptablesChains(model.tag);
      for (const [table, chain] of [['raw', c.raw.pre], ['nat', c.nat.dnat], ['nat', c.nat.post], ['filter', c.filter.fwd]] as const) {
        await exec(this.iptables, ['-w', '-t', table, '-F', chain]);
        await exec(this.iptables, ['-w', '-t', table, '-X', chain]);
      }
      return;
    }
    const script = renderIptables(model);
    const r = await exec(this.restore, ['-w', '--noflush'], script);
    if (r.code !== 0) throw failed('iptables-restore', r, script);
    for (const j of jumps) {
      if ((await exec(this.iptables, ['-w', '-t', j.table, '-C', j.chain, ...j.rule])).code === 0) continue;
      const ins = await exec(this.iptables, ['-w', '-t', j.table, '-I', j.chain, '1', ...j.rule]);
      if (ins.code !== 0) throw failed('iptables', ins);
    }
  }
}

/** A specific backend (tests run both in a private network namespace); undefined when its tools are missing. */
export function firewallBackend(backend: FirewallBackend): Firewall | undefined {
  if (backend === 'nftables') {
    const nft = which('nft');
    return nft ? new Nftables(nft) : undefined;
  }
  const iptables = which('iptables');
  const restore = which('iptables-restore');
  return iptables && restore ? new Iptables(iptables, restore) : undefined;
}

let detected: Promise<Firewall | undefined> | undefined;

/**
 * The host's packet filter: nftables when `nft` works here (it needs the kernel's nf_tables),
 * else iptables. Probed once per process.
 */
export function detectFirewall(): Promise<Firewall | undefined> {
  detected ??= (async () => {
    const nft = which('nft');
    if (nft && (await exec(nft, ['list', 'tables']).catch(() => ({ code: 1 }) as Ran)).code === 0) return new Nftables(nft);
    const iptables = which('iptables');
    const restore = which('iptables-restore');
    if (iptables && restore && (await exec(iptables, ['-w', '-t', 'nat', '-S', 'POSTROUTING']).catch(() => ({ code: 1 }) as Ran)).code === 0) {
      return new Iptables(iptables, restore);
    }
    return undefined;
  })();
  return detected;
}

/** The firewall, or an UnsupportedError that says what to install. */
export async function requireFirewall(): Promise<Firewall> {
  const fw = await detectFirewall();
  if (!fw) {
    throw new UnsupportedError(
      'bridge networks need a packet filter for NAT and isolation, and neither a working `nft` nor `iptables` was found: install nftables (apt-get install nftables) or iptables',
    );
  }
  return fw;
}
