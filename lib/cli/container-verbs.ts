/**
 * The container verbs: `ps`, `run`, `exec`, `logs`, `stop`, `rm`. Output as Docker's CLI prints
 * it; the exit code of `run` and `exec` is the container's (126/127 when the command cannot be
 * run, 125 when berth fails), as Docker's.
 * @module
 */
import type { Container, ContainerInspect, ExitInfo } from '../index.js';
import { flag, givenStrings, listOption, stringOption, type CliContext, type Command } from './command.js';
import { UsageError } from './args.js';
import { forEachRef } from './each-ref.js';
import { writeList } from './list-output.js';
import { collect, commandColumn, shortId, timeAgo, writeJson } from './output.js';
import { connectStdin, rawCapable } from './terminal.js';
import { CREATE_FLAGS, createOptionsOf, envFlags } from './run-flags.js';

/** `NetworkSettings.Ports` as `docker ps` prints it: `0.0.0.0:8080->80/tcp, 443/tcp`. */
export function portsColumn(ports: ContainerInspect['NetworkSettings']['Ports'] | undefined): string {
  const out: string[] = [];
  for (const [key, bindings] of Object.entries(ports ?? {})) {
    if (!bindings || bindings.length === 0) out.push(key);
    else for (const b of bindings) out.push(`${b.HostIp || '0.0.0.0'}:${b.HostPort}->${key}`);
  }
  return out.join(', ');
}

