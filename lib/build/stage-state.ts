/**
 * The state of one stage while its instructions are dispatched: the image config taking shape,
 * the SHELL, and the variables a word may expand: the stage's ENV (from the base image on) and
 * the ARGs declared in the stage, ENV winning over an ARG of the same name, as in Docker.
 *
 * ARG scoping (Docker's rules): an ARG before the first FROM is global and visible only to
 * FROM lines until a stage declares it again (`ARG NAME` takes the global value); a build arg
 * (`buildArgs`) overrides a declared default; an undeclared build arg is invisible, except the
 * predefined proxy args, which RUN sees without a declaration and history never records.
 * @module
 */
import type { ContainerConfig } from '../image/manifest.js';
import { parseGoDurationNs } from '../units.js';
import { DockerfileSyntaxError, type SourceLocation } from './build-errors.js';
import { goHealthcheck, goList, goQuoteList, nopCreatedBy } from './history.js';
import type { CommandForm, Flag, Instruction } from './instructions.js';
import { ExpansionError, expandWord } from './shell-expand.js';

/** Args every build has without declaring them; RUN sees them, history and cache keys do not. */
export const PROXY_ARGS: ReadonlySet<string> = new Set(['HTTP_PROXY', 'http_proxy', 'HTTPS_PROXY', 'https_proxy', 'FTP_PROXY', 'ftp_proxy', 'NO_PROXY', 'no_proxy', 'ALL_PROXY', 'all_proxy']);

const DEFAULT_SHELL = ['/bin/sh', '-c'];

/** The global scope: ARGs before the first FROM, with build-arg overrides applied. */
export class GlobalArgs {
  readonly values = new Map<string, string | undefined>();
  constructor(
    readonly buildArgs: Readonly<Record<string, string>>,
    readonly escape: string,
    /** Automatic args (TARGETPLATFORM, BUILDARCH, …): declared globally with these values. */
    automatic: Readonly<Record<string, string>> = {},
  ) {
    for (const [k, v] of Object.entries(automatic)) this.values.set(k, v);
  }

  /** Applies one `ARG` before FROM. */
  declare(instr: Extract<Instruction, { kind: 'ARG' }>): void {
    for (const a of instr.args) {
      const value = this.buildArgs[a.name] ?? (a.value !== undefined ? expandAt(a.value, (n) => this.values.get(n), this.escape, instr.loc) : undefined);
      this.values.set(a.name, value);
    }
  }

  /** Expands a FROM line's word with the global args only. */
  expand(word: string, loc: SourceLocation): string {
    return expandAt(word, (n) => this.values.get(n), this.escape, loc);
  }
}

/** `expandWord`, its failures located in the Dockerfile. */
export function expandAt(word: string, lookup: (name: string) => string | undefined, escape: string, loc: SourceLocation, raw = false): string {
  try {
    return expandWord(word, lookup, { escape, raw });
  } catch (e) {
    if (e instanceof ExpansionError) throw new DockerfileSyntaxError(loc, e.message);
    throw e;
  }
}

function envName(entry: string): string {
  const eq = entry.indexOf('=');
  return eq < 0 ? entry : entry.slice(0, eq);
}

/** One stage's config, shell and variables. */
export class StageState {
  config: ContainerConfig;
  shell: string[] = [...DEFAULT_SHELL];
  /** ARGs declared in this stage, in declaration order: name -> value (undefined: no value). */
  readonly args = new Map<string, string | undefined>();
  /** CMD was set in this stage (an ENTRYPOINT then keeps it; otherwise it resets Cmd). */
  private cmdSet = false;
  /** MAINTAINER's value: Docker writes it as the image config's `author`. */
  author: string | undefined;

  constructor(base: ContainerConfig, private readonly globals: GlobalArgs) {
    this.config = structuredClone(base);
    if (Array.isArray(this.config.Shell) && this.config.Shell.every((s) => typeof s === 'string') && this.config.Shell.length > 0) this.shell = [...(this.config.Shell as string[])];
  }

  /** A variable's value for expansion: ENV first, then the stage's ARGs. */
  lookup = (name: string): string | undefined => {
    for (const e of this.config.Env ?? []) if (envName(e) === name) return e.slice(name.length + 1);
    return this.args.get(name);
  };

