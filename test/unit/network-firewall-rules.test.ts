import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { iptablesJumps, renderIptables, renderNft, type FirewallModel } from '../../lib/network/firewall-rules.js';

const model: FirewallModel = {
  tag: 'abcdef012345',
  networks: [
    { bridge: 'berth-aaaaaaaaa', subnet: '10.1.0.0/24', internal: false },
    { bridge: 'berth-bbbbbbbbb', subnet: '10.2.0.0/24', internal: true },
  ],
  ports: [
    { protocol: 'tcp', hostIp: '127.0.0.1', host: 18080, containerIp: '10.1.0.2', container: 80 },
    { protocol: 'udp', hostIp: '0.0.0.0', host: 5353, containerIp: '10.1.0.3', container: 53 },
  ],
};

describe('packet-filter rules', () => {
  it('nftables: one table per runtime, replaced atomically, with DNAT, masquerade and isolation', () => {
    const nft = renderNft(model);
    assert.match(nft, /^table ip berth_abcdef012345 \{\}\ndelete table ip berth_abcdef012345\ntable ip berth_abcdef012345 \{/);
    assert.match(nft, /ip daddr 127\.0\.0\.1 meta l4proto tcp th dport 18080 dnat to 10\.1\.0\.2:80/);
    assert.match(nft, /\tmeta l4proto udp th dport 5353 dnat to 10\.1\.0\.3:53/);
    assert.match(nft, /type nat hook output priority -100; policy accept;\n\t\tfib daddr type local jump published/);
    assert.match(nft, /ip saddr 10\.1\.0\.0\/24 oifname != "berth-aaaaaaaaa" masquerade/);
    assert.match(nft, /oifname "berth-aaaaaaaaa" ip saddr 127\.0\.0\.0\/8 masquerade/);
    assert.doesNotMatch(nft, /10\.2\.0\.0\/24/, 'no NAT for the internal network');
    assert.match(nft, /iifname "berth-bbbbbbbbb" drop/);
    assert.match(nft, /type filter hook prerouting priority raw; policy accept;\n\t\tiifname "berth-aaaaaaaaa" ip daddr 127\.0\.0\.0\/8 drop/);
    // Accepts come before drops: a published port of one network is reachable from another.
    const fwd = nft.slice(nft.indexOf('chain fwd_filter'));
    assert.ok(fwd.indexOf('ct status dnat accept') < fwd.indexOf('oifname "berth-*" drop'));
    assert.ok(fwd.indexOf('iifname "berth-aaaaaaaaa" oifname "berth-aaaaaaaaa" accept') < fwd.indexOf('drop'));
  });

  it('nftables: without networks the table is only deleted', () => {
    assert.equal(renderNft({ tag: 't', networks: [], ports: [] }), 'table ip berth_t {}\ndelete table ip berth_t\n');
  });

  it('iptables: the same rules in the runtime\'s own chains', () => {
    const ipt = renderIptables(model);
    assert.match(ipt, /^\*raw\n:BERTH-ABCDEF012345-RAW - \[0:0\]\n-A BERTH-ABCDEF012345-RAW -i berth-aaaaaaaaa -d 127\.0\.0\.0\/8 -j DROP\n/);
    assert.match(ipt, /\*nat\n:BERTH-ABCDEF012345-DNAT - \[0:0\]\n:BERTH-ABCDEF012345-POST - \[0:0\]\n/);
    assert.match(ipt, /-A BERTH-ABCDEF012345-DNAT -d 127\.0\.0\.1\/32 -p tcp -m tcp --dport 18080 -j DNAT --to-destination 10\.1\.0\.2:80/);
    assert.match(ipt, /-A BERTH-ABCDEF012345-POST -s 10\.1\.0\.0\/24 ! -o berth-aaaaaaaaa -j MASQUERADE/);
    assert.match(ipt, /-A BERTH-ABCDEF012345-FWD -i berth-aaaaaaaaa -o berth-\+ -j DROP/);
    assert.match(ipt, /-A BERTH-ABCDEF012345-FWD -i berth-bbbbbbbbb -j DROP/);
    assert.doesNotMatch(ipt, /-i \S+ .*POST/, 'POSTROUTING has no input interface in iptables');
    assert.deepEqual(
      iptablesJumps('abcdef012345').map((j) => `${j.table}/${j.chain}`),
      ['raw/PREROUTING', 'nat/PREROUTING', 'nat/OUTPUT', 'nat/POSTROUTING', 'filter/FORWARD'],
    );
  });
});
