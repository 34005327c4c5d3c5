/**
 * Docker's `--change` instructions (`docker import -c`, `docker commit -c`): the Dockerfile
 * instructions that only touch the image config — CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK,
 * LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME, WORKDIR — applied to a container config.
 * Variable substitution (`$VAR`) is not performed.
 * @module
 */
import { ValidationError } from '../errors.js';
import { parseGoDurationNs } from '../units.js';
import type { ContainerConfig } from './manifest.js';

function duration(value: string, option: string, flag: string): number {
  const ns = parseGoDurationNs(value);
  if (ns === undefined) throw new ValidationError(option, `${flag}: ${JSON.stringify(value)} is not a duration (e.g. 30s, 1m30s)`);
  return Math.round(ns);
}

/** Splits on unquoted whitespace; quotes group and are removed, backslash escapes one character. */
export function splitWords(s: string, option: string): string[] {
  const words: string[] = [];
  let cur = '';
  let inWord = false;
  let quote: '"' | "'" | undefined;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === quote) quote = undefined;
      else if (c === '\\' && quote === '"' && i + 1 < s.length) cur += s[++i];
      else cur += c;
      continue;
    }
    if (c === '"' || c === "'") {
      quote = c;
      inWord = true;
    } else if (c === '\\' && i + 1 < s.length) {
      cur += s[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(cur);
      cur = '';
      inWord = false;
    } else {
      cur += c;
      inWord = true;
    }
  }
  if (quote) throw new ValidationError(option, `unterminated ${quote} quote`);
  if (inWord) words.push(cur);
  return words;
}

