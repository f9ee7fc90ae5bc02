import type { CompiledProxyPolicy } from '../policy/compiled';
import { encodeKafkaFilterConfig, kafkaFilterConfigs, type KafkaFilterConfig } from './filter-config';

/**
 * Envoy resources that put the Kafka filter on a Kafka port: one ECDS TypedExtensionConfig per
 * port (envoy.filters.network.wasm with the policy as its plugin configuration), the listener
 * filter that names it (chained before tcp_proxy). The
 * standalone builder (envoy/builders/l7.ts) puts the first two on each Kafka port's chain; in
 * istio mode the generated EnvoyFilter (envoy/builders/istio-envoyfilter.ts) inserts the filter.
 */

type Json = { [key: string]: unknown };

export const KAFKA_WASM_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm';
const BYTES_VALUE_TYPE_URL = 'type.googleapis.com/google.protobuf.BytesValue';
/** One VM per worker for every Kafka port: the same vm_id and code, so ECDS updates reuse it and its newest configuration reaches open connections. */
export const KAFKA_VM_ID = 'meshaccel_kafka';

export type WasmModuleSource = { localPath: string } | { remote: { uri: string; cluster: string; sha256: string } };

export function kafkaEcdsName(direction: 'ingress' | 'egress', port: number): string {
  return `meshaccel.kafka.${direction === 'ingress' ? 'inbound' : 'outbound'}.${port}`;
}

function code(module: WasmModuleSource): Json {
  if ('localPath' in module) return { local: { filename: module.localPath } };
  if (!/^[0-9a-f]{64}$/.test(module.remote.sha256)) throw new Error('a remote Wasm module needs its sha256 as 64 hex digits');
  return { remote: { http_uri: { uri: module.remote.uri, cluster: module.remote.cluster, timeout: '10s' }, sha256: module.remote.sha256 } };
}

/** envoy.extensions.filters.network.wasm.v3.Wasm for one port's configuration. */
export function kafkaWasmFilter(cfg: KafkaFilterConfig, module: WasmModuleSource): Json {
  return {
    config: {
      name: kafkaEcdsName(cfg.direction, cfg.port),
      root_id: KAFKA_VM_ID,
      vm_config: { vm_id: KAFKA_VM_ID, runtime: 'envoy.wasm.runtime.v8', code: code(module) },
      // BytesValue reaches proxy_on_configure as its bytes, unwrapped.
      configuration: { '@type': BYTES_VALUE_TYPE_URL, value: encodeKafkaFilterConfig(cfg).toString('base64') },
      fail_open: false,
    },
  };
}

/** A configuration with no rules: the filter denies every request (what a missing ECDS resource must mean). */
export function denyAllKafkaConfig(direction: 'ingress' | 'egress', port: number): KafkaFilterConfig {
  return { name: `${direction}:${port}`, direction, port, maxFrameBytes: 100 * 1024 * 1024, rules: [] };
}

/**
 * A port that has rules but no Kafka rules: every request from any peer (its L3/L4 rules are the
 * network RBAC's job). Served for such ports so that a port losing its last Kafka rule keeps a
 * resource while a draining listener chain still names it, rather than falling to deny-all.
 */
export function allowAllKafkaConfig(direction: 'ingress' | 'egress', port: number): KafkaFilterConfig {
  return { ...denyAllKafkaConfig(direction, port), rules: [{ origin: 'meshaccel:no-kafka-rules', anyPeer: true, peers: [], principals: [], kafka: [] }] };
}

/** The ECDS resource (TypedExtensionConfig) for one port's configuration. */
export function kafkaEcdsResource(cfg: KafkaFilterConfig, module: WasmModuleSource): { name: string; resource: Json } {
  const name = kafkaEcdsName(cfg.direction, cfg.port);
  return { name, resource: { name, typed_config: { '@type': KAFKA_WASM_TYPE_URL, ...kafkaWasmFilter(cfg, module) } } };
}

/** One ECDS resource (TypedExtensionConfig) per Kafka port of the proxy. */
export function kafkaEcdsResources(policy: CompiledProxyPolicy, module: WasmModuleSource): Array<{ name: string; resource: Json }> {
  return kafkaFilterConfigs(policy).map((cfg) => kafkaEcdsResource(cfg, module));
}

/**
 * The listener's network filter for a Kafka port, before tcp_proxy: its config comes over ECDS;
 * until it arrives (and if it is removed) a deny-all configuration applies. Istio's EnvoyFilter
 * passes meshaccel's own config source and applies that default without warming.
 */
export function kafkaNetworkFilter(
  direction: 'ingress' | 'egress',
  port: number,
  module: WasmModuleSource,
  source: { configSource: Json; withoutWarming: boolean } = { configSource: { ads: {}, resource_api_version: 'V3' }, withoutWarming: false },
): Json {
  return {
    name: kafkaEcdsName(direction, port),
    config_discovery: {
      config_source: source.configSource,
      default_config: { '@type': KAFKA_WASM_TYPE_URL, ...kafkaWasmFilter(denyAllKafkaConfig(direction, port), module) },
      apply_default_config_without_warming: source.withoutWarming,
      type_urls: [KAFKA_WASM_TYPE_URL],
    },
  };
}

/**
 * Istio: a port's configuration with peers matched by address only. The filter matches a rule's
 * addresses OR its principals, and a principal alone would admit every pod of that service
 * account; the network RBAC before the filter has already required principal AND address.
 */
export function istioKafkaFilterConfig(cfg: KafkaFilterConfig): KafkaFilterConfig {
  return { ...cfg, rules: cfg.rules.map((r) => ({ ...r, principals: [] })) };
}
