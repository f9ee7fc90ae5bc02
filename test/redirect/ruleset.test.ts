/** The pure parts: config validation, ruleset rendering, nft JSON parsing, CLI option mapping. */
import { strict as assert } from 'assert';
import { parseArgs } from '../../src/cli/args';
import { configFromArgs } from '../../src/cli/redirect';
import { parseCidr } from '../../src/net/cidr';
import { validateRedirectConfig, withDefaults } from '../../src/datapath/redirect/validate';
import { parseNftTableJson } from '../../src/datapath/redirect/nft';
import { renderApplyTransaction, renderTable } from '../../src/datapath/redirect/nft-ruleset';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';

describe('redirect ruleset and config', () => {
  it('renders inbound/outbound tproxy, marks, exclusions and the proxy bypass', () => {
    const text = renderTable(
      withDefaults({
        proxyUid: 1337,
        inboundPorts: [80, 443],
        excludeOutboundPorts: [9091],
        excludeInboundCidrs: ['10.1.0.0/16', 'fd00::/8'],
        excludeOutboundCidrs: ['192.0.2.1'],
      }),
      'nft',
    );
    assert.match(
      text,
      /tproxy ip to :15006 meta mark set 0x1 ct mark set ct mark \| 0x1 accept|tproxy ip to :15006 meta mark set 0x1 ct mark set ct mark or 0x1 accept/,
    );
    assert.match(text, /tproxy ip6 to :15006 meta mark set 0x1 ct mark set ct mark or 0x1 accept/);
    assert.match(text, /iif "lo" meta mark 0x1 jump outbound_tproxy/);
    assert.match(text, /tproxy ip to :15001 accept/);
    assert.match(text, /meta mark 0x539 counter name "proxy_bypass" return/);
    assert.match(text, /meta skuid 1337 counter name "proxy_bypass" return/);
    assert.match(text, /set inbound_ports \{\n\t\ttype inet_service\n\t\telements = \{ 80, 443 \}/);
    assert.match(text, /tcp dport != @inbound_ports return/);
    assert.match(text, /set exclude_inbound_v4 \{[^}]*elements = \{ 10\.1\.0\.0\/16 \}/);
    assert.match(text, /set exclude_inbound_v6 \{[^}]*elements = \{ fd00::\/8 \}/);
    assert.match(text, /set exclude_outbound_v4 \{[^}]*elements = \{ 192\.0\.2\.1\/32 \}/);
    assert.match(text, /set exclude_outbound_ports \{\n\t\ttype inet_service\n\t\telements = \{ 9091 \}/);
    // The proxy's listener ports are never captured inbound, even when not listed.
    assert.match(text, /set exclude_inbound_ports \{\n\t\ttype inet_service\n\t\telements = \{ [^}]*15001, 15006/);
  });

  it('omits the uid rule without a uid and the port filter when every port is captured', () => {
    const text = renderTable(withDefaults({}), 'nft');
    assert.doesNotMatch(text, /skuid/);
    assert.doesNotMatch(text, /!= @inbound_ports/);
  });

  it('limits inbound capture to the named interfaces and rejects odd names', () => {
    const text = renderTable(withDefaults({}), 'nft', { interfaces: ['eth0', 'veth1'] });
    assert.match(text, /chain inbound \{\n\t\tiifname != \{ "eth0", "veth1" \} return/);
    assert.throws(() => renderTable(withDefaults({}), 'nft', { interfaces: ['eth0" accept'] }), /not an interface name/);
  });

  it('captureIpv6 false renders no ip6 tproxy and lets IPv6 pass the output chain', () => {
    const text = renderTable(withDefaults({ captureIpv6: false }), 'nft');
    assert.doesNotMatch(text, /tproxy ip6/);
    assert.match(text, /chain output \{[^}]*meta nfproto ipv6 return/);
    assert.match(renderTable(withDefaults({}), 'nft'), /tproxy ip6 to :15006/);
  });

  it('bpf mode keeps only the outbound marking chain', () => {
    const text = renderTable(withDefaults({}), 'bpf');
    assert.doesNotMatch(text, /tproxy/);
    assert.doesNotMatch(text, /chain prerouting/);
    assert.match(text, /chain output \{\n\t\ttype route hook output priority mangle/);
    assert.match(text, /counter name "outbound_marked" meta mark set 0x1 ct mark set ct mark or 0x1/);
  });

  it('the transaction replaces the table whether or not it exists', () => {
    const tx = renderApplyTransaction(withDefaults({}), 'nft');
    assert.ok(tx.startsWith('add table inet meshaccel\ndelete table inet meshaccel\ntable inet meshaccel {'));
  });

  it('rejects configurations that would loop or cannot be rendered', () => {
    assert.throws(() => validateRedirectConfig(withDefaults({ proxyMark: 1 })), /proxy's own traffic would be captured/);
    assert.throws(() => validateRedirectConfig(withDefaults({ routeTable: 254 })), /routeTable/);
    for (const bad of ['10.0.0.0/0x8', '10.0.0.0/1e1', '10.0.0.0/ 8', '10.0.0.0/8.0', '10.0.0.0/']) assert.throws(() => parseCidr(bad), /prefix length/, bad);
    // bpf mode's tc maps hold 1024 entries each; nft sets have no bound. Caught before any change.
    const many = Array.from({ length: 1025 }, (_, i) => `10.${i >> 8}.${i & 255}.0/24`);
    assert.throws(
      () => validateRedirectConfig(withDefaults({ excludeInboundCidrs: many }), 'bpf'),
      /excludeInboundCidrs \(IPv4\): 1025 distinct entries, but bpf mode's tc program holds at most 1024 \(use --mode nft/,
    );
    assert.doesNotThrow(() => validateRedirectConfig(withDefaults({ excludeInboundCidrs: many }), 'nft'));
    assert.doesNotThrow(() => validateRedirectConfig(withDefaults({ excludeInboundCidrs: [...many.slice(0, 1024), many[0]] }), 'bpf'), 'duplicates count once');
    assert.throws(
      () => validateRedirectConfig(withDefaults({ inboundPorts: Array.from({ length: 1025 }, (_, i) => i + 1) }), 'bpf'),
      /inboundPorts: 1025 distinct entries/,
    );
    assert.throws(() => validateRedirectConfig(withDefaults({ inboundPorts: [0] })), /inboundPorts: 0/);
    assert.throws(() => validateRedirectConfig(withDefaults({ excludeOutboundCidrs: ['10.0.0.0/33'] })), /excludeOutboundCidrs/);
    assert.throws(() => validateRedirectConfig(withDefaults({ excludeInboundCidrs: ['example.com'] })), /excludeInboundCidrs/);
    validateRedirectConfig(withDefaults({ proxyUid: 0 }));
  });

  it('parses CIDRs and bare addresses', () => {
    assert.deepEqual(parseCidr('10.0.0.0/8'), { family: 4, address: '10.0.0.0', prefix: 8, text: '10.0.0.0/8' });
    assert.equal(parseCidr('2001:db8::1').text, '2001:db8::1/128');
    assert.throws(() => parseCidr('10.0.0.0/'), /prefix/);
  });

  it('reads named counters and set elements from nft -j', () => {
    const json = JSON.stringify({
      nftables: [
        { metainfo: { version: '1.0.6' } },
        { table: { family: 'inet', name: 'meshaccel', handle: 1, comment: 'c' } },
        { counter: { family: 'inet', name: 'inbound_captured', table: 'meshaccel', handle: 2, packets: 7, bytes: 420 } },
        {
          set: {
            family: 'inet',
            name: 'exclude_outbound_v4',
            table: 'meshaccel',
            type: 'ipv4_addr',
            elem: [{ prefix: { addr: '10.0.0.0', len: 8 } }, '192.0.2.1'],
          },
        },
        { set: { family: 'inet', name: 'exclude_outbound_ports', table: 'meshaccel', type: 'inet_service', elem: [9091] } },
        { chain: { family: 'inet', table: 'meshaccel', name: 'output' } },
        { rule: { family: 'inet', table: 'meshaccel', chain: 'output', expr: [] } },
      ],
    });
    const s = parseNftTableJson(json);
    assert.deepEqual(s.counters, { inbound_captured: { packets: 7, bytes: 420 } });
    assert.deepEqual(s.sets.exclude_outbound_v4, ['10.0.0.0/8', '192.0.2.1']);
    assert.deepEqual(s.sets.exclude_outbound_ports, ['9091']);
    assert.deepEqual(s.chains, ['output']);
    assert.equal(s.rules, 1);
  });

  it('maps CLI options onto the shared RedirectConfig', () => {
    const spec = {
      'inbound-ports': { value: true, repeated: true, description: '' },
      'exclude-inbound-ports': { value: true, repeated: true, description: '' },
      'exclude-outbound-cidrs': { value: true, repeated: true, description: '' },
      'proxy-mark': { value: true, description: '' },
      'proxy-uid': { value: true, description: '' },
    };
    const args = parseArgs(
      [
        '--inbound-ports',
        '80,443',
        '--inbound-ports',
        '8080',
        '--exclude-inbound-ports=9090',
        '--exclude-outbound-cidrs',
        '10.0.0.0/8',
        '--proxy-mark',
        '0x600',
        '--proxy-uid',
        '1337',
      ],
      spec,
    );
    const c = configFromArgs(args);
    assert.deepEqual(c.inboundPorts, [80, 443, 8080]);
    assert.deepEqual(c.excludeInboundPorts, [...DEFAULT_REDIRECT_CONFIG.excludeInboundPorts, 9090]);
    assert.deepEqual(c.excludeOutboundCidrs, ['10.0.0.0/8']);
    assert.equal(c.proxyMark, 0x600);
    assert.equal(c.proxyUid, 1337);
  });
});
