/**
 * Each {@link RawInstruction} in its typed shape: flags (`--from=`, `--mount=`, …) checked
 * against the ones the instruction takes, exec (JSON) versus shell form decided, key=value
 * pairs split. Nothing is expanded here: expansion needs the build's variables and happens
 * when a stage is dispatched (`stage-state.ts`), on the words kept here.
 * @module
 */
import { DockerfileSyntaxError, type SourceLocation } from './build-errors.js';
import type { Heredoc, RawInstruction } from './dockerfile-parser.js';
import { splitWords } from './shell-expand.js';

/** A command in exec form (`["a","b"]`) or shell form (`a b`, run by the stage's SHELL). */
export type CommandForm = { exec: true; argv: string[] } | { exec: false; script: string };

/** A `--flag=value` of an instruction. */
export interface Flag {
  name: string;
  /** The value, unexpanded; `undefined` for a bare `--link`. */
  value: string | undefined;
  loc: SourceLocation;
}

interface Common {
  loc: SourceLocation;
  /** The instruction as written (keyword + rest), for messages. */
  original: string;
  heredocs: Heredoc[];
}

export type Instruction = Common & (
  | { kind: 'FROM'; image: string; name?: string; platform?: string }
  | { kind: 'RUN'; command: CommandForm; mounts: Flag[]; network?: string; security?: string }
  | { kind: 'CMD' | 'ENTRYPOINT'; command: CommandForm }
  | { kind: 'SHELL'; argv: string[] }
  | { kind: 'COPY' | 'ADD'; sources: string[]; dest: string; from?: Flag; chown?: Flag; chmod?: Flag; link: boolean; exec: boolean; checksum?: Flag }
  | { kind: 'ENV' | 'LABEL'; pairs: Array<[string, string]> }
  | { kind: 'ARG'; args: Array<{ name: string; value?: string }> }
  | { kind: 'WORKDIR' | 'USER' | 'STOPSIGNAL' | 'MAINTAINER'; value: string }
  | { kind: 'EXPOSE'; ports: string[] }
  | { kind: 'VOLUME'; paths: string[]; exec: boolean }
  | { kind: 'HEALTHCHECK'; none: true } | { kind: 'HEALTHCHECK'; none: false; command: CommandForm; flags: Flag[] }
  | { kind: 'ONBUILD'; expression: string }
);

export type InstructionKind = Instruction['kind'];

const FLAGS: Record<string, readonly string[]> = {
  FROM: ['platform'],
  RUN: ['mount', 'network', 'security'],
  COPY: ['from', 'chown', 'chmod', 'link'],
  ADD: ['chown', 'chmod', 'link', 'checksum', 'keep-git-dir'],
  HEALTHCHECK: ['interval', 'timeout', 'start-period', 'start-interval', 'retries'],
};
const KINDS = new Set(['FROM', 'RUN', 'CMD', 'ENTRYPOINT', 'SHELL', 'COPY', 'ADD', 'ENV', 'LABEL', 'ARG', 'WORKDIR', 'USER', 'STOPSIGNAL', 'MAINTAINER', 'EXPOSE', 'VOLUME', 'HEALTHCHECK', 'ONBUILD']);

/** Leading `--name[=value]` words; returns them and the offset where the arguments start. */
function takeFlags(raw: RawInstruction, escape: string): { flags: Flag[]; offset: number } {
  const flags: Flag[] = [];
  let pos = 0;
  const text = raw.rest;
  for (;;) {
    while (pos < text.length && /\s/.test(text[pos]!)) pos++;
    if (!text.startsWith('--', pos)) break;
    const word = splitWords(text.slice(pos), escape)[0] ?? '';
    const start = pos;
    pos += word.length;
    if (word === '--') break;
    const eq = word.indexOf('=');
    const name = eq < 0 ? word.slice(2) : word.slice(2, eq);
    flags.push({ name, value: eq < 0 ? undefined : word.slice(eq + 1), loc: raw.locate(start) });
  }
  while (pos < text.length && /\s/.test(text[pos]!)) pos++;
  const allowed = FLAGS[raw.keyword] ?? [];
  for (const f of flags) {
    if (!allowed.includes(f.name)) throw new DockerfileSyntaxError(f.loc, `unknown flag: --${f.name}${allowed.length ? ` (${raw.keyword} takes ${allowed.map((a) => `--${a}`).join(', ')})` : ` (${raw.keyword} takes no flags)`}`);
    if (f.name !== 'mount' && f.name !== 'link' && f.value === undefined) throw new DockerfileSyntaxError(f.loc, `flag --${f.name} needs a value (--${f.name}=…)`);
    if (f.name !== 'mount' && flags.filter((g) => g.name === f.name).length > 1) throw new DockerfileSyntaxError(f.loc, `flag --${f.name} given more than once`);
  }
  return { flags, offset: pos };
}

