/**
 * `commit({ changes })`: Dockerfile instructions applied to the new image's config, as
 * `docker commit --change` (CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER, VOLUME, WORKDIR,
 * STOPSIGNAL). JSON (exec) form and shell form, as in a Dockerfile.
 * @module
 */
import { ValidationError } from '../errors.js';
import type { ContainerConfig } from '../image/manifest.js';

const SUPPORTED = ['CMD', 'ENTRYPOINT', 'ENV', 'EXPOSE', 'LABEL', 'USER', 'VOLUME', 'WORKDIR', 'STOPSIGNAL'];

function unquote(s: string): string {
  if (s.length >= 2 && ((s.startsWith('"') && s.endsWith('"')) || (s.startsWith("'") && s.endsWith("'")))) {
    return s.startsWith('"') ? (JSON.parse(s) as string) : s.slice(1, -1);
  }
  return s;
}

/** Splits on unquoted whitespace. */
function words(s: string): string[] {
  return s.match(/(?:[^\s"']+|"(?:[^"\\]|\\.)*"|'[^']*')+/g) ?? [];
}

/** `key=value` pairs (several per line), or the legacy `KEY value` form. */
function pairs(rest: string, option: string): Array<[string, string]> {
  const ws = words(rest);
  if (ws.length === 0) throw new ValidationError(option, 'needs at least one key');
  if (!ws[0]!.includes('=')) {
    const sp = rest.search(/\s/);
    if (sp < 0) throw new ValidationError(option, `"${rest}" needs a value`);
    return [[rest.slice(0, sp), rest.slice(sp + 1).trim()]];
  }
  return ws.map((w) => {
    const eq = w.indexOf('=');
    if (eq <= 0) throw new ValidationError(option, `"${w}" is not key=value`);
    return [unquote(w.slice(0, eq)), unquote(w.slice(eq + 1))];
  });
}

function argvOf(rest: string, option: string): string[] {
  if (rest.startsWith('[')) {
    let v: unknown;
    try {
      v = JSON.parse(rest);
    } catch {
      throw new ValidationError(option, `${rest} is not a JSON array`);
    }
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) throw new ValidationError(option, 'must be a JSON array of strings');
    return v as string[];
  }
  return ['/bin/sh', '-c', rest];
}

/** Returns a new config with `changes` applied in order. */
export function applyChanges(config: ContainerConfig, changes: readonly string[]): ContainerConfig {
  const out: ContainerConfig = structuredClone(config);
  changes.forEach((line, i) => {
    const option = `changes[${i}]`;
    if (typeof line !== 'string') throw new ValidationError(option, 'must be a string such as "CMD [\\"sh\\"]"');
    const m = /^\s*([A-Za-z]+)\s+([\s\S]*?)\s*$/.exec(line);
    if (!m) throw new ValidationError(option, `"${line}" is not an instruction`);
    const op = m[1]!.toUpperCase();
    const rest = m[2]!;
    switch (op) {
      case 'CMD':
        out.Cmd = argvOf(rest, option);
        break;
      case 'ENTRYPOINT':
        out.Entrypoint = argvOf(rest, option);
        break;
      case 'ENV': {
        const env = new Map((out.Env ?? []).map((kv) => [kv.slice(0, kv.indexOf('=')), kv] as const));
        for (const [k, v] of pairs(rest, option)) env.set(k, `${k}=${v}`);
        out.Env = [...env.values()];
        break;
      }
      case 'LABEL':
        out.Labels = { ...(out.Labels ?? {}) };
        for (const [k, v] of pairs(rest, option)) out.Labels[k] = v;
        break;
      case 'EXPOSE':
        out.ExposedPorts = { ...(out.ExposedPorts ?? {}) };
        for (const p of words(rest)) {
          if (!/^\d{1,5}(\/(tcp|udp|sctp))?$/.test(p)) throw new ValidationError(option, `"${p}" is not a port such as 80 or 53/udp`);
          out.ExposedPorts[p.includes('/') ? p : `${p}/tcp`] = {};
        }
        break;
      case 'VOLUME': {
        out.Volumes = { ...(out.Volumes ?? {}) };
        const list = rest.startsWith('[') ? argvOf(rest, option) : words(rest);
        for (const v of list) out.Volumes[unquote(v)] = {};
        break;
      }
      case 'USER':
        out.User = rest;
        break;
      case 'WORKDIR':
        out.WorkingDir = rest.startsWith('/') ? rest : `${(out.WorkingDir ?? '/').replace(/\/$/, '')}/${rest}`;
        break;
      case 'STOPSIGNAL':
        out.StopSignal = rest;
        break;
      default:
        throw new ValidationError(option, `${op} is not supported by commit (only ${SUPPORTED.join(', ')})`);
    }
  });
  return out;
}
