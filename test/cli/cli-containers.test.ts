/**
 * The `berth` CLI's container and volume verbs against the real runtime, each command its own
 * process on a temp `--root`, as from a shell: Docker's table shapes, `--json` parsed back,
 * Docker's exit codes (the container's own, 126/127, 125 for berth and usage failures, 1 for the
 * other verbs' failures). Containers run from `--host` (the host's /usr), so no registry is needed.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { kernelSkipReason } from '../helpers/busybox-rootfs.js';
import { berth, readTable } from '../helpers/cli.js';

const skip = kernelSkipReason();
const root = mkdtempSync(join(tmpdir(), 'berth-cli-'));
after(async () => {
  // Whatever a failed test left running: the containers go with the state directory.
  const left = await berth(root, ['ps', '-a', '-q']);
  for (const id of left.stdout.split('\n').filter(Boolean)) await berth(root, ['rm', '-f', id]);
  rmSync(root, { recursive: true, force: true });
});

const PS_HEADERS = ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES'];

describe('berth run', { skip }, () => {
  it("streams the container's stdout and stderr and exits with its code", async () => {
    const r = await berth(root, ['run', '--rm', '--host', 'sh', '-c', 'echo out; echo err >&2; exit 3']);
    assert.deepEqual(r, { code: 3, stdout: 'out\n', stderr: 'err\n' });
  });

  it("gives everything after the command's first word to the command, dashes included", async () => {
    const r = await berth(root, ['run', '--rm', '--host', 'echo', '-n', '-la', '--json']);
    assert.deepEqual(r, { code: 0, stdout: '-la --json', stderr: '' });
  });

  it('exits 127 for a command that does not exist and 126 for one that cannot be executed, as Docker', async () => {
    const missing = await berth(root, ['run', '--rm', '--host', 'no-such-command']);
    assert.equal(missing.code, 127);
    assert.match(missing.stderr, /exec: "no-such-command": executable file not found in \$PATH/);
    const notExecutable = await berth(root, ['run', '--rm', '--host', '/etc/passwd']);
    assert.equal(notExecutable.code, 126);
    assert.match(notExecutable.stderr, /permission denied/);
  });

  it('exits 125 when berth fails (a missing rootfs) and for a wrong invocation', async () => {
    const noRoot = await berth(root, ['run', '--rm', '--rootfs', '/nonexistent-berth-rootfs', 'true']);
    assert.equal(noRoot.code, 125);
    assert.match(noRoot.stderr, /^Error: .*nonexistent-berth-rootfs/m);
    const noImage = await berth(root, ['run']);
    assert.equal(noImage.code, 125);
    assert.match(noImage.stderr, /"run" requires at least 1 argument/);
    const badFlag = await berth(root, ['ps', '--bogus']);
    assert.equal(badFlag.code, 125);
    assert.match(badFlag.stderr, /Unknown option '--bogus'/);
    const badVerb = await berth(root, ['frobnicate']);
    assert.equal(badVerb.code, 125);
    assert.match(badVerb.stderr, /'frobnicate' is not a berth command/);
  });

  it('--rm removes the container; without it the exited container stays listed', async () => {
    assert.equal((await berth(root, ['run', '--rm', '--name', 'gone', '--host', 'true'])).code, 0);
    assert.equal((await berth(root, ['run', '--name', 'kept', '--host', 'sh', '-c', 'exit 2'])).code, 2);
    const all = JSON.parse((await berth(root, ['ps', '-a', '--json'])).stdout) as Array<{ Names: string[]; State: string; Status: string }>;
    assert.equal(all.some((c) => c.Names.includes('/gone')), false);
    const kept = all.find((c) => c.Names.includes('/kept'));
    assert.equal(kept?.State, 'exited');
    assert.match(kept!.Status, /^Exited \(2\) /);
    assert.equal((await berth(root, ['rm', 'kept'])).code, 0);
  });

  it('-e sets the environment and -i feeds stdin', async () => {
    const r = await berth(root, ['run', '--rm', '-i', '-e', 'GREETING=hello', '--host', 'sh', '-c', 'echo "$GREETING"; cat'], 'from stdin\n');
    assert.deepEqual(r, { code: 0, stdout: 'hello\nfrom stdin\n', stderr: '' });
  });

  it('--json collects the run into one document', async () => {
    const r = await berth(root, ['run', '--rm', '--json', '--host', 'sh', '-c', 'echo o; echo e >&2; exit 4']);
    assert.equal(r.code, 4);
    const doc = JSON.parse(r.stdout);
    assert.deepEqual({ ExitCode: doc.ExitCode, Stdout: doc.Stdout, Stderr: doc.Stderr, OOMKilled: doc.OOMKilled }, { ExitCode: 4, Stdout: 'o\n', Stderr: 'e\n', OOMKilled: false });
    assert.match(doc.Id, /^[0-9a-f]{64}$/);
  });
});

describe('a detached container through ps, exec, logs, inspect, stop and rm', { skip }, () => {
  let id = '';

  it('run -d prints the id and the container outlives the command', async () => {
    const r = await berth(root, ['run', '-d', '--name', 'bg', '--host', 'sh', '-c', 'echo started; echo warn >&2; exec sleep 1000']);
    assert.equal(r.code, 0, r.stderr);
    id = r.stdout.trim();
    assert.match(id, /^[0-9a-f]{64}$/);
    const rows = readTable((await berth(root, ['ps'])).stdout, PS_HEADERS);
    const row = rows.find((x) => x['NAMES'] === 'bg');
    assert.ok(row, 'ps lists the running container');
    assert.equal(row['CONTAINER ID'], id.slice(0, 12));
    assert.equal(row['IMAGE'], 'host');
    assert.match(row['COMMAND']!, /^"sh -c .*…"$/);
    assert.match(row['CREATED']!, /ago$/);
    assert.match(row['STATUS']!, /^Up /);
  });

  it('exec runs in it with its exit code, -e, -i and --json', async () => {
    assert.deepEqual(await berth(root, ['exec', '-e', 'X=1', 'bg', 'sh', '-c', 'echo "x=$X"; exit 5']), { code: 5, stdout: 'x=1\n', stderr: '' });
    assert.deepEqual(await berth(root, ['exec', '-i', 'bg', 'cat'], 'piped\n'), { code: 0, stdout: 'piped\n', stderr: '' });
    const missing = await berth(root, ['exec', 'bg', 'no-such-command']);
    assert.equal(missing.code, 127);
    const json = await berth(root, ['exec', '--json', 'bg', 'echo', 'hi']);
    assert.deepEqual(JSON.parse(json.stdout), { ExitCode: 0, Signal: null, Stdout: 'hi\n', Stderr: '' });
    const noContainer = await berth(root, ['exec', 'no-such-container', 'true']);
    assert.equal(noContainer.code, 1);
    assert.match(noContainer.stderr, /^Error: .*no-such-container/m);
  });

  it('logs prints each stream to its own, and --json as records', async () => {
    assert.deepEqual(await berth(root, ['logs', 'bg']), { code: 0, stdout: 'started\n', stderr: 'warn\n' });
    const records = JSON.parse((await berth(root, ['logs', '--json', 'bg'])).stdout) as Array<{ stream: string; log: string; time: string }>;
    assert.deepEqual(records.map((r) => [r.stream, r.log]), [['stdout', 'started\n'], ['stderr', 'warn\n']]);
    const stamped = await berth(root, ['logs', '-t', 'bg']);
    assert.match(stamped.stdout, /^\d{4}-\d\d-\d\dT\S+ started\n$/);
  });

  it('inspect prints a JSON array, and exits 1 for a name it cannot find', async () => {
    const r = await berth(root, ['inspect', 'bg']);
    assert.equal(r.code, 0);
    const [doc] = JSON.parse(r.stdout) as Array<{ Id: string; Name: string; State: { Running: boolean } }>;
    assert.equal(doc?.Id, id);
    assert.equal(doc?.Name, '/bg');
    assert.equal(doc?.State.Running, true);
    const missing = await berth(root, ['inspect', 'bg', 'no-such-object']);
    assert.equal(missing.code, 1);
    assert.equal((JSON.parse(missing.stdout) as unknown[]).length, 1);
    assert.match(missing.stderr, /No such object: no-such-object/);
  });

  it('stop prints the name, ps drops it, ps -a shows it exited', async () => {
    assert.deepEqual(await berth(root, ['stop', '-t', '1', 'bg']), { code: 0, stdout: 'bg\n', stderr: '' });
    assert.equal(readTable((await berth(root, ['ps'])).stdout, PS_HEADERS).some((r) => r['NAMES'] === 'bg'), false);
    const row = readTable((await berth(root, ['ps', '-a'])).stdout, PS_HEADERS).find((r) => r['NAMES'] === 'bg');
    assert.match(row?.['STATUS'] ?? '', /^Exited \(\d+\) /);
  });

  it('rm removes what it can, reports the rest, exits 1', async () => {
    const r = await berth(root, ['rm', 'bg', 'no-such-container']);
    assert.equal(r.code, 1);
    assert.equal(r.stdout, 'bg\n');
    assert.match(r.stderr, /^Error: .*no-such-container/m);
    assert.deepEqual(JSON.parse((await berth(root, ['ps', '-a', '--json'])).stdout), []);
  });

  it('run -d --rm: the monitor removes the container when it exits', async () => {
    const started = await berth(root, ['run', '-d', '--rm', '--name', 'shortlived', '--host', 'sh', '-c', 'echo bye']);
    assert.equal(started.code, 0, started.stderr);
    const listed = async () => (JSON.parse((await berth(root, ['ps', '-a', '--json'])).stdout) as Array<{ Names: string[] }>).some((c) => c.Names.includes('/shortlived'));
    // Bounded: each look is a whole CLI process; the container exits at once.
    for (let look = 0; look < 30 && (await listed()); look++) await new Promise((r) => setTimeout(r, 200));
    assert.equal(await listed(), false, 'removed after its exit');
  });

  it('logs -f follows until the container exits', async () => {
    const started = await berth(root, ['run', '-d', '--name', 'talker', '--host', 'sh', '-c', 'echo one; sleep 1; echo two']);
    assert.equal(started.code, 0, started.stderr);
    assert.deepEqual(await berth(root, ['logs', '-f', 'talker']), { code: 0, stdout: 'one\ntwo\n', stderr: '' });
    assert.equal((await berth(root, ['rm', 'talker'])).code, 0);
  });
});

describe('volumes and help', { skip }, () => {
  it('volume ls, rm and prune, as tables and as JSON', async () => {
    assert.equal((await berth(root, ['run', '--rm', '-v', 'clidata:/data', '--host', 'sh', '-c', 'echo kept > /data/f'])).code, 0);
    const again = await berth(root, ['run', '--rm', '-v', 'clidata:/data:ro', '--host', 'cat', '/data/f']);
    assert.deepEqual(again, { code: 0, stdout: 'kept\n', stderr: '' });
    const rows = readTable((await berth(root, ['volume', 'ls'])).stdout, ['DRIVER', 'VOLUME NAME']);
    assert.deepEqual(rows, [{ DRIVER: 'local', 'VOLUME NAME': 'clidata' }]);
    const docs = JSON.parse((await berth(root, ['volume', 'ls', '--json'])).stdout) as Array<{ Name: string; Mountpoint: string }>;
    assert.equal(docs[0]?.Name, 'clidata');

    const declined = await berth(root, ['volume', 'prune', '-a'], 'n\n');
    assert.match(declined.stdout, /Are you sure you want to continue\? \[y\/N\]/);
    assert.equal(readTable((await berth(root, ['volume', 'ls'])).stdout, ['DRIVER', 'VOLUME NAME']).length, 1, 'a "no" keeps the volume');

    assert.deepEqual(await berth(root, ['volume', 'rm', 'clidata']), { code: 0, stdout: 'clidata\n', stderr: '' });
    const missing = await berth(root, ['volume', 'rm', 'clidata']);
    assert.equal(missing.code, 1);

    assert.equal((await berth(root, ['run', '--rm', '-v', 'other:/data', '--host', 'true'])).code, 0);
    const pruned = await berth(root, ['volume', 'prune', '-a', '-f']);
    assert.equal(pruned.code, 0);
    assert.match(pruned.stdout, /^Deleted Volumes:\nother\n\nTotal reclaimed space: \d/);
    assert.deepEqual(JSON.parse((await berth(root, ['volume', 'ls', '--json'])).stdout), []);
  });

  it('--help lists the verbs and exits 0', async () => {
    const r = await berth(root, ['--help']);
    assert.equal(r.code, 0);
    for (const verb of ['ps', 'run', 'exec', 'logs', 'inspect', 'stop', 'rm', 'images', 'pull', 'rmi', 'volume ls', 'network prune', 'info']) {
      assert.match(r.stdout, new RegExp(`^  ${verb} `, 'm'), verb);
    }
  });
});
