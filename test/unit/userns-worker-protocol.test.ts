/**
 * The rootless helper's program (lib/rootless/userns-worker.ts) speaks its line protocol
 * (lib/rootless/userns-protocol.ts) whoever runs it: here a plain child process of the test,
 * outside any user namespace. Replies carry the request's id; a failing request answers with
 * the error's class and fields and leaves the helper serving; a line that is not JSON is
 * reported on stderr and skipped; end of file ends it once what is in flight is answered.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, existsSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { WorkerReply } from '../../lib/rootless/userns-protocol.js';

const WORKER = join(dirname(fileURLToPath(import.meta.url)), '../../lib/rootless/userns-worker.ts');

test('replies by id, an error keeps the helper serving, bad lines are skipped, EOF ends it after in-flight work', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'berth-worker-'));
  try {
    mkdirSync(join(dir, 'a/b'), { recursive: true });
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    child.stdin.write(`${JSON.stringify({ id: 7, request: { op: 'remove', paths: [join(dir, 'a')] } })}\n`);
    child.stdin.write('not json\n');
    // A copy from layer dirs that do not exist into a destination that does not: the error, as data.
    child.stdin.write(`${JSON.stringify({ id: 8, request: { op: 'copy', copy: { layerDirs: [join(dir, 'missing')], dir: join(dir, 'no-dest'), devices: false, image: 'x' } } })}\n`);
    child.stdin.end(`${JSON.stringify({ id: 9, request: { op: 'remove', paths: [] } })}\n`);
    const code = await exited;
    assert.equal(code, 0, err);
    const replies = new Map(out.trim().split('\n').map((l) => JSON.parse(l) as WorkerReply).map((r) => [r.id, r]));
    assert.deepEqual([...replies.keys()].sort(), [7, 8, 9]);
    assert.deepEqual(replies.get(7), { id: 7, ok: true, result: null });
    assert.equal(existsSync(join(dir, 'a')), false);
    const failed = replies.get(8)!;
    assert.equal(failed.ok, false);
    if (!failed.ok) {
      assert.equal(failed.error.name, 'SystemError');
      assert.equal(failed.error.fields['code'], 'ENOENT');
      assert.match(failed.error.message, /no-dest|missing/);
    }
    assert.deepEqual(replies.get(9), { id: 9, ok: true, result: null });
    assert.match(err, /a request line is not JSON/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