/** `["a", "b"]` when `text` is a JSON array of strings, else undefined (shell form). */
function jsonArray(text: string): string[] | undefined {
  if (!text.startsWith('[')) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  } catch {
    // Not JSON: Docker falls back to the shell form.
  }
  return undefined;
}

function commandForm(text: string): CommandForm {
  const argv = jsonArray(text);
  return argv ? { exec: true, argv } : { exec: false, script: text };
}

function flag(flags: Flag[], name: string): Flag | undefined {
  return flags.find((f) => f.name === name);
}

/** `k=v k2="v 2"`, or the legacy `KEY value with spaces` (ENV and LABEL). */
function nameValues(raw: RawInstruction, args: string, offset: number, escape: string): Array<[string, string]> {
  const words = splitWords(args, escape);
  const loc = raw.locate(offset);
  if (words.length === 0) throw new DockerfileSyntaxError(loc, `${raw.keyword} requires at least one argument`);
  if (!words[0]!.includes('=')) {
    if (raw.keyword === 'LABEL') throw new DockerfileSyntaxError(loc, `LABEL requires key=value pairs, got ${JSON.stringify(words[0])}`);
    const value = args.slice(words[0]!.length).trim();
    if (value === '') throw new DockerfileSyntaxError(loc, `${raw.keyword} ${words[0]} needs a value (ENV key=value, or ENV key value)`);
    return [[words[0]!, value]];
  }
  return words.map((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) throw new DockerfileSyntaxError(raw.locate(offset + args.indexOf(w)), `can't find = in ${JSON.stringify(w)}; must be of the form name=value`);
    if (eq === 0) throw new DockerfileSyntaxError(raw.locate(offset + args.indexOf(w)), `${raw.keyword} names can not be blank`);
    return [w.slice(0, eq), w.slice(eq + 1)];
  });
}

/**
 * The typed instruction of one raw instruction.
 * @throws DockerfileSyntaxError for an unknown instruction or flag, or malformed arguments
 */
