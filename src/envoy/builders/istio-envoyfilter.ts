import { kafkaNetworkFilter, type WasmModuleSource } from '../../kafka/delivery';
import { rbacEcdsName } from './ecds';
import { denyAllNetworkRbac, NETWORK_RBAC_TYPE_URL, networkDenyName, networkRbacName } from './network-rbac';
import { RBAC_TYPE_URL, denyAllRbac, type Json } from './rbac';

/**
 * The Istio EnvoyFilter that puts meshaccel's filters on a sidecar's inbound chains, generated
 * from the same port lists the istio builder serves resources for (modes/istio.ts), so the two
 * cannot drift. Every filter takes its config from meshaccel over ECDS, with a deny-all default
 * applied without warming (a control plane that never answers cannot hold the listener) and an
 * initial_fetch_timeout. Patches, in the order Istio applies them (each INSERT_BEFORE the
 * chain's terminal filter, so they run after Istio's own network filters and in this order):
 * 1. every inbound chain ending in the HCM or tcp_proxy: the L3/L4 deny rules, then the allows
 *    of every port (`meshaccel.l4.inbound.all`, destination-port conditions): the chains of
 *    ports meshaccel knows, of Service ports it does not, and Istio's passthrough chains;
 * 2. Istio's passthrough chains (`virtualInbound` for TCP, `virtualInbound-catchall-http`; they
 *    carry traffic to ports no Service declares) and each L7 port's chains of the other protocol:
 *    `meshaccel.l4.inbound.default`, which allows no L7 port, so L7 rules are never bypassed on a
 *    chain that does not run their filter;
 * 3. per HTTP port the HTTP RBAC before the router; per Kafka port the Kafka filter (proxy-wasm)
 *    before tcp_proxy, after the network RBAC.
 */

export interface EnvoyFilterOptions {
  name?: string;
  namespace?: string;
  /** workloadSelector labels; absent: every sidecar of the namespace. */
  workloadLabels?: Record<string, string>;
  /** meshaccel's xDS server as the sidecars reach it. */
  xdsHost?: string;
  xdsPort?: number;
  initialFetchTimeout?: string;
  /** Where the sidecars load the Kafka filter module from (default: the built .wasm's path). */
  kafkaModule?: WasmModuleSource;
}

/** The ports patched per port, by the protocol whose filter goes there. */
export interface EnvoyFilterPorts {
  http: readonly number[];
  kafka: readonly number[];
}

export const MESHACCEL_XDS_CLUSTER = 'meshaccel-xds';
export const HCM_FILTER = 'envoy.filters.network.http_connection_manager';
export const TCP_PROXY_FILTER = 'envoy.filters.network.tcp_proxy';
/** Istio's inbound capture listener and its passthrough chains (pilot/pkg/model/listener.go). */
export const ISTIO_VIRTUAL_INBOUND = 'virtualInbound';
export const ISTIO_PASSTHROUGH_CHAINS: readonly { name: string; terminal: string }[] = [
  { name: 'virtualInbound', terminal: TCP_PROXY_FILTER },
  { name: 'virtualInbound-catchall-http', terminal: HCM_FILTER },
];

function xdsCluster(host: string, port: number): Json {
  return {
    name: MESHACCEL_XDS_CLUSTER,
    type: 'STRICT_DNS',
    connect_timeout: '1s',
    typed_extension_protocol_options: {
      'envoy.extensions.upstreams.http.v3.HttpProtocolOptions': {
        '@type': 'type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions',
        explicit_http_config: { http2_protocol_options: {} },
      },
    },
    load_assignment: {
      cluster_name: MESHACCEL_XDS_CLUSTER,
      endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: host, port_value: port } } } }] }],
    },
  };
}

function meshaccelConfigSource(fetchTimeout: string): Json {
  return {
    resource_api_version: 'V3',
    initial_fetch_timeout: fetchTimeout,
    api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: MESHACCEL_XDS_CLUSTER } }] },
  };
}

function ecdsFilter(name: string, typeUrl: string, defaultConfig: Json, fetchTimeout: string): Json {
  return {
    name,
    config_discovery: {
      config_source: meshaccelConfigSource(fetchTimeout),
      default_config: { '@type': typeUrl, ...defaultConfig },
      apply_default_config_without_warming: true,
      type_urls: [typeUrl],
    },
  };
}

