/**
 * The `berth` CLI's network verbs and `run --network -p`, on real bridges in a temp state
 * directory (run under `flock /tmp/berth-net-tests.lock` on a shared machine): `network ls` as
 * Docker's table and JSON, the PORTS column of `ps`, `network rm` refusing a network in use
 * (exit 1), `network prune -f`.
 */
import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { berth, readTable } from '../helpers/cli.js';
import { freePort, networkSandbox, networkSkipReason, testSubnet } from '../helpers/network-fixture.js';

const skip = networkSkipReason();
const sandbox = skip ? undefined : networkSandbox();
after(async () => {
  if (!sandbox) return;
  const left = await berth(sandbox.root, ['ps', '-a', '-q']);
  for (const id of left.stdout.split('\n').filter(Boolean)) await berth(sandbox.root, ['rm', '-f', id]);
  await sandbox.cleanup();
});

describe('berth network ls|rm|prune, run --network -p', { skip }, () => {
  it('lists networks, publishes a port, refuses to remove a network in use, prunes', async () => {
    const root = sandbox!.root;
    const net = await sandbox!.svc.create({ name: 'cli-net', subnet: testSubnet(93) });
    await sandbox!.svc.create({ name: 'cli-idle', subnet: testSubnet(94) });

    const rows = readTable((await berth(root, ['network', 'ls'])).stdout, ['NETWORK ID', 'NAME', 'DRIVER', 'SCOPE']);
    const row = rows.find((r) => r['NAME'] === 'cli-net');
    assert.deepEqual(row, { 'NETWORK ID': net.id.slice(0, 12), NAME: 'cli-net', DRIVER: 'bridge', SCOPE: 'local' });
    const docs = JSON.parse((await berth(root, ['network', 'ls', '--json'])).stdout) as Array<{ Name: string; IPAM: { Config: Array<{ Subnet: string }> } }>;
    assert.equal(docs.find((d) => d.Name === 'cli-net')?.IPAM.Config[0]?.Subnet, testSubnet(93));

    const port = await freePort();
    const started = await berth(root, ['run', '-d', '--name', 'web', '--network', 'cli-net', '-p', `127.0.0.1:${port}:8080`, '--host', 'sleep', '1000']);
    assert.equal(started.code, 0, started.stderr);
    const ps = readTable((await berth(root, ['ps'])).stdout, ['CONTAINER ID', 'IMAGE', 'COMMAND', 'CREATED', 'STATUS', 'PORTS', 'NAMES']);
    assert.equal(ps.find((r) => r['NAMES'] === 'web')?.['PORTS'], `127.0.0.1:${port}->8080/tcp`);

    const inUse = await berth(root, ['network', 'rm', 'cli-net']);
    assert.equal(inUse.code, 1);
    assert.match(inUse.stderr, /^Error: /m);

    assert.equal((await berth(root, ['rm', '-f', 'web'])).code, 0);
    assert.deepEqual(await berth(root, ['network', 'rm', 'cli-net']), { code: 0, stdout: 'cli-net\n', stderr: '' });
    const pruned = await berth(root, ['network', 'prune', '-f']);
    assert.equal(pruned.code, 0, pruned.stderr);
    assert.match(pruned.stdout, /^Deleted Networks:\ncli-idle\n/);
    const left = JSON.parse((await berth(root, ['network', 'ls', '--json'])).stdout) as Array<{ Name: string }>;
    assert.deepEqual(left.filter((n) => n.Name.startsWith('cli-')), []);
  });
});