const ps: Command = {
  name: 'ps',
  aliases: ['container ls'],
  usage: '[-a]',
  summary: 'List containers',
  options: { all: { type: 'boolean', short: 'a' }, quiet: { type: 'boolean', short: 'q' } },
  maxArgs: 0,
  async run(ctx, args) {
    const rt = await ctx.runtime();
    const list = await rt.containers.list({ all: flag(args, 'all') });
    return writeList(ctx, flag(args, 'quiet'), {
      json: () => list,
      ids: () => list.map((c) => shortId(c.Id)),
      headers: ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'],
      rows: async () => {
        const rows: string[][] = [];
        for (const c of list) {
          const ports = await rt.containers.get(c.Id).then((x) => x.inspect()).then((i) => portsColumn(i.NetworkSettings.Ports), () => '');
          rows.push([shortId(c.Id), c.Image, commandColumn(c.Command), timeAgo(c.Created * 1000), c.Status, ports, c.Names.map((n) => n.replace(/^\//, '')).join(',')]);
        }
        return rows;
      },
    });
  },
};

/** Forwards SIGINT/SIGTERM/SIGHUP to the container while it runs (Docker's `--sig-proxy`). */
function proxySignals(container: Container): () => void {
  const handlers = (['SIGINT', 'SIGTERM', 'SIGHUP'] as const).map((sig) => {
    const h = () => void container.kill(sig).catch(() => {});
    process.on(sig, h);
    return [sig, h] as const;
  });
  return () => {
    for (const [sig, h] of handlers) process.off(sig, h);
  };
}

/** Streams the container's output (complete, from its log) until it exits. */
async function streamLogs(ctx: CliContext, container: Container): Promise<void> {
  for await (const entry of container.logs({ follow: true })) (entry.stream === 'stderr' ? ctx.stderr : ctx.stdout).write(entry.text);
}

/**
 * Connects this process's stdin to the container (`-i`) and, with a TTY (`-t`), the terminal's
 * raw output too. Without a TTY the output comes from the log instead ({@link streamLogs}): an
 * attachment only sees what is written after it, and the log holds everything since start.
 */
async function attachTerminal(ctx: CliContext, container: Container, tty: boolean): Promise<() => void> {
  const session = await container.attach();
  if (tty) {
    session.stdout.pipe(ctx.stdout, { end: false });
    session.stderr?.pipe(ctx.stderr, { end: false });
  }
  if (tty && ctx.stdout.rows && ctx.stdout.columns) await container.resize({ rows: ctx.stdout.rows, cols: ctx.stdout.columns }).catch(() => {});
  const disconnect = connectStdin(ctx, session.stdin ?? undefined, rawCapable(ctx, tty));
  return () => {
    disconnect();
    session.detach();
  };
}

/** Starts the container; a command that cannot be run becomes Docker's 126/127 with its message. */
async function startOrExitCode(ctx: CliContext, container: Container): Promise<number | undefined> {
  try {
    await container.start();
    return undefined;
  } catch (error) {
    const state = await container.inspect().then((i) => i.State, () => undefined);
    if (state && (state.ExitCode === 126 || state.ExitCode === 127) && state.Status === 'exited') {
      ctx.stderr.write(`berth: ${(error as Error).message}\n`);
      return state.ExitCode;
    }
    throw error;
  }
}

const run: Command = {
  name: 'run',
  aliases: ['container run'],
  usage: '[OPTIONS] IMAGE [COMMAND] [ARG...]  |  [OPTIONS] --rootfs DIR|--host COMMAND [ARG...]',
  summary: 'Create and run a new container from an image, a root directory or the host',
  options: CREATE_FLAGS,
  commandAfter: 1,
  failureExitCode: 125,
  async run(ctx, args) {
    const interactive = flag(args, 'interactive');
    const tty = flag(args, 'tty');
    const detach = flag(args, 'detach');
    const remove = flag(args, 'rm');
    if (ctx.json && !detach && (interactive || tty)) throw new UsageError('--json collects the output of the run: it cannot be used with -i or -t');
    const options = createOptionsOf(args);
    const rt = await ctx.runtime();
    // A detached container's monitor removes it at exit (`autoRemove`); a foreground run's
    // removal is this command's, after the output has been read and the exit code taken.
    const container = await rt.containers.create({ ...options, lifetime: detach ? 'detached' : 'process', ...(detach && remove ? { autoRemove: true } : {}) });
    if (detach) {
      const code = await startOrExitCode(ctx, container);
      if (code !== undefined) return code;
      if (ctx.json) writeJson(ctx.stdout, { Id: container.id, Name: container.name });
      else ctx.stdout.write(`${container.id}\n`);
      return 0;
    }
    const unproxy = proxySignals(container);
    let exit: ExitInfo;
    try {
      const failed = await startOrExitCode(ctx, container);
      if (failed !== undefined) {
        if (remove) await container.remove({ force: true });
        return failed;
      }
      if (ctx.json) {
        exit = await container.wait();
        const entries = await collect(container.logs());
        const text = (stream: string) => entries.filter((e) => e.stream === stream).map((e) => e.text).join('');
        writeJson(ctx.stdout, { Id: container.id, Name: container.name, ExitCode: exit.exitCode, Signal: exit.signal, OOMKilled: exit.oomKilled, Stdout: text('stdout'), Stderr: text('stderr') });
      } else if (interactive || tty) {
        const detachTerminal = await attachTerminal(ctx, container, tty);
        try {
          if (!tty) await streamLogs(ctx, container);
          exit = await container.wait();
        } finally {
          detachTerminal();
        }
      } else {
        await streamLogs(ctx, container);
        exit = await container.wait();
      }
    } finally {
      unproxy();
    }
    if (remove) await container.remove({ force: true });
    return exit.exitCode;
  },
};

const exec: Command = {
  name: 'exec',
  aliases: ['container exec'],
  usage: '[OPTIONS] CONTAINER COMMAND [ARG...]',
  summary: 'Run a command in a running container',
  options: {
    interactive: { type: 'boolean', short: 'i' },
    tty: { type: 'boolean', short: 't' },
    env: { type: 'string', short: 'e', multiple: true },
    user: { type: 'string', short: 'u' },
    workdir: { type: 'string', short: 'w' },
  },
  commandAfter: 1,
  minArgs: 1,
  async run(ctx, args) {
    if (args.rest.length === 0) throw new UsageError('"exec" requires at least 2 arguments: CONTAINER COMMAND');
    const rt = await ctx.runtime();
    const container = await rt.containers.get(args.positionals[0]!);
    const env = envFlags(listOption(args, 'env'));
    const options = { ...(Object.keys(env).length > 0 ? { env } : {}), ...givenStrings(args, ['user', 'workdir']) };
    if (ctx.json) {
      if (flag(args, 'interactive') || flag(args, 'tty')) throw new UsageError('--json collects the output of the command: it cannot be used with -i or -t');
      const r = await container.exec(args.rest, options);
      writeJson(ctx.stdout, { ExitCode: r.exitCode, Signal: r.signal, Stdout: r.stdout, Stderr: r.stderr });
      return r.exitCode;
    }
    const tty = flag(args, 'tty');
    const session = await container.execStream(args.rest, { ...options, tty, stdin: flag(args, 'interactive') });
    session.stdout?.pipe(ctx.stdout, { end: false });
    session.stderr?.pipe(ctx.stderr, { end: false });
    const disconnect = session.stdin ? connectStdin(ctx, session.stdin, rawCapable(ctx, tty)) : undefined;
    try {
      const { exitCode } = await session.exited;
      await Promise.all([session.stdout, session.stderr].map((s) => (s && !s.readableEnded ? new Promise((r) => s.once('close', r)) : undefined)));
      return exitCode;
    } finally {
      disconnect?.();
    }
  },
};

const logs: Command = {
  name: 'logs',
  aliases: ['container logs'],
  usage: '[OPTIONS] CONTAINER',
  summary: "Fetch a container's logs",
  options: {
    follow: { type: 'boolean', short: 'f' },
    tail: { type: 'string', short: 'n' },
    timestamps: { type: 'boolean', short: 't' },
    since: { type: 'string' },
    until: { type: 'string' },
  },
  minArgs: 1,
  maxArgs: 1,
  async run(ctx, args) {
    const rt = await ctx.runtime();
    const container = await rt.containers.get(args.positionals[0]!);
    const tailText = stringOption(args, 'tail');
    const tail = tailText === undefined || tailText === 'all' ? 'all' : Number(tailText);
    if (tail !== 'all' && (!Number.isInteger(tail) || tail < 0)) throw new UsageError(`--tail: not a number of lines: ${tailText}`);
    const follow = flag(args, 'follow');
    const reader = container.logs({ follow, tail, ...givenStrings(args, ['since', 'until']) });
    const stamps = flag(args, 'timestamps');
    if (ctx.json && !follow) {
      writeJson(ctx.stdout, (await collect(reader)).map((e) => ({ stream: e.stream, time: e.time, log: e.text })));
      return 0;
    }
    for await (const e of reader) {
      // Following with --json: one JSON object per line, parseable as it arrives.
      if (ctx.json) ctx.stdout.write(`${JSON.stringify({ stream: e.stream, time: e.time, log: e.text })}\n`);
      else (e.stream === 'stderr' ? ctx.stderr : ctx.stdout).write(stamps ? `${e.time} ${e.text}` : e.text);
    }
    return 0;
  },
};

/** Runs `action` on each named container, as the removal verbs do (see each-ref.ts). */
async function eachContainer(ctx: CliContext, refs: readonly string[], action: (container: Container) => Promise<void>): Promise<number> {
  const rt = await ctx.runtime();
  return forEachRef(ctx, refs, async (ref) => action(await rt.containers.get(ref)));
}

const stop: Command = {
  name: 'stop',
  aliases: ['container stop'],
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  summary: 'Stop one or more running containers',
  options: { time: { type: 'string', short: 't' }, signal: { type: 'string', short: 's' } },
  minArgs: 1,
  async run(ctx, args) {
    const time = stringOption(args, 'time');
    const seconds = time === undefined ? undefined : Number(time);
    if (seconds !== undefined && (!Number.isFinite(seconds) || seconds < 0)) throw new UsageError(`--time: not a number of seconds: ${time}`);
    const signal = stringOption(args, 'signal');
    return eachContainer(ctx, args.positionals, (c) => c.stop({ ...(seconds !== undefined ? { timeout: seconds * 1000 } : {}), ...(signal !== undefined ? { signal: signal as NodeJS.Signals } : {}) }));
  },
};

const rm: Command = {
  name: 'rm',
  aliases: ['container rm'],
  usage: '[OPTIONS] CONTAINER [CONTAINER...]',
  summary: 'Remove one or more containers',
  options: { force: { type: 'boolean', short: 'f' }, volumes: { type: 'boolean', short: 'v' } },
  minArgs: 1,
  async run(ctx, args) {
    const force = flag(args, 'force');
    const volumes = flag(args, 'volumes');
    return eachContainer(ctx, args.positionals, (c) => c.remove({ force, ...(volumes ? { volumes } : {}) }));
  },
};

export const CONTAINER_VERBS: readonly Command[] = [ps, run, exec, logs, stop, rm];
