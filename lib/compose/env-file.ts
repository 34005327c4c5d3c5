/**
 * `.env` files as compose reads them: `KEY=value` lines, `export KEY=value`, `#` comments,
 * single quotes (literal), double quotes (escapes `\n \t \\ \"`, interpolated) and unquoted
 * values (interpolated, a ` #` starts a comment). A line `KEY` alone takes KEY from `fallback`.
 * @module
 */
import { ValidationError } from '../errors.js';
import { interpolateString, type Lookup } from './interpolate.js';
import { readTextFile } from './read-text.js';

const KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * Parses an env file's text. Values may refer to keys defined above them in the file and to
 * `fallback` (compose's rule).
 * @throws ValidationError naming `file:line` for a malformed line or unclosed quote.
 */
export function parseEnvFile(text: string, file: string, fallback: Lookup = () => undefined): Record<string, string> {
  const out: Record<string, string> = {};
  const lookup: Lookup = (name) => out[name] ?? fallback(name);
  const lines = text.replace(/\r\n/g, '\n').split('\n');
  for (let n = 0; n < lines.length; n++) {
    let line = lines[n]!.trim();
    const where = `${file}:${n + 1}`;
    if (line === '' || line.startsWith('#')) continue;
    if (line.startsWith('export ')) line = line.slice(7).trimStart();
    const eq = line.indexOf('=');
    const key = (eq < 0 ? line : line.slice(0, eq)).trim();
    if (!KEY.test(key)) throw new ValidationError(where, `${JSON.stringify(key)} is not a variable name`);
    if (eq < 0) {
      const inherited = fallback(key);
      if (inherited !== undefined) out[key] = inherited;
      continue;
    }
    let raw = line.slice(eq + 1).trimStart();
    const quote = raw[0];
    if (quote === "'" || quote === '"') {
      // A quoted value may span lines.
      while (closingQuote(raw, quote) < 0 && n + 1 < lines.length) raw += `\n${lines[++n]}`;
      const close = closingQuote(raw, quote);
      if (close < 0) throw new ValidationError(where, `unclosed ${quote} quote`);
      const inner = raw.slice(1, close);
      out[key] = quote === "'" ? inner : interpolateString(unescapeDouble(inner), lookup, where);
    } else {
      const comment = raw.search(/\s#/);
      out[key] = interpolateString((comment < 0 ? raw : raw.slice(0, comment)).trimEnd(), lookup, where);
    }
  }
  return out;
}

function closingQuote(raw: string, quote: string): number {
  for (let i = 1; i < raw.length; i++) {
    if (quote === '"' && raw[i] === '\\') i++;
    else if (raw[i] === quote) return i;
  }
  return -1;
}

function unescapeDouble(s: string): string {
  return s.replace(/\\([nrt"\\$])/g, (_m, c: string) => ({ n: '\n', r: '\r', t: '\t' })[c] ?? (c === '$' ? '$$' : c));
}

/**
 * Reads and parses an env file.
 * @throws ValidationError naming `option` when the file cannot be read (a missing one only
 *   when `required`) or has a bad line.
 */
export async function readEnvFile(path: string, option: string, fallback: Lookup, required = true): Promise<Record<string, string>> {
  const text = await readTextFile(path, option, !required);
  return text === undefined ? {} : parseEnvFile(text, path, fallback);
}
