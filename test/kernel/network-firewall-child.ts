/**
 * Run by `network-firewall.test.ts` inside `unshare --net` (a private, throw-away network
 * namespace): applies a model with one backend, prints the kernel's view of the rules, applies
 * the empty model, prints again.
 *   node --import tsx network-firewall-child.ts nftables|iptables
 */
import { spawnSync } from 'node:child_process';
import { firewallBackend, type FirewallBackend } from '../../lib/network/firewall.js';
import type { FirewallModel } from '../../lib/network/firewall-rules.js';

const backend = process.argv[2] as FirewallBackend;
const fw = firewallBackend(backend);
if (!fw) {
  console.log('SKIP');
  process.exit(0);
}
const model: FirewallModel = {
  tag: 'feedc0ffee00',
  networks: [
    { bridge: 'berth-aaaaaaaaa', subnet: '10.1.0.0/24', internal: false },
    { bridge: 'berth-bbbbbbbbb', subnet: '10.2.0.0/24', internal: true },
  ],
  ports: [{ protocol: 'tcp', hostIp: '127.0.0.1', host: 18080, containerIp: '10.1.0.2', container: 80 }],
};
const show = () =>
  backend === 'nftables'
    ? spawnSync('nft', ['list', 'ruleset'], { encoding: 'utf8' }).stdout
    : spawnSync('iptables-save', [], { encoding: 'utf8' }).stdout.replace(/^[#:].*\n/gm, '');
await fw.apply(model);
await fw.apply(model); // idempotent
console.log(show());
console.log('----');
await fw.apply({ ...model, networks: [], ports: [] });
console.log(show());
