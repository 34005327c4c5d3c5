/**
 * `.dockerignore`: which context paths COPY and ADD may see, with Docker's rules
 * (moby/patternmatcher): one pattern a line, `#` comments, surrounding whitespace trimmed,
 * each pattern cleaned like Go's `filepath.Clean` and stripped of a leading `/`; `*` and `?`
 * never cross a `/`, `[...]` classes as in Go's `filepath.Match`, `**` any number of
 * directories, `\` escapes. A pattern excludes the paths it matches and everything below them;
 * `!pattern` re-includes; the last matching pattern decides.
 * @module
 */
import { posix } from 'node:path';
import { DockerfileSyntaxError } from './build-errors.js';

interface Rule {
  pattern: string;
  exclude: boolean;
  regex: RegExp;
  /** The number of path segments the pattern has, to test a path's parents cheaply. */
  line: number;
}

function classToRegex(pattern: string, start: number, file: string, line: number): [string, number] {
  // Go's filepath.Match: `[^...]` negates, `a-z` ranges, `\` escapes inside the class.
  let i = start + 1;
  let out = '[';
  if (pattern[i] === '^') {
    out += '^';
    i++;
  }
  let first = true;
  for (; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === ']' && !first) return [`${out}]`, i];
    first = false;
    if (c === '\\') {
      i++;
      if (i >= pattern.length) break;
      out += `\\${pattern[i]}`;
    } else if (c === '-' || /[A-Za-z0-9]/.test(c)) out += c;
    else out += `\\${c}`;
  }
  throw new DockerfileSyntaxError({ file, line, column: start + 1 }, `syntax error in pattern ${JSON.stringify(pattern)}: unterminated [`);
}

/** A pattern as a regular expression over slash-separated relative paths. */
export function patternToRegex(pattern: string, file = '.dockerignore', line = 1): RegExp {
  let re = '^';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*') {
      if (pattern[i + 1] === '*') {
        i++;
        // `**/` matches zero or more directories; a trailing `**` matches everything below.
        if (pattern[i + 1] === '/') {
          i++;
          re += '(?:.*/)?';
        } else re += '.*';
      } else re += '[^/]*';
    } else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const [cls, end] = classToRegex(pattern, i, file, line);
      re += cls;
      i = end;
    } else if (c === '\\') {
      i++;
      if (i >= pattern.length) throw new DockerfileSyntaxError({ file, line, column: i }, `syntax error in pattern ${JSON.stringify(pattern)}: trailing escape`);
      re += pattern[i]!.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
    } else re += c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  }
  return new RegExp(`${re}$`, 's');
}

/** Go's `filepath.Clean` for slash paths, keeping a leading `/`. */
function clean(p: string): string {
  const c = posix.normalize(p);
  return c.length > 1 && c.endsWith('/') ? c.slice(0, -1) : c;
}

/** The patterns of a `.dockerignore` file, ready to match paths. */
export class DockerIgnore {
  private readonly rules: Rule[];
  /** True when some pattern re-includes (`!`): an excluded directory must still be walked. */
  readonly hasExceptions: boolean;

  private constructor(rules: Rule[]) {
    this.rules = rules;
    this.hasExceptions = rules.some((r) => !r.exclude);
  }

  /** No patterns: everything is included. */
  static empty(): DockerIgnore {
    return new DockerIgnore([]);
  }

  /**
   * Parses `.dockerignore` text.
   * @throws DockerfileSyntaxError (file `.dockerignore`, line, column) for a malformed pattern
   */
  static parse(text: string, file = '.dockerignore'): DockerIgnore {
    const rules: Rule[] = [];
    text.replace(/^\uFEFF/, '').split(/\r?\n/).forEach((rawLine, index) => {
      if (rawLine.startsWith('#')) return;
      let p = rawLine.trim();
      if (p === '') return;
      const exclude = !p.startsWith('!');
      if (!exclude) p = p.slice(1).trim();
      if (p === '') return;
      p = clean(p);
      if (p.length > 1 && p.startsWith('/')) p = p.slice(1);
      rules.push({ pattern: p, exclude, regex: patternToRegex(p, file, index + 1), line: index + 1 });
    });
    return new DockerIgnore(rules);
  }

  /**
   * Whether the context path `rel` (slash-separated, relative to the context root, no leading
   * `/`) is excluded. A pattern matching `rel` or any of its parent directories counts.
   */
  excludes(rel: string): boolean {
    let excluded = false;
    const parents: string[] = [];
    const parts = rel.split('/');
    for (let i = 1; i < parts.length; i++) parents.push(parts.slice(0, i).join('/'));
    for (const r of this.rules) {
      if (r.exclude === excluded) continue; // cannot change the outcome
      if (r.regex.test(rel) || parents.some((p) => r.regex.test(p))) excluded = r.exclude;
    }
    return excluded;
  }

  /** The patterns, as cleaned (`!` for exceptions): part of the build cache key of `COPY .`. */
  patterns(): string[] {
    return this.rules.map((r) => (r.exclude ? r.pattern : `!${r.pattern}`));
  }
}
