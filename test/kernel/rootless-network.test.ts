/**
 * Rootless networking as a real unprivileged user (issue 15): a user namespace + network
 * namespace held by `berth-helper netns-hold`, served by pasta and by slirp4netns. Outbound to a
 * loopback HTTP server of the test (opt-in `hostLoopback`), a published port answered on
 * 127.0.0.1, the namespace's own loopback not leading to the host's, no user-mode helper left
 * after stop nor after the owner is SIGKILLed, and a typed error naming the package when no
 * stack is installed. The user and everything it runs are removed afterwards.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { RootlessUser, rootlessSkipReason } from '../helpers/rootless-user.js';
import { installedUserModeTools } from '../../lib/network/usermode-network.js';
import { TUN_DEVICE } from '../../lib/network/usermode-stack.js';

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'rootless-network-child.ts');
const tools = installedUserModeTools();

function skipReason(): string | false {
  const base = rootlessSkipReason();
  if (base) return base;
  if (tools.pasta === null || tools.slirp4netns === null) return 'pasta and slirp4netns are needed: apt-get install passt slirp4netns (scripts/test-deps.sh)';
  for (const tool of ['/usr/bin/nsenter', '/usr/bin/python3']) {
    try {
      statSync(tool);
    } catch {
      return `${tool} is missing`;
    }
  }
  return false;
}
const skip = skipReason();

/** Running (not a zombie awaiting its reaper). */
function running(pid: number): boolean {
  try {
    return !/^State:\s+Z/m.test(readFileSync(`/proc/${pid}/status`, 'utf8'));
  } catch {
    return false;
  }
}

function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').join(' ').trim();
  } catch {
    return '(gone)';
  }
}

/** Waits until none of `pids` runs; the bound is a guard against a hang, not a timing assertion. */
async function untilGone(pids: number[], boundMs = 10_000): Promise<number[]> {
  const deadline = Date.now() + boundMs;
  for (;;) {
    const left = pids.filter(running);
    if (left.length === 0 || Date.now() > deadline) return left;
    await sleep(20);
  }
}

describe('rootless user-mode networking', { skip }, () => {
  let user: RootlessUser;
  let tunMode: number | undefined;
  before(() => {
    user = RootlessUser.create({ prefix: 'berth-rn' });
    // Debian's udev makes the tun device 0666; a host without udev (this VM) leaves it 0600,
    // which berth reports (rt.info(), the UnsupportedError) but which would stop these tests.
    const mode = statSync(TUN_DEVICE).mode & 0o777;
    if ((mode & 0o006) !== 0o006) {
      tunMode = mode;
      chmodSync(TUN_DEVICE, 0o666);
    }
  });
  after(() => {
    user?.remove();
    if (tunMode !== undefined) chmodSync(TUN_DEVICE, tunMode);
  });

  /** The stacks' scratch directories in the user's runtime dir. */
  function scratchDirs(): string[] {
    try {
      return readdirSync(join(user.runtimeDir, 'berth')).filter((n) => n.startsWith('berth-usermode-'));
    } catch {
      return [];
    }
  }

  async function child(args: string[]): Promise<Record<string, any>> {
    const r = await user.runNode(CHILD, args);
    assert.equal(r.code, 0, `child ${args.join(' ')} failed: ${r.stderr}`);
    const lines = r.stdout.trim().split('\n');
    return JSON.parse(lines[lines.length - 1]!) as Record<string, any>;
  }

  for (const stack of ['pasta', 'slirp4netns'] as const) {
    it(`${stack}: a published port answers on 127.0.0.1, the host's loopback is reachable when asked, the stack and holder end`, async () => {
      const r = await child(['serve', stack]);
      assert.equal(r['stack'], stack);
      assert.equal(r['published'], 'hello-from-the-namespace');
      assert.equal(r['port'].hostIp, '127.0.0.1');
      assert.notEqual(r['port'].host, 0);
      assert.equal(r['outbound'], 'hello-from-the-host-loopback', `outbound to the test's loopback server through ${r['hostAddress']}`);
      assert.equal(r['ownLoopback'], 'error:ECONNREFUSED', "the namespace's 127.0.0.1 reached the host's loopback server");
      assert.deepEqual(r['alive'], { stack: false, holder: false });
      const left = user.processes().filter(running).map((pid) => `${pid} ${commandOf(pid)}`);
      assert.deepEqual(left, [], 'a process of the test user outlived its owner');
    });
  }

  it('pasta, slirp4netns and their holders die with an owner killed by SIGKILL', async () => {
    const proc = spawn('/usr/bin/setpriv', ['--reuid', String(user.uid), '--regid', String(user.gid), '--init-groups', '--', process.execPath, '--import', 'tsx', CHILD, 'owned'], {
      cwd: join(dirname(CHILD), '..', '..'),
      env: user.env(),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    proc.stderr.on('data', (d: Buffer) => (err += d));
    const pids = await new Promise<number[]>((resolve, reject) => {
      proc.stdout.on('data', (d: Buffer) => {
        out += d;
        if (out.includes('\n')) resolve(JSON.parse(out.split('\n')[0]!) as number[]);
      });
      proc.once('exit', (code) => reject(new Error(`owner exited (${code}) before starting: ${err}`)));
    });
    assert.equal(pids.filter(running).length, 4);
    const exited = new Promise((resolve) => proc.once('exit', resolve));
    proc.kill('SIGKILL');
    await exited;
    const left = (await untilGone(pids)).map((pid) => `${pid} ${commandOf(pid)}`);
    assert.deepEqual(left, [], 'left running after the owner died');
    // Nothing could remove slirp4netns's API socket directory: the next start sweeps it (below).
    assert.notDeepEqual(scratchDirs(), [], 'expected the killed owner to leave its slirp4netns scratch dir');
  });

  it("slirp4netns without hostLoopback: the gateway does not lead to the host's loopback; no stack installed: an UnsupportedError naming the package; a dead owner's scratch dirs swept", async () => {
    const r = await child(['no-host-loopback', 'slirp4netns']);
    assert.equal(r['hostAddress'], null);
    // slirp4netns answers "network unreachable" for its disabled host alias; the body would mean the attack worked.
    assert.match(r['viaGateway'], /^error:(ECONNREFUSED|ENETUNREACH|EHOSTUNREACH)$/, `the container reached a loopback-only server of the host: ${r['viaGateway']}`);
    const missing = r['missing'].error;
    assert.equal(missing.name, 'UnsupportedError');
    assert.equal(missing.code, 'ERR_UNSUPPORTED');
    assert.match(missing.message, /apt-get install passt/);
    // The SIGKILLed owner above could not remove its stacks' scratch directories; this start swept them.
    assert.deepEqual(scratchDirs(), [], 'scratch directories left in the runtime dir');
  });
});
