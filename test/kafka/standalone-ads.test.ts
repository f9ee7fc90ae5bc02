import * as assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import { NodeSnapshotBuilder } from '../../src/server/node-snapshot-builder';
import { startXdsServer, type RunningXdsServer } from '../../src/xds/server';
import { lookupType } from '../../src/envoy/protos';
import { TypeUrl } from '../../src/resource/type-urls';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { kafkaFilterWasmPath } from '../../src/kafka/proxy';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import { rawClient, sotwStream, type DecodedSotwResponse, type RawXdsStream } from '../helpers/raw-xds-client';
import { FIXTURES } from '../envoy/fixtures';
import { vm } from './harness';
import * as k from '../../src/kafka/wire';

/**
 * The Kafka filter over meshaccel's xDS server, subscribed the way Envoy does: the Listener's
 * Kafka chain names an ECDS resource, which is served as envoy.filters.network.wasm with the
 * policy as its BytesValue configuration (decoded from the wire bytes and run through the .wasm);
 * a Kafka rule change pushes only ECDS; a port that loses its Kafka rules gets its ECDS
 * resource (now allow-all) pushed before the Listener that drops the chain.
 */

const decode = (typeName: string, bytes: Uint8Array): any => {
  const t = lookupType(typeName);
  return t.toObject(t.decode(bytes), { enums: String, longs: Number });
};

const KAFKA = 'meshaccel.kafka.inbound.9092';
const ORDERS_PEER = '10.1.0.10:40000';
const BROKER = '10.1.0.30:9092';

