import * as assert from 'node:assert/strict';
import { ipv6Bytes } from '../../src/datapath/redirect/bpf-tc';
import { parseCidr } from '../../src/net/cidr';

describe('redirect: address parsing for the bpf maps', () => {
  it('encodes IPv6 addresses, including an IPv4-embedded tail, as 16 network-order bytes', () => {
    assert.equal(ipv6Bytes('fd99::1').toString('hex'), 'fd990000000000000000000000000001');
    assert.equal(ipv6Bytes('::ffff:10.0.0.1').toString('hex'), '00000000000000000000ffff0a000001');
    assert.equal(ipv6Bytes('2001:db8:ff::10').toString('hex'), '20010db800ff00000000000000000010');
  });

  it('refuses zone ids, which no CIDR set can hold', () => {
    assert.throws(() => parseCidr('fe80::1%eth0/64'), /not an IPv4\/IPv6 CIDR/);
  });
});

describe('redirect: per-namespace state keys', () => {
  it('never share a key between two namespace names, nor with the host', async () => {
    const { namespaceKey } = await import('../../src/datapath/redirect/state');
    const names = [undefined, 'host', 'a/b', 'a_b', 'a.b', 'pod', 'pod-2', 'ünï'];
    const keys = names.map(namespaceKey);
    assert.equal(new Set(keys).size, names.length, keys.join(' '));
    for (const k of keys) assert.match(k, /^[A-Za-z0-9._-]+$/);
  });
});
