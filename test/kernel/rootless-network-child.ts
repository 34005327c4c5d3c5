/**
 * Runs as the unprivileged test user (test/kernel/rootless-network.test.ts starts it through
 * setpriv). Modes:
 *
 * - `serve <stack>`: a held namespace with a user-mode network; a server inside it published on
 *   127.0.0.1; a loopback server of this process reached from inside; the namespace's own
 *   loopback checked not to lead to the host's; everything stopped. Prints one JSON line.
 * - `no-host-loopback <stack>`: the same namespace without `hostLoopback`: the host's loopback
 *   must not answer at the gateway address; then a start with no stack installed, whose error is
 *   reported. Prints one JSON line.
 * - `owned`: starts a holder with pasta and one with slirp4netns, prints their pids, then waits
 *   forever: the test SIGKILLs this process and checks that all four die with it.
 * @module
 */
import { spawn, execFile } from 'node:child_process';
import { once } from 'node:events';
import { holdNetns, type NetnsHolder } from '../../lib/network/usermode-netns.js';
import { startUserModeNetwork, type UserModeNetwork } from '../../lib/network/usermode-network.js';
import type { UserModeStackName } from '../../lib/network/usermode-stack.js';
import { normalizePorts } from '../../lib/network/ports.js';
import { loopbackServer } from '../helpers/loopback.js';

const NSENTER = '/usr/bin/nsenter';
const PYTHON = '/usr/bin/python3';
const NS_BODY = 'hello-from-the-namespace';

/** argv run inside the holder's user and network namespaces. */
function inNamespace(holder: NetnsHolder, argv: string[]): string[] {
  return ['--preserve-credentials', '-U', '-n', '-t', String(holder.pid), ...argv];
}

/**
 * An HTTP GET from inside the namespace (python3: busybox's wget crashes on its own timeout
 * option): the body, or `error:<errno name>` when the connection failed, so a check can tell a
 * refusal from any other failure.
 */
function getInside(holder: NetnsHolder, url: string): Promise<string> {
  const program = [
    'import errno, sys, urllib.request, urllib.error',
    'try:',
    '    print(urllib.request.urlopen(sys.argv[1], timeout=10).read().decode(), end="")',
    'except urllib.error.URLError as e:',
    '    r = e.reason',
    '    print("error:" + (errno.errorcode.get(r.errno, str(r.errno)) if isinstance(r, OSError) and r.errno else str(r)), end="")',
    'except OSError as e:',
    '    print("error:" + errno.errorcode.get(e.errno, str(e.errno)), end="")',
  ].join('\n');
  return new Promise((resolve, reject) => {
    execFile(NSENTER, inNamespace(holder, [PYTHON, '-c', program, url]), { encoding: 'utf8', timeout: 30_000 }, (error, stdout, stderr) => (error ? reject(new Error(`GET ${url} inside: ${stderr || error.message}`)) : resolve(stdout)));
  });
}

/** A server inside the namespace on port 80 (root of the user namespace may bind it); resolves once it listens. */
async function namespaceServer(holder: NetnsHolder): Promise<{ stop(): Promise<void> }> {
  const program = [
    'import http.server, sys',
    'class H(http.server.BaseHTTPRequestHandler):',
    '    def do_GET(self):',
    `        b = b"${NS_BODY}"`,
    '        self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers(); self.wfile.write(b)',
    '    def log_message(self, *a): pass',
    's = http.server.HTTPServer(("0.0.0.0", 80), H)',
    'print("listening", flush=True)',
    's.serve_forever()',
  ].join('\n');
  const child = spawn(NSENTER, inNamespace(holder, [PYTHON, '-c', program]), { stdio: ['ignore', 'pipe', 'inherit'] });
  child.stdout.setEncoding('utf8');
  await new Promise<void>((resolve, reject) => {
    child.stdout.on('data', (d: string) => d.includes('listening') && resolve());
    child.once('exit', (code) => reject(new Error(`the namespace server exited with ${code}`)));
  });
  return {
    stop: async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGKILL');
      await once(child, 'exit');
    },
  };
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function serve(stack: UserModeStackName): Promise<Record<string, unknown>> {
  const host = await loopbackServer();
  const holder = await holdNetns();
  let net: UserModeNetwork | undefined;
  let inside: { stop(): Promise<void> } | undefined;
  try {
    net = await startUserModeNetwork({ pid: holder.pid, stack, ports: normalizePorts(['127.0.0.1::80']), hostLoopback: true });
    inside = await namespaceServer(holder);
    const port = net.ports[0]!;
    const published = await (await fetch(`http://127.0.0.1:${port.host}/`)).text();
    const outbound = await getInside(holder, `http://${net.hostAddress}:${host.port}/`);
    // The namespace's own 127.0.0.1 must not lead to the host's (pasta's default -T auto would).
    const ownLoopback = await getInside(holder, `http://127.0.0.1:${host.port}/`);
    const pids = { stack: net.pid, holder: holder.pid };
    await inside.stop();
    await net.stop();
    await holder.close();
    return { stack: net.stack, published, outbound, ownLoopback, hostAddress: net.hostAddress, port, alive: { stack: alive(pids.stack), holder: alive(pids.holder) } };
  } finally {
    await inside?.stop();
    await net?.stop();
    await holder.close();
    await host.close();
  }
}

async function noHostLoopback(stack: UserModeStackName): Promise<Record<string, unknown>> {
  const host = await loopbackServer();
  const holder = await holdNetns();
  try {
    const net = await startUserModeNetwork({ pid: holder.pid, stack });
    try {
      // slirp4netns's gateway is its host alias: with the host loopback off it must refuse.
      const viaGateway = await getInside(holder, `http://10.0.2.2:${host.port}/`);
      return { stack: net.stack, hostAddress: net.hostAddress, viaGateway, missing: await missing(holder) };
    } finally {
      await net.stop();
    }
  } finally {
    await holder.close();
    await host.close();
  }
}

async function owned(): Promise<never> {
  const pids: number[] = [];
  for (const stack of ['pasta', 'slirp4netns'] as const) {
    const holder = await holdNetns();
    const net = await startUserModeNetwork({ pid: holder.pid, stack, ports: normalizePorts(['127.0.0.1::80']) });
    pids.push(holder.pid, net.pid);
  }
  process.stdout.write(`${JSON.stringify(pids)}\n`);
  return new Promise<never>(() => {
    setInterval(() => {}, 1 << 30);
  });
}

/** A start where neither stack is installed: its error's class, code and message. */
async function missing(holder: NetnsHolder): Promise<Record<string, unknown>> {
  try {
    await startUserModeNetwork({ pid: holder.pid, tools: { pasta: null, slirp4netns: null } });
    return { error: null };
  } catch (error) {
    const e = error as { name: string; code: string; message: string };
    return { error: { name: e.name, code: e.code, message: e.message } };
  }
}

const [mode, stack] = process.argv.slice(2) as [string, UserModeStackName];
const result = mode === 'serve' ? await serve(stack) : mode === 'no-host-loopback' ? await noHostLoopback(stack) : await owned();
process.stdout.write(`${JSON.stringify(result)}\n`);
