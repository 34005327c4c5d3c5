import { describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { ValidationError } from '../../lib/errors.js';
import { normalizeCreateOptions, signalName } from '../../lib/containers/container-options.js';

describe('create options', () => {
  test('run options keep their validation; container options are checked and defaulted', () => {
    const n = normalizeCreateOptions({ image: { rootfs: '/srv/x' }, cmd: ['sh'], memory: '64m', restart: 'on-failure:3', labels: { a: 'b' } });
    assert.equal(n.run.memory, 64 * 1024 * 1024);
    assert.deepEqual(n.restart, { name: 'on-failure', maximumRetryCount: 3 });
    assert.equal(n.lifetime, 'process');
    assert.equal(n.stopTimeoutMs, 10_000);
    assert.deepEqual(n.log, { maxSize: 20 * 1024 * 1024, maxFiles: 5 });
    assert.equal(n.name, undefined);
  });

  test('volumes, volumesFrom and networking are accepted; mounts are kept apart from the stored run options', () => {
    const n = normalizeCreateOptions({
      image: 'x',
      mounts: [{ type: 'volume', source: 'data', target: '/data' }, { type: 'volume', target: '/cache' }],
      volumesFrom: ['db', 'conf:ro'],
      network: 'app',
      ports: ['127.0.0.1::8080'],
      dns: ['10.0.0.53'],
      extraHosts: ['gw:host-gateway'],
      exposedPorts: [9090],
    });
    assert.equal(n.mounts.length, 2);
    assert.equal(n.run.mounts, undefined, 'config.json stores the resolved mounts instead');
    assert.deepEqual(n.volumesFrom, [{ container: 'db' }, { container: 'conf', mode: 'ro' }]);
    assert.equal(n.run.network, 'app');
    assert.deepEqual(n.run.ports, [{ container: 8080, host: 0, hostIp: '127.0.0.1', protocol: 'tcp' }]);
    assert.deepEqual(n.run.exposedPorts, [{ port: 9090, protocol: 'tcp' }]);
  });

  test('errors name the option', () => {
    const bad: Array<[Record<string, unknown>, RegExp]> = [
      [{ cmd: ['x'] }, /^image: is required/],
      [{ image: '' }, /^image: must not be empty/],
      [{ image: { rootfs: 'rel' } }, /^image.rootfs: must be an absolute path/],
      [{ image: 'x', name: 'a b' }, /^name: invalid container name/],
      [{ image: 'x', labels: { a: 1 } }, /^labels.a: must be a string/],
      [{ image: 'x', lifetime: 'forever' }, /^lifetime: must be/],
      [{ image: 'x', memmory: '1m' }, /^memmory: unknown option/],
      [{ image: 'x', stdin: 'data' }, /^stdin: is a run\(\) option.*openStdin/],
      [{ image: 'x', timeout: 5 }, /^timeout: is a run\(\) option/],
      [{ image: 'x', autoRemove: true, restart: 'always' }, /^autoRemove: conflicts with restart "always"/],
      [{ image: 'x', stopSignal: 'SIGNOPE' }, /^stopSignal: unknown signal/],
      [{ image: 'x', log: { maxFiles: 0 } }, /^log.maxFiles/],
      [{ image: 'x', cmd: 'ls' }, /^cmd: must be an array/],
      [{ image: 'x', mounts: [{ type: 'volume', source: '/srv/data', target: '/data' }] }, /^mounts\[0\]\.source: invalid volume name.*bind/],
      [{ image: 'x', volumesFrom: 'db' }, /^volumesFrom: must be an array/],
      [{ image: 'x', volumesFrom: ['db:rx'] }, /^volumesFrom\[0\]: invalid volumesFrom/],
      [{ image: 'x', network: 'none', ports: [8080] }, /^ports: publishing ports needs a bridge network/],
      [{ image: 'x', network: 'container:db', hostname: 'h' }, /^hostname: conflicts with network/],
    ];
    for (const [opts, re] of bad) assert.throws(() => normalizeCreateOptions(opts as never), (e: Error) => e instanceof ValidationError && re.test(e.message), JSON.stringify(opts));
  });

  test('signal names in every spelling', () => {
    assert.equal(signalName('SIGTERM', 's'), 'SIGTERM');
    assert.equal(signalName('term', 's'), 'SIGTERM');
    assert.equal(signalName('9', 's'), 'SIGKILL');
    assert.equal(signalName(2, 's'), 'SIGINT');
  });
});
