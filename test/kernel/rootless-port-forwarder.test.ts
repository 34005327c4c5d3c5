/**
 * `berth-helper port-forward`'s refusals, as root (no user or network needed): the host socket
 * is bound before the forwarder joins any namespace, so a port taken between berth's check and
 * the bind is the forwarder's to report, and must come back as the same typed errors as the
 * check's (rootless-ports.ts). The forwarding itself is tested as a real user in
 * rootless-network-ports.test.ts.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { ConflictError, SystemError, ValidationError } from '../../lib/errors.js';
import { startRootlessPortForwarder } from '../../lib/network/rootless-ports.js';

function forwarders(): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const argv = readFileSync(`/proc/${p}/cmdline`, 'utf8').split('\0');
        return /berth-helper$/.test(argv[0]!) && argv[1] === 'port-forward' && argv[2] === String(process.pid);
      } catch {
        return false;
      }
    })
    .map(Number);
}

describe('berth-helper port-forward refusals', () => {
  let held: Server;
  let port: number;
  before(async () => {
    held = createServer();
    await new Promise<void>((r) => held.listen(0, '127.0.0.1', r));
    port = (held.address() as AddressInfo).port;
  });
  after(() => held.close());

  it('a host port bound meanwhile by someone else is a ConflictError naming ports[i]', async () => {
    const ports = [
      { container: 80, host: 0, hostIp: '127.0.0.1', protocol: 'udp' as const },
      { container: 8080, host: port, hostIp: '127.0.0.1', protocol: 'tcp' as const },
    ];
    await assert.rejects(startRootlessPortForwarder(process.pid, '10.0.0.2', ports), (e: Error) => e instanceof ConflictError && /ports\[1\]: host port 127\.0\.0\.1:\d+\/tcp is already in use/.test(e.message));
    assert.deepEqual(forwarders(), []);
  });

  it('an address that is not this host is a ValidationError naming ports[i].hostIp', async () => {
    const ports = [{ container: 80, host: 0, hostIp: '192.0.2.1', protocol: 'tcp' as const }];
    await assert.rejects(startRootlessPortForwarder(process.pid, '10.0.0.2', ports), (e: Error) => e instanceof ValidationError && /ports\[0\]\.hostIp/.test(e.message));
  });

  it('a namespace it cannot join is a SystemError, and nothing is left', async () => {
    // Root's own user namespace: setns() into the namespace one is in is EINVAL.
    const ports = [{ container: 80, host: 0, hostIp: '127.0.0.1', protocol: 'tcp' as const }];
    await assert.rejects(startRootlessPortForwarder(process.pid, '10.0.0.2', ports), (e: Error) => e instanceof SystemError && /setns/.test(e.message));
    assert.deepEqual(forwarders(), []);
  });

  it('a target that is not an IPv4 address is refused before anything starts', async () => {
    await assert.rejects(startRootlessPortForwarder(process.pid, '10.0.0.2 --evil', []), SystemError);
  });
});