export function toInstruction(raw: RawInstruction, escape: string): Instruction {
  if (!KINDS.has(raw.keyword)) throw new DockerfileSyntaxError(raw.loc, `unknown instruction: ${raw.keyword}`);
  const { flags, offset } = takeFlags(raw, escape);
  const args = raw.rest.slice(offset);
  const argsLoc = raw.locate(offset);
  const common: Common = { loc: raw.loc, original: raw.original, heredocs: raw.heredocs };
  const need = () => {
    if (args.trim() === '') throw new DockerfileSyntaxError(argsLoc, `${raw.keyword} requires at least one argument`);
  };
  switch (raw.keyword) {
    case 'FROM': {
      const words = splitWords(args, escape);
      if (words.length !== 1 && !(words.length === 3 && words[1]!.toUpperCase() === 'AS')) {
        throw new DockerfileSyntaxError(argsLoc, 'FROM requires either one argument, or three: FROM <image> [AS <name>]');
      }
      const name = words[2]?.toLowerCase();
      if (name !== undefined && !/^[a-z][a-z0-9._-]*$/.test(name)) throw new DockerfileSyntaxError(raw.locate(offset + args.lastIndexOf(words[2]!)), `invalid stage name ${JSON.stringify(words[2])}: it must start with a letter and hold only letters, digits, '.', '_' and '-'`);
      const platform = flag(flags, 'platform')?.value;
      return { ...common, kind: 'FROM', image: words[0]!, ...(name ? { name } : {}), ...(platform ? { platform } : {}) };
    }
    case 'RUN': {
      if (raw.heredocs.length === 0) need();
      const network = flag(flags, 'network')?.value;
      const security = flag(flags, 'security')?.value;
      return { ...common, kind: 'RUN', command: commandForm(args), mounts: flags.filter((f) => f.name === 'mount'), ...(network ? { network } : {}), ...(security ? { security } : {}) };
    }
    case 'CMD':
    case 'ENTRYPOINT':
      need();
      return { ...common, kind: raw.keyword, command: commandForm(args) };
    case 'SHELL': {
      const argv = jsonArray(args);
      if (!argv || argv.length === 0) throw new DockerfileSyntaxError(argsLoc, 'SHELL requires the arguments to be in JSON form, e.g. SHELL ["/bin/bash", "-c"]');
      return { ...common, kind: 'SHELL', argv };
    }
    case 'COPY':
    case 'ADD': {
      need();
      const json = jsonArray(args);
      const words = json ?? splitWords(args, escape);
      if (words.length < 2) throw new DockerfileSyntaxError(argsLoc, `${raw.keyword} requires at least two arguments, but only one was provided. Destination could not be determined.`);
      const from = flag(flags, 'from');
      const chown = flag(flags, 'chown');
      const chmod = flag(flags, 'chmod');
      const checksum = flag(flags, 'checksum');
      const link = flag(flags, 'link');
      if (link?.value !== undefined && link.value !== 'true' && link.value !== 'false') throw new DockerfileSyntaxError(link.loc, `--link takes true or false, got ${JSON.stringify(link.value)}`);
      return {
        ...common, kind: raw.keyword, sources: words.slice(0, -1), dest: words[words.length - 1]!, exec: json !== undefined,
        ...(from ? { from } : {}), ...(chown ? { chown } : {}), ...(chmod ? { chmod } : {}), ...(checksum ? { checksum } : {}),
        link: link !== undefined && link.value !== 'false',
      };
    }
    case 'ENV':
    case 'LABEL':
      return { ...common, kind: raw.keyword, pairs: nameValues(raw, args, offset, escape) };
    case 'ARG': {
      const words = splitWords(args, escape);
      if (words.length === 0) throw new DockerfileSyntaxError(argsLoc, 'ARG requires at least one argument');
      return {
        ...common, kind: 'ARG', args: words.map((w) => {
          const eq = w.indexOf('=');
          const name = eq < 0 ? w : w.slice(0, eq);
          if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new DockerfileSyntaxError(raw.locate(offset + args.indexOf(w)), `invalid ARG name ${JSON.stringify(name)}`);
          return eq < 0 ? { name } : { name, value: w.slice(eq + 1) };
        }),
      };
    }
    case 'WORKDIR':
    case 'USER':
    case 'STOPSIGNAL':
    case 'MAINTAINER':
      need();
      if (raw.keyword !== 'MAINTAINER' && raw.keyword !== 'WORKDIR' && splitWords(args, escape).length !== 1) throw new DockerfileSyntaxError(argsLoc, `${raw.keyword} requires exactly one argument`);
      return { ...common, kind: raw.keyword, value: args.trim() };
    case 'EXPOSE':
      need();
      return { ...common, kind: 'EXPOSE', ports: splitWords(args, escape) };
    case 'VOLUME': {
      need();
      const json = jsonArray(args);
      return { ...common, kind: 'VOLUME', paths: json ?? splitWords(args, escape), exec: json !== undefined };
    }
    case 'HEALTHCHECK': {
      need();
      const words = splitWords(args, escape);
      if (words[0]!.toUpperCase() === 'NONE') {
        if (words.length > 1 || flags.length > 0) throw new DockerfileSyntaxError(argsLoc, 'HEALTHCHECK NONE takes no other arguments');
        return { ...common, kind: 'HEALTHCHECK', none: true };
      }
      if (words[0]!.toUpperCase() !== 'CMD') throw new DockerfileSyntaxError(argsLoc, `unknown type ${JSON.stringify(words[0])} in HEALTHCHECK (try CMD)`);
      const cmd = args.trimStart().slice(3).trim();
      if (cmd === '') throw new DockerfileSyntaxError(argsLoc, 'HEALTHCHECK CMD requires a command');
      return { ...common, kind: 'HEALTHCHECK', none: false, command: commandForm(cmd), flags };
    }
    case 'ONBUILD': {
      need();
      const inner = /^(\S+)/.exec(args.trim())![1]!.toUpperCase();
      if (inner === 'ONBUILD') throw new DockerfileSyntaxError(argsLoc, 'chaining ONBUILD via `ONBUILD ONBUILD` isn\'t allowed');
      if (inner === 'FROM' || inner === 'MAINTAINER') throw new DockerfileSyntaxError(argsLoc, `${inner} isn't allowed as an ONBUILD trigger`);
      if (!KINDS.has(inner)) throw new DockerfileSyntaxError(argsLoc, `unknown instruction in ONBUILD: ${inner}`);
      return { ...common, kind: 'ONBUILD', expression: args.trim() };
    }
    default:
      throw new DockerfileSyntaxError(raw.loc, `unknown instruction: ${raw.keyword}`);
  }
}
