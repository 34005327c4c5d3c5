/**
 * Splitting a string-form `command:` or `entrypoint:` into argv the way compose does (POSIX
 * shell word rules: quotes and backslashes, no expansion), not by running a shell.
 * @module
 */
import { ValidationError } from '../errors.js';

/** @throws ValidationError naming `where` for an unclosed quote or a trailing backslash. */
export function splitShellWords(text: string, where: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  for (let i = 0; i < text.length; i++) {
    const c = text[i]!;
    if (c === "'") {
      const end = text.indexOf("'", i + 1);
      if (end < 0) throw new ValidationError(where, `unclosed ' in ${JSON.stringify(text)}`);
      word += text.slice(i + 1, end);
      inWord = true;
      i = end;
    } else if (c === '"') {
      inWord = true;
      let j = i + 1;
      for (; j < text.length && text[j] !== '"'; j++) {
        // Inside double quotes a backslash escapes only these, as in sh.
        if (text[j] === '\\' && '"\\$`'.includes(text[j + 1] ?? '')) j++;
        word += text[j];
      }
      if (j >= text.length) throw new ValidationError(where, `unclosed " in ${JSON.stringify(text)}`);
      i = j;
    } else if (c === '\\') {
      if (i + 1 >= text.length) throw new ValidationError(where, `trailing backslash in ${JSON.stringify(text)}`);
      word += text[++i];
      inWord = true;
    } else if (/\s/.test(c)) {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += c;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}