  expand(word: string, loc: SourceLocation): string {
    return expandAt(word, this.lookup, this.globals.escape, loc);
  }

  /** A heredoc body: only `$` expands, quotes and escapes stay (a shell here-document). */
  expandHeredoc(text: string, loc: SourceLocation): string {
    return expandAt(text, this.lookup, this.globals.escape, loc, true);
  }

  /** A flag's value, expanded. */
  flag(f: Flag | undefined): string | undefined {
    return f?.value === undefined ? undefined : this.expand(f.value, f.loc);
  }

  /** Declared args with a value that no ENV shadows, sorted by name: what a RUN sees and records. */
  visibleArgs(): Array<[string, string]> {
    const env = new Set((this.config.Env ?? []).map(envName));
    return [...this.args].filter((e): e is [string, string] => e[1] !== undefined && !env.has(e[0])).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  }

  /** The environment of a RUN: the image's Env, the visible args, the proxy build args. */
  runEnv(): string[] {
    const env = [...(this.config.Env ?? [])];
    const names = new Set(env.map(envName));
    for (const [k, v] of this.visibleArgs()) env.push(`${k}=${v}`), names.add(k);
    for (const k of PROXY_ARGS) {
      const v = this.globals.buildArgs[k];
      if (v !== undefined && !names.has(k)) env.push(`${k}=${v}`);
    }
    return env;
  }

  /** A CMD/ENTRYPOINT/HEALTHCHECK/RUN command as argv: exec form as written, shell form via SHELL. */
  argv(command: CommandForm): string[] {
    return command.exec ? [...command.argv] : [...this.shell, command.script];
  }

  private setEnv(key: string, value: string): void {
    const env = [...(this.config.Env ?? [])];
    const at = env.findIndex((e) => envName(e) === key);
    if (at >= 0) env[at] = `${key}=${value}`;
    else env.push(`${key}=${value}`);
    this.config.Env = env;
  }

