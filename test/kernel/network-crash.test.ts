/**
 * Nothing leaks when the owner of a container is SIGKILLed: the container dies with it (the
 * kernel removes its veth with its network namespace), and the next reconciliation drops the
 * lease and the published port's rule.
 */
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { spawnSync } from 'node:child_process';
import { nftTableName } from '../../lib/network/firewall-rules.js';
import { NetworkService } from '../../lib/network/network-service.js';
import { eventually, freePort, linksOf, networkSandbox, networkSkipReason, testSubnet, type NetworkSandbox } from '../helpers/network-fixture.js';

const skip = networkSkipReason();

function rules(svc: NetworkService): string {
  return spawnSync('nft', ['list', 'table', 'ip', nftTableName(svc.tag)], { encoding: 'utf8' }).stdout;
}

describe('crash of the owner process', { skip }, () => {
  let box: NetworkSandbox;
  before(() => {
    box = networkSandbox();
  });
  after(async () => {
    await box.cleanup();
  });

  test('after a SIGKILLed owner, reconciliation removes the lease, the DNAT rule and nothing else; the veth is gone', async () => {
    const net = await box.svc.create({ name: 'crashy', subnet: testSubnet(40) });
    const port = await freePort();
    const child = spawn(process.execPath, ['--import', 'tsx', join(import.meta.dirname, 'network-owner-child.ts'), box.root, 'crashy', String(port)], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    try {
      const line = await Promise.race([
        once(createInterface({ input: child.stdout! }), 'line').then(([l]) => l as string),
        once(child, 'exit').then(() => 'exited'),
      ]);
      const m = /^ready (\d+)$/.exec(line);
      assert.ok(m, `the owner reported: ${line}`);
      const containerPid = Number(m[1]);
      const before = await box.svc.store.readEndpoints();
      assert.equal(before.endpoints.length, 1);
      const veth = before.endpoints[0]!.hostIfname;
      assert.ok(existsSync(`/sys/class/net/${veth}`));
      assert.match(rules(box.svc), new RegExp(`dport ${port} dnat to 10\\.231\\.40\\.\\d+:80`));

      child.kill('SIGKILL');
      await once(child, 'exit');
      assert.ok(await eventually(() => !existsSync(`/proc/${containerPid}`), 5000), 'the container died with its owner');
      assert.ok(await eventually(() => !existsSync(`/sys/class/net/${veth}`), 10_000), 'the kernel removed the veth with the namespace');

      const report = await new NetworkService(box.root).reconcile();
      assert.equal(report.staleEndpoints, 1);
      assert.equal((await box.svc.store.readEndpoints()).endpoints.length, 0);
      assert.doesNotMatch(rules(box.svc), /dnat to/);
      assert.deepEqual(await linksOf(box.svc), [(await net.inspect()).Options['com.docker.network.bridge.name']]);
      // The network itself is intact and usable.
      await net.remove();
      assert.deepEqual(await linksOf(box.svc), []);
    } finally {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
  });
});
