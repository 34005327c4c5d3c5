/**
 * The rootless networks' packet filter (lib/network/rootless-net-rules.ts) and which launches
 * take the rootless user-network path (lib/network/rootless-attach.ts). The rules are applied
 * and attacked for real in test/kernel/rootless-networks.test.ts; here: their shape, and that a
 * name that could inject nft syntax is refused.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { renderRootlessRules, rulesOf } from '../../lib/network/rootless-net-rules.js';
import { wantsRootlessUserNetwork } from '../../lib/network/rootless-attach.js';

const front = { bridge: 'berth-aaaaaaaaa', subnet: '172.18.0.0/16', internal: false };
const sealed = { bridge: 'berth-bbbbbbbbb', subnet: '172.19.0.0/16', internal: true };

describe('renderRootlessRules', () => {
  it('drops forwarding by default; a network reaches itself, and out only when not internal', () => {
    const text = renderRootlessRules([front, sealed]);
    assert.match(text, /policy drop;/);
    assert.match(text, /iifname "berth-aaaaaaaaa" oifname "berth-aaaaaaaaa" accept/);
    assert.match(text, /iifname "berth-bbbbbbbbb" oifname "berth-bbbbbbbbb" accept/);
    assert.match(text, /iifname "berth-aaaaaaaaa" oifname != "berth-\*" accept/);
    assert.doesNotMatch(text, /iifname "berth-bbbbbbbbb" oifname != /, 'an internal network got a way out');
    assert.match(text, /ip saddr 172\.18\.0\.0\/16 oifname != "berth-aaaaaaaaa" masquerade/);
    assert.doesNotMatch(text, /172\.19\.0\.0\/16/, 'an internal network is masqueraded');
    // Idempotent as one file: the table is added, deleted, then defined.
    assert.match(text, /^table ip berth_rootless\ndelete table ip berth_rootless\n/m);
    assert.ok(text.startsWith('table bridge berth_rootless\ndelete table bridge berth_rootless\n'));
  });

  it("the host's loopback address: accepted only from granted containers of non-internal networks, before the way out, else dropped", () => {
    const text = renderRootlessRules([front, sealed], {
      address: '192.0.2.1',
      allowed: [
        { bridge: front.bridge, ip: '172.18.0.5', port: 'bv-000000000001' },
        { bridge: sealed.bridge, ip: '172.19.0.5', port: 'bv-000000000002' },
      ],
    });
    const lines = text.split('\n').map((l) => l.trim());
    const grant = lines.indexOf('iifname "berth-aaaaaaaaa" ip saddr 172.18.0.5 ip daddr 192.0.2.1 accept');
    const drop = lines.indexOf('ip daddr 192.0.2.1 drop');
    const out = lines.indexOf('iifname "berth-aaaaaaaaa" oifname != "berth-*" accept');
    assert.ok(grant >= 0 && drop > grant && out > drop, text);
    assert.doesNotMatch(text, /ip saddr 172\.19\.0\.5 ip daddr/, 'a container of an internal network was granted the host loopback');
    // Only the granted container's own bridge port may use its address (IPv4 and ARP).
    assert.match(text, /table bridge berth_rootless \{[^}]*ether type ip ip saddr 172\.18\.0\.5 iifname != "bv-000000000001" drop/);
    assert.match(text, /ether type arp arp saddr ip 172\.18\.0\.5 iifname != "bv-000000000001" drop/);
  });

  it('refuses names and addresses that are not what they claim (no nft syntax gets through)', () => {
    assert.throws(() => renderRootlessRules([{ ...front, bridge: 'x" accept; #' }]), /not an interface name/);
    assert.throws(() => renderRootlessRules([{ ...front, subnet: '0.0.0.0/0 accept' }]), /not an IPv4 subnet/);
    assert.throws(() => renderRootlessRules([front], { address: '1.2.3.4; drop', allowed: [] }), /not an IPv4 address/);
    assert.throws(() => renderRootlessRules([front], { address: '1.2.3.4', allowed: [{ bridge: front.bridge, ip: '172.18.0.5', port: 'bv-1 accept' }] }), /not an interface name/);
  });

  it('rulesOf keeps only what the rules depend on', () => {
    assert.deepEqual(rulesOf({ networks: [{ ...front, name: 'front', members: {} } as never] }), [front]);
  });
});

describe('wantsRootlessUserNetwork', () => {
  it('named networks and networks: [...] do; the user-mode names, none, host and container: do not', () => {
    assert.equal(wantsRootlessUserNetwork({ network: 'front' }), true);
    assert.equal(wantsRootlessUserNetwork({ networks: [{ network: 'front', aliases: [] }] }), true);
    for (const n of ['bridge', 'pasta', 'slirp4netns', 'none', 'host', 'container:abc']) assert.equal(wantsRootlessUserNetwork({ network: n }), false, n);
    assert.equal(wantsRootlessUserNetwork({}), false);
  });
});