  /**
   * Applies an instruction that only changes the config (ENV, LABEL, ARG, EXPOSE, VOLUME, USER,
   * CMD, ENTRYPOINT, HEALTHCHECK, STOPSIGNAL, SHELL, ONBUILD, MAINTAINER).
   * @returns the history `created_by` of the step
   */
  applyMetadata(instr: Instruction): string {
    const nop = (text: string) => nopCreatedBy(this.shell, text);
    switch (instr.kind) {
      case 'ENV': {
        const pairs = instr.pairs.map(([k, v]) => [this.expand(k, instr.loc), this.expand(v, instr.loc)] as const);
        for (const [k, v] of pairs) this.setEnv(k, v);
        return nop(`ENV ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
      }
      case 'LABEL': {
        const pairs = instr.pairs.map(([k, v]) => [this.expand(k, instr.loc), this.expand(v, instr.loc)] as const);
        this.config.Labels = { ...(this.config.Labels ?? {}) };
        for (const [k, v] of pairs) this.config.Labels[k] = v;
        return nop(`LABEL ${pairs.map(([k, v]) => `${k}=${v}`).join(' ')}`);
      }
      case 'MAINTAINER': {
        const who = this.expand(instr.value, instr.loc);
        this.author = who;
        return nop(`MAINTAINER ${who}`);
      }
      case 'ARG': {
        const parts: string[] = [];
        for (const a of instr.args) {
          const fromBuild = this.globals.buildArgs[a.name];
          const def = a.value !== undefined ? this.expand(a.value, instr.loc) : this.globals.values.get(a.name);
          this.args.set(a.name, fromBuild ?? def);
          parts.push(a.value !== undefined ? `${a.name}=${def}` : a.name);
        }
        return nop(`ARG ${parts.join(' ')}`);
      }
      case 'EXPOSE': {
        const ports = instr.ports.map((p) => this.expand(p, instr.loc));
        this.config.ExposedPorts = { ...(this.config.ExposedPorts ?? {}) };
        for (const p of ports) for (const spec of exposed(p, instr.loc)) this.config.ExposedPorts[spec] = {};
        return nop(`EXPOSE ${[...ports].sort().join(' ')}`);
      }
      case 'VOLUME': {
        const paths = instr.paths.map((p) => this.expand(p, instr.loc));
        if (paths.length === 0 || paths.some((p) => p.trim() === '')) throw new DockerfileSyntaxError(instr.loc, 'VOLUME specified can not be an empty string');
        this.config.Volumes = { ...(this.config.Volumes ?? {}) };
        for (const p of paths) this.config.Volumes[p] = {};
        return nop(`VOLUME ${goList(paths)}`);
      }
      case 'USER': {
        const user = this.expand(instr.value, instr.loc);
        this.config.User = user;
        return nop(`USER ${user}`);
      }
      case 'STOPSIGNAL': {
        const sig = this.expand(instr.value, instr.loc);
        if (!/^(SIG[A-Z0-9+-]+|[0-9]+)$/i.test(sig)) throw new DockerfileSyntaxError(instr.loc, `invalid signal: ${sig}`);
        this.config.StopSignal = sig;
        return nop(`STOPSIGNAL ${sig}`);
      }
      case 'CMD': {
        this.config.Cmd = this.argv(instr.command);
        this.cmdSet = true;
        return nop(`CMD ${goQuoteList(this.config.Cmd)}`);
      }
      case 'ENTRYPOINT': {
        this.config.Entrypoint = this.argv(instr.command);
        // Docker: an ENTRYPOINT resets the inherited CMD unless this stage set one before it.
        if (!this.cmdSet) this.config.Cmd = null;
        return nop(`ENTRYPOINT ${goQuoteList(this.config.Entrypoint)}`);
      }
      case 'SHELL': {
        this.shell = [...instr.argv];
        this.config.Shell = [...instr.argv];
        return nop(`SHELL ${goList(instr.argv)}`);
      }
      case 'ONBUILD': {
        this.config.OnBuild = [...((this.config.OnBuild as string[] | null | undefined) ?? []), instr.expression];
        return nop(`ONBUILD ${instr.expression}`);
      }
      case 'HEALTHCHECK': {
        if (instr.none) {
          this.config.Healthcheck = { Test: ['NONE'] };
        } else {
          const hc: NonNullable<ContainerConfig['Healthcheck']> = {};
          const argv = this.argv(instr.command);
          hc.Test = instr.command.exec ? ['CMD', ...argv] : ['CMD-SHELL', instr.command.script];
          for (const f of instr.flags) {
            const value = this.expand(f.value ?? '', f.loc);
            if (f.name === 'retries') {
              if (!/^[0-9]+$/.test(value)) throw new DockerfileSyntaxError(f.loc, `--retries must be a whole number, got ${JSON.stringify(value)}`);
              hc.Retries = Number(value);
              continue;
            }
            const ns = parseGoDurationNs(value);
            if (ns === undefined || ns < 0) throw new DockerfileSyntaxError(f.loc, `--${f.name}: ${JSON.stringify(value)} is not a duration (e.g. 30s, 1m30s)`);
            if (f.name === 'interval') hc.Interval = ns;
            else if (f.name === 'timeout') hc.Timeout = ns;
            else if (f.name === 'start-period') hc.StartPeriod = ns;
            else (hc as Record<string, number>).StartInterval = ns;
          }
          this.config.Healthcheck = hc;
        }
        return nop(`HEALTHCHECK ${goHealthcheck(this.config.Healthcheck)}`);
      }
      default:
        throw new Error(`${instr.kind} is not a metadata instruction`);
    }
  }
}

function exposed(spec: string, loc: SourceLocation): string[] {
  const m = /^([0-9]+)(?:-([0-9]+))?(?:\/([a-zA-Z]+))?$/.exec(spec);
  if (!m) throw new DockerfileSyntaxError(loc, `invalid containerPort: ${spec}`);
  const lo = Number(m[1]);
  const hi = m[2] !== undefined ? Number(m[2]) : lo;
  const proto = (m[3] ?? 'tcp').toLowerCase();
  if (lo < 1 || hi > 65535 || hi < lo || !['tcp', 'udp', 'sctp'].includes(proto)) throw new DockerfileSyntaxError(loc, `invalid port or range: ${spec}`);
  const out: string[] = [];
  for (let p = lo; p <= hi; p++) out.push(`${p}/${proto}`);
  return out;
}
