import * as assert from 'assert';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import { ENVOY_PROTO_FILES } from '../../src/envoy/protos';
import { loadProtoFiles } from '../../src/resource/protos';
import { checkEnvoyJson } from '../../src/envoy/schema-check';
import { istioEnvoyFilterPatches } from '../../src/envoy/builders/istio-envoyfilter';
import { kafkaEcdsResources, kafkaNetworkFilter, KAFKA_WASM_TYPE_URL } from '../../src/kafka/delivery';
import { DEFAULT_PROPS, vm } from './harness';
import * as k from '../../src/kafka/wire';

const POLICY: CompiledProxyPolicy = {
  nodeId: 'n',
  workloads: ['default/kafka-0'],
  ingress: [
    {
      port: 9092,
      protocol: 'TCP',
      l7: 'kafka',
      rules: [
        {
          origin: { policy: 'default/acl' },
          peers: { any: false, cidrs: ['10.0.0.0/8'], principals: ['cluster.local/ns/a/sa/b'] },
          l7: { kind: 'kafka', rules: [{ apiKeys: [0, 3, 18], topic: 'orders' }] },
        },
      ],
    },
    { port: 8080, protocol: 'TCP', l7: 'http', rules: [] },
  ],
  egress: [],
};

describe('Kafka filter delivery: ECDS resources and the Istio EnvoyFilter', () => {
  const root = loadProtoFiles([...ENVOY_PROTO_FILES, 'envoy/extensions/filters/network/wasm/v3/wasm.proto']);
  const wasmType = root.lookupType('envoy.extensions.filters.network.wasm.v3.Wasm');
  const filterType = root.lookupType('envoy.config.listener.v3.Filter');
  const module = { localPath: '/etc/meshaccel/kafka-filter.wasm' };

  it("one ECDS resource per Kafka port, valid against Envoy's Wasm proto, carrying a configuration the .wasm accepts", () => {
    const resources = kafkaEcdsResources(POLICY, module);
    assert.deepStrictEqual(
      resources.map((r) => r.name),
      ['meshaccel.kafka.inbound.9092'],
    );
    const typed = resources[0].resource.typed_config as Record<string, unknown>;
    assert.strictEqual(typed['@type'], KAFKA_WASM_TYPE_URL);
    const { ['@type']: _t, ...body } = typed;
    assert.deepStrictEqual(checkEnvoyJson(wasmType, body).violations, []);
    const cfg = (body.config as { configuration: { value: string } }).configuration.value;
    assert.notStrictEqual(vm().configure(Buffer.from(cfg, 'base64')), undefined);
  });

  it('the schema check catches a wrong field (so the check above can fail)', () => {
    const typed = kafkaEcdsResources(POLICY, module)[0].resource.typed_config as Record<string, Record<string, unknown>>;
    const broken = { config: { ...typed.config, fail_open: 'no' } };
    assert.notDeepStrictEqual(checkEnvoyJson(wasmType, broken).violations, []);
  });

  it('the listener filter names the ECDS resource and defaults to a deny-all configuration', () => {
    const f = kafkaNetworkFilter('ingress', 9092, module);
    assert.deepStrictEqual(checkEnvoyJson(filterType, f).violations, []);
    const def = (f.config_discovery as { default_config: { config: { configuration: { value: string } } } }).default_config;
    const r = vm().configure(Buffer.from(def.config.configuration.value, 'base64'));
    assert.notStrictEqual(r, undefined);
    let closed = false;
    const s = vm().newConnection(r as number, DEFAULT_PROPS, () => {
      closed = true;
    });
    assert.deepStrictEqual(s.downstream(k.heartbeat(1, 7)), k.carrierApiVersions(7));
    s.downstream(k.apiVersions(3, 8));
    assert.strictEqual(closed, true);
    s.finish();
  });

  it('the Istio EnvoyFilter inserts it before tcp_proxy on the inbound chains of the port', () => {
    const patches = istioEnvoyFilterPatches({ http: [], kafka: [9092] }, { kafkaModule: module }) as Array<{
      applyTo: string;
      match: { listener: { portNumber?: number; filterChain: { filter: { name: string } } } };
      patch: { operation: string; value: { name: string } };
    }>;
    const patch = patches.find((p) => p.patch.value.name === 'meshaccel.kafka.inbound.9092');
    assert.ok(patch);
    assert.strictEqual(patch.applyTo, 'NETWORK_FILTER');
    assert.strictEqual(patch.patch.operation, 'INSERT_BEFORE');
    assert.strictEqual(patch.match.listener.portNumber, 9092);
    assert.strictEqual(patch.match.listener.filterChain.filter.name, 'envoy.filters.network.tcp_proxy');
    assert.deepStrictEqual(checkEnvoyJson(filterType, patch.patch.value).violations, []);
  });
});
