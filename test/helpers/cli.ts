/**
 * Runs the `berth` CLI from source (lib/cli/bin.ts) as its own process, as a user's shell would,
 * against a state directory, and reads Docker-shaped tables back.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository, and the CLI's source entry in it. */
export const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const CLI_BIN = join(REPO, 'lib', 'cli', 'bin.ts');

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** `berth --root <root> ...args`, with `input` on stdin (closed when absent). */
export function berth(root: string, args: readonly string[], input?: string): Promise<CliResult> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', CLI_BIN, '--root', root, ...args], { cwd: REPO, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolvePromise({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

/**
 * A table as `docker ps` prints it, checked for Docker's shape: the header's columns are
 * `headers`, three or more spaces apart, and every row's cells start where their header starts.
 * Returns the rows as records keyed by header.
 */
export function readTable(text: string, headers: readonly string[]): Array<Record<string, string>> {
  const lines = text.split('\n').filter((l) => l !== '');
  assert.ok(lines.length > 0, 'a table has a header line');
  const header = lines[0]!;
  assert.deepEqual(header.split(/ {3,}/), headers, `header of:\n${text}`);
  const starts = headers.map((h) => header.indexOf(h));
  return lines.slice(1).map((line) => {
    const row: Record<string, string> = {};
    headers.forEach((h, i) => {
      const cell = line.slice(starts[i], i + 1 < starts.length ? starts[i + 1] : undefined);
      // Each cell ends in padding, and the next cell starts exactly at its header's column.
      // (A row whose last cells are empty ends early: `docker compose ps` with no PORTS.)
      if (i + 1 < starts.length && line.length > starts[i + 1]!) assert.match(cell, /( {3,}|^ +)$|^$/, `column ${h} of ${JSON.stringify(line)} is padded to the next header`);
      row[h] = cell.trim();
    });
    return row;
  });
}
