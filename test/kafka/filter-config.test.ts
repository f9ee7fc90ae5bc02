import * as assert from 'assert';
import type { CompiledProxyPolicy, KafkaRule } from '../../src/policy/compiled';
import { encodeKafkaFilterConfig, kafkaFilterConfigs } from '../../src/kafka/filter-config';
import { vm } from './harness';
import * as k from '../../src/kafka/wire';

const rule = (cidrs: string[], kafka: KafkaRule[], extra = {}) => ({
  origin: { policy: 'default/acl', file: 'p.yaml', line: 3 },
  peers: { any: false, cidrs, principals: ['cluster.local/ns/shop/sa/web'] },
  l7: { kind: 'kafka' as const, rules: kafka },
  ...extra,
});

const POLICY: CompiledProxyPolicy = {
  nodeId: 'n',
  workloads: ['default/kafka-0'],
  ingress: [
    { port: 9092, protocol: 'TCP', l7: 'kafka', rules: [rule(['10.1.0.0/16'], [{ apiKeys: [0], topic: 'a' }])] },
    { port: 9092, protocol: 'ANY', l7: 'kafka', rules: [rule(['fd00::/8'], [], { local: ['10.20.0.1/32'] })] },
    { port: 9093, protocol: 'UDP', l7: 'kafka', rules: [rule([], [])] },
    { port: 8080, protocol: 'TCP', l7: 'http', rules: [] },
  ],
  egress: [{ port: 9092, protocol: 'TCP', l7: 'kafka', rules: [rule(['10.30.0.0/16'], [{ apiKeys: [3] }])] }],
};

describe('Kafka filter configuration compiled from the policy model', () => {
  const configs = kafkaFilterConfigs(POLICY);

  it('one configuration per Kafka TCP port and direction, TCP and ANY entries merged, UDP and HTTP ports left out', () => {
    assert.deepStrictEqual(
      configs.map((c) => c.name),
      ['ingress:9092', 'egress:9092'],
    );
    assert.strictEqual(configs[0].rules.length, 2);
    assert.deepStrictEqual(configs[0].rules[0].principals, ['spiffe://cluster.local/ns/shop/sa/web']);
    assert.deepStrictEqual(configs[0].rules[1].local, ['10.20.0.1/32']);
    assert.strictEqual(configs[0].rules[0].origin, 'default/acl (p.yaml:3)');
  });

  it('the .wasm reads what the encoder writes, IPv6 CIDRs and local addresses included', () => {
    const root = vm().configure(encodeKafkaFilterConfig(configs[0]));
    assert.notStrictEqual(root, undefined);
    const judge = (props: Record<string, string>, frame: Buffer): Buffer => {
      const s = vm().newConnection(root as number, props, () => {});
      const out = s.downstream(frame);
      s.finish();
      return out;
    };
    const hb = k.heartbeat(1, 1);
    assert.deepStrictEqual(judge({ 'source.address': '[fd00::7]:1', 'destination.address': '10.20.0.1:9092' }, hb), hb);
    assert.deepStrictEqual(
      judge({ 'source.address': '[fd00::7]:1', 'destination.address': '10.20.0.2:9092' }, hb),
      k.carrierApiVersions(1),
      'a rule for another local workload applied',
    );
    assert.deepStrictEqual(
      judge({ 'source.address': '[::ffff:10.1.2.3]:1', 'destination.address': '10.20.0.2:9092' }, k.produce(3, 2, [['a', [0]]])),
      k.produce(3, 2, [['a', [0]]]),
      'an IPv4-mapped peer is its IPv4 address',
    );
  });

  it('egress: the peer is the destination', () => {
    const root = vm().configure(encodeKafkaFilterConfig(configs[1])) as number;
    const md = k.metadata(1, 3, ['x']);
    const s1 = vm().newConnection(root, { 'source.address': '10.1.0.1:5', 'destination.address': '10.30.1.1:9092' }, () => {});
    assert.deepStrictEqual(s1.downstream(md), md);
    s1.finish();
    const s2 = vm().newConnection(root, { 'source.address': '10.30.1.1:5', 'destination.address': '10.1.0.1:9092' }, () => {});
    assert.notDeepStrictEqual(s2.downstream(md), md);
    s2.finish();
  });
});