/** `KEY=value KEY2="v 2"`, or the legacy single pair `KEY value with spaces`. */
function keyValues(rest: string, option: string): Array<[string, string]> {
  const words = splitWords(rest, option);
  if (words.length === 0) throw new ValidationError(option, 'needs at least one key=value');
  if (!words[0]!.includes('=')) {
    const key = words[0]!;
    const value = rest.trim().slice(rest.trim().indexOf(key) + key.length).trim();
    if (value === '') throw new ValidationError(option, `${key} has no value`);
    return [[key, splitWords(value, option).join(' ')]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new ValidationError(option, `${JSON.stringify(w)} is not key=value`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/** JSON exec form `["a","b"]`, else shell form -> `/bin/sh -c "<rest>"`. */
function commandForm(rest: string, option: string): string[] {
  const t = rest.trim();
  if (t.startsWith('[')) {
    try {
      const v: unknown = JSON.parse(t);
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
    } catch {
      /* not JSON: shell form, as Docker falls back */
    }
  }
  if (t === '') throw new ValidationError(option, 'needs a command');
  return ['/bin/sh', '-c', t];
}

function listForm(rest: string, option: string): string[] {
  const t = rest.trim();
  if (t.startsWith('[')) {
    try {
      const v: unknown = JSON.parse(t);
      if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
    } catch {
      /* words */
    }
  }
  return splitWords(t, option);
}

function ports(words: string[], option: string): string[] {
  const out: string[] = [];
  for (const w of words) {
    const m = /^([0-9]+)(?:-([0-9]+))?(?:\/(tcp|udp|sctp))?$/i.exec(w);
    if (!m) throw new ValidationError(option, `${JSON.stringify(w)} is not a port (80, 80/tcp, 53/udp, 8000-8010)`);
    const lo = Number(m[1]);
    const hi = m[2] !== undefined ? Number(m[2]) : lo;
    if (lo < 1 || hi > 65535 || hi < lo) throw new ValidationError(option, `${JSON.stringify(w)} is out of range`);
    for (let p = lo; p <= hi; p++) out.push(`${p}/${(m[3] ?? 'tcp').toLowerCase()}`);
  }
  return out;
}

/**
 * Applies `changes` (in order) to a copy of `config`.
 * @param option the option name for errors (`changes`)
 */
export function applyConfigChanges(config: ContainerConfig, changes: readonly string[], option = 'changes'): ContainerConfig {
  const out: ContainerConfig = structuredClone(config);
  changes.forEach((change, i) => {
    const opt = `${option}[${i}]`;
    if (typeof change !== 'string') throw new ValidationError(opt, 'must be a string such as "CMD [\\"sh\\"]"');
    const m = /^\s*([A-Za-z]+)(?:\s+([\s\S]*))?$/.exec(change);
    if (!m) throw new ValidationError(opt, `${JSON.stringify(change)} is not a Dockerfile instruction`);
    const instruction = m[1]!.toUpperCase();
    const rest = (m[2] ?? '').trim();
    switch (instruction) {
      case 'CMD':
        out.Cmd = commandForm(rest, opt);
        break;
      case 'ENTRYPOINT':
        out.Entrypoint = commandForm(rest, opt);
        break;
      case 'ENV': {
        const env = [...(out.Env ?? [])];
        for (const [k, v] of keyValues(rest, opt)) {
          const at = env.findIndex((e) => e === k || e.startsWith(`${k}=`));
          if (at >= 0) env[at] = `${k}=${v}`;
          else env.push(`${k}=${v}`);
        }
        out.Env = env;
        break;
      }
      case 'LABEL':
        out.Labels = { ...(out.Labels ?? {}) };
        for (const [k, v] of keyValues(rest, opt)) out.Labels[k] = v;
        break;
      case 'EXPOSE':
        out.ExposedPorts = { ...(out.ExposedPorts ?? {}) };
        for (const p of ports(splitWords(rest, opt), opt)) out.ExposedPorts[p] = {};
        break;
      case 'VOLUME': {
        const paths = listForm(rest, opt);
        if (paths.length === 0) throw new ValidationError(opt, 'needs a path');
        out.Volumes = { ...(out.Volumes ?? {}) };
        for (const p of paths) out.Volumes[p] = {};
        break;
      }
      case 'USER':
        if (rest === '') throw new ValidationError(opt, 'needs a user');
        out.User = rest;
        break;
      case 'WORKDIR': {
        if (rest === '') throw new ValidationError(opt, 'needs a directory');
        const dir = splitWords(rest, opt).join(' ');
        const base = out.WorkingDir || '/';
        out.WorkingDir = dir.startsWith('/') ? dir : `${base.replace(/\/+$/, '')}/${dir}`;
        break;
      }
      case 'STOPSIGNAL':
        if (!/^(SIG)?[A-Z0-9+-]+$/i.test(rest)) throw new ValidationError(opt, `${JSON.stringify(rest)} is not a signal`);
        out.StopSignal = rest;
        break;
      case 'ONBUILD':
        if (rest === '') throw new ValidationError(opt, 'needs an instruction');
        out.OnBuild = [...((out.OnBuild as string[] | undefined) ?? []), rest];
        break;
      case 'HEALTHCHECK':
        out.Healthcheck = healthcheck(rest, opt);
        break;
      default:
        throw new ValidationError(opt, `${instruction} cannot be applied to an image config (use CMD, ENTRYPOINT, ENV, EXPOSE, HEALTHCHECK, LABEL, ONBUILD, STOPSIGNAL, USER, VOLUME or WORKDIR)`);
    }
  });
  return out;
}

function healthcheck(rest: string, opt: string): NonNullable<ContainerConfig['Healthcheck']> {
  if (/^NONE$/i.test(rest)) return { Test: ['NONE'] };
  const hc: NonNullable<ContainerConfig['Healthcheck']> = {};
  let r = rest;
  for (;;) {
    const flag = /^--([a-z-]+)=(\S+)\s*/.exec(r);
    if (!flag) break;
    r = r.slice(flag[0].length);
    const [, name, value] = flag as unknown as [string, string, string];
    if (name === 'interval') hc.Interval = duration(value, opt, '--interval');
    else if (name === 'timeout') hc.Timeout = duration(value, opt, '--timeout');
    else if (name === 'start-period') hc.StartPeriod = duration(value, opt, '--start-period');
    else if (name === 'retries') {
      if (!/^[0-9]+$/.test(value)) throw new ValidationError(opt, '--retries must be a whole number');
      hc.Retries = Number(value);
    } else throw new ValidationError(opt, `unknown HEALTHCHECK option --${name}`);
  }
  const cmd = /^CMD\s+([\s\S]+)$/i.exec(r.trim());
  if (!cmd) throw new ValidationError(opt, 'HEALTHCHECK needs NONE or [options] CMD command');
  const form = commandForm(cmd[1]!, opt);
  hc.Test = form[0] === '/bin/sh' && form[1] === '-c' && form.length === 3 && !cmd[1]!.trim().startsWith('[') ? ['CMD-SHELL', form[2]!] : ['CMD', ...form];
  return hc;
}