/** The plugin configuration bytes of a served TypedExtensionConfig holding the Kafka filter. */
function wireConfig(tecBytes: Uint8Array): Buffer {
  const tec = decode('envoy.config.core.v3.TypedExtensionConfig', tecBytes);
  assert.equal(tec.typed_config.type_url, 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm');
  const wasm = decode('envoy.extensions.filters.network.wasm.v3.Wasm', tec.typed_config.value);
  assert.equal(wasm.config.fail_open, false);
  assert.equal(wasm.config.configuration.type_url, 'type.googleapis.com/google.protobuf.BytesValue');
  return Buffer.from(decode('google.protobuf.BytesValue', wasm.config.configuration.value).value);
}

/** Whether the configuration forwards `request` from `source` (else it is answered as denied). */
function forwards(config: Buffer, source: string, request: Buffer): boolean {
  const v = vm();
  const root = v.configure(config);
  assert.notEqual(root, undefined, 'the .wasm refused the served configuration');
  const s = v.newConnection(root as number, { 'source.address': source, 'destination.address': BROKER }, () => {});
  const out = s.downstream(request);
  s.finish();
  return out.equals(request);
}

describe('standalone Kafka filter served over ADS (ECDS)', function () {
  this.timeout(30000);
  const NODE = FIXTURES['kafka-broker'].nodeId;
  let xds: RunningXdsServer;
  let builder: NodeSnapshotBuilder;
  let client: grpc.Client;
  let ads: RawXdsStream<DecodedSotwResponse>;
  let ecdsNames: string[] = [];

  // Served through the server's NodeSnapshotBuilder: its previous snapshot is what keeps a Kafka
  // resource for a port that lost its Kafka rules.
  let current: CompiledProxyPolicy = FIXTURES['kafka-broker'];
  const publish = (compiled: CompiledProxyPolicy): void => {
    current = compiled;
    builder.policiesChanged(() => true);
  };

  async function subscribe(typeUrl: string, names: string[]): Promise<DecodedSotwResponse> {
    ads.send({ node: { id: NODE }, type_url: typeUrl, resource_names: names });
    const r = await ads.next();
    assert.equal(r.type_url, typeUrl);
    ack(r, names);
    return r;
  }
  const ack = (r: DecodedSotwResponse, names: string[]): void =>
    ads.send({ node: { id: NODE }, type_url: r.type_url, resource_names: names, version_info: r.version_info, response_nonce: r.nonce });

  before(async () => {
    builder = new NodeSnapshotBuilder(
      { policyForNode: () => current },
      { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG, kafkaModule: { localPath: kafkaFilterWasmPath() } },
      { info: () => undefined, warn: () => undefined },
    );
    // Built once before the stream opens (the first build loads the protos for the schema check).
    builder.nodeKey({ id: NODE, cluster: '', metadata: {}, userAgentName: '' });
    xds = await startXdsServer({ source: builder, port: 0, host: '127.0.0.1' });
    client = rawClient(xds.port);
    ads = sotwStream(client);
  });

  after(async () => {
    ads?.close();
    client?.close();
    await xds?.close();
  });

  it('the Kafka chain names an ECDS resource that is served as the Wasm filter with the policy, which the .wasm enforces', async () => {
    await subscribe(TypeUrl.Cluster, []);
    const lds = await subscribe(TypeUrl.Listener, []);
    const inbound = lds.resources.map((r) => decode('envoy.config.listener.v3.Listener', r.value)).find((l: any) => l.name === 'meshaccel.inbound');
    const chain = inbound.filter_chains.find((c: any) => c.filter_chain_match?.destination_port?.value === 9092);
    assert.equal(chain.name, 'inbound|9092|kafka');
    ecdsNames = [
      ...new Set<string>(
        inbound.filter_chains
          .concat([inbound.default_filter_chain])
          .flatMap((c: any) => c.filters.filter((f: any) => f.config_discovery).map((f: any) => f.name)),
      ),
    ];
    assert.ok(ecdsNames.includes(KAFKA), ecdsNames.join(', '));
    await subscribe(TypeUrl.RouteConfiguration, ['meshaccel.inbound', 'meshaccel.outbound']);
    const ecds = await subscribe(TypeUrl.ExtensionConfig, ecdsNames);
    const kafka = ecds.resources.find((r) => decode('envoy.config.core.v3.TypedExtensionConfig', r.value).name === KAFKA);
    assert.ok(kafka, 'the Kafka resource is not served');
    const config = wireConfig(kafka.value);
    const orders: k.Topics = [['orders', [0]]];
    // kafka-orders: produce to orders from 10.1.0.10 only.
    assert.equal(forwards(config, ORDERS_PEER, k.produce(3, 1, orders)), true);
    assert.equal(forwards(config, ORDERS_PEER, k.produce(3, 2, [['audit', [0]]])), false);
    assert.equal(forwards(config, '10.1.0.99:40000', k.produce(3, 3, orders)), false);
  });

  it('a Kafka rule change pushes only the ECDS resource, which now denies what was removed', async () => {
    const changed: CompiledProxyPolicy = JSON.parse(JSON.stringify(FIXTURES['kafka-broker']));
    changed.ingress[0].rules = changed.ingress[0].rules.slice(1);
    publish(changed);
    const push = await ads.next();
    assert.equal(push.type_url, TypeUrl.ExtensionConfig, 'the one push is ECDS');
    ack(push, ecdsNames);
    const kafka = push.resources.find((r) => decode('envoy.config.core.v3.TypedExtensionConfig', r.value).name === KAFKA);
    assert.ok(kafka);
    assert.equal(forwards(wireConfig(kafka.value), ORDERS_PEER, k.produce(3, 1, [['orders', [0]]])), false);
    await ads.nothingFor(300);
  });

  it('a port that loses its Kafka rules: ECDS first, its Kafka resource kept and allowing all, then the Listener without the chain', async () => {
    const l4: CompiledProxyPolicy = JSON.parse(JSON.stringify(FIXTURES['kafka-broker']));
    delete l4.ingress[0].l7;
    for (const r of l4.ingress[0].rules) delete r.l7;
    publish(l4);
    const first = await ads.next();
    assert.equal(first.type_url, TypeUrl.ExtensionConfig);
    ack(first, ecdsNames);
    const kafka = first.resources.find((r) => decode('envoy.config.core.v3.TypedExtensionConfig', r.value).name === KAFKA);
    assert.ok(kafka, 'the Kafka resource was dropped while the listener still names it');
    assert.equal(forwards(wireConfig(kafka.value), '10.1.0.99:40000', k.produce(3, 1, [['audit', [0]]])), true);
    const second = await ads.next();
    assert.equal(second.type_url, TypeUrl.Listener);
    const inbound = second.resources.map((r) => decode('envoy.config.listener.v3.Listener', r.value)).find((l: any) => l.name === 'meshaccel.inbound');
    assert.ok(!(inbound.filter_chains ?? []).some((c: any) => c.filter_chain_match?.destination_port?.value === 9092), 'the Kafka chain is still there');
  });
});