/** Stat prefix of meshaccel's HTTP RBAC, so its denials are told apart from Istio's AuthorizationPolicy. */
export const ISTIO_HTTP_RULES_STAT_PREFIX = 'meshaccel_';

function networkRbacFilter(name: string, statPrefix: string, fetchTimeout: string): Json {
  return ecdsFilter(name, NETWORK_RBAC_TYPE_URL, denyAllNetworkRbac(statPrefix), fetchTimeout);
}

/** `listener` match: a port's chains (`portNumber`), or named chains of the virtual inbound listener. */
type ChainMatch = { portNumber: number } | { name: string; chain: string } | Record<string, never>;

function networkFilterPatch(where: ChainMatch, terminal: string, value: Json): Json {
  const listener: Json =
    'portNumber' in where
      ? { portNumber: where.portNumber, filterChain: { filter: { name: terminal } } }
      : 'chain' in where
        ? { name: where.name, filterChain: { name: where.chain, filter: { name: terminal } } }
        : { filterChain: { filter: { name: terminal } } };
  return { applyTo: 'NETWORK_FILTER', match: { context: 'SIDECAR_INBOUND', listener }, patch: { operation: 'INSERT_BEFORE', value } };
}

function httpFilterPatch(port: number, fetchTimeout: string): Json {
  return {
    applyTo: 'HTTP_FILTER',
    match: {
      context: 'SIDECAR_INBOUND',
      listener: { portNumber: port, filterChain: { filter: { name: HCM_FILTER, subFilter: { name: 'envoy.filters.http.router' } } } },
    },
    patch: {
      operation: 'INSERT_BEFORE',
      value: ecdsFilter(rbacEcdsName('inbound', port), RBAC_TYPE_URL, { ...denyAllRbac(), rules_stat_prefix: ISTIO_HTTP_RULES_STAT_PREFIX }, fetchTimeout),
    },
  };
}

export function istioEnvoyFilterPatches(ports: EnvoyFilterPorts, options: EnvoyFilterOptions & { kafkaModule: WasmModuleSource }): Json[] {
  const timeout = options.initialFetchTimeout ?? '5s';
  const sorted = (list: readonly number[]): number[] => [...new Set(list)].sort((a, b) => a - b);
  const deny = networkRbacFilter(networkDenyName('inbound'), 'inbound_deny', timeout);
  const all = networkRbacFilter(networkRbacName('inbound', 'all'), 'inbound_all', timeout);
  const noL7 = networkRbacFilter(networkRbacName('inbound', 'default'), 'inbound_default', timeout);
  const patches: Json[] = [];
  for (const terminal of [HCM_FILTER, TCP_PROXY_FILTER]) patches.push(networkFilterPatch({}, terminal, deny), networkFilterPatch({}, terminal, all));
  for (const p of ISTIO_PASSTHROUGH_CHAINS) patches.push(networkFilterPatch({ name: ISTIO_VIRTUAL_INBOUND, chain: p.name }, p.terminal, noL7));
  for (const port of sorted(ports.http)) patches.push(httpFilterPatch(port, timeout), networkFilterPatch({ portNumber: port }, TCP_PROXY_FILTER, noL7));
  for (const port of sorted(ports.kafka)) {
    const kafka = kafkaNetworkFilter('ingress', port, options.kafkaModule, { configSource: meshaccelConfigSource(timeout), withoutWarming: true });
    patches.push(networkFilterPatch({ portNumber: port }, TCP_PROXY_FILTER, kafka), networkFilterPatch({ portNumber: port }, HCM_FILTER, noL7));
  }
  return patches;
}

export function istioEnvoyFilter(ports: EnvoyFilterPorts, options: EnvoyFilterOptions & { kafkaModule: WasmModuleSource }): Json {
  const spec: Json = {
    configPatches: [
      {
        applyTo: 'CLUSTER',
        match: { context: 'SIDECAR_INBOUND' },
        patch: { operation: 'ADD', value: xdsCluster(options.xdsHost ?? 'meshaccel.meshaccel-system.svc.cluster.local', options.xdsPort ?? 18000) },
      },
      ...istioEnvoyFilterPatches(ports, options),
    ],
  };
  if (options.workloadLabels) spec.workloadSelector = { labels: options.workloadLabels };
  return {
    apiVersion: 'networking.istio.io/v1alpha3',
    kind: 'EnvoyFilter',
    metadata: { name: options.name ?? 'meshaccel-rbac', namespace: options.namespace ?? 'default' },
    spec,
  };
}
