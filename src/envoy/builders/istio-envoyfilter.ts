import { rbacEcdsName } from './ecds';
import { RBAC_TYPE_URL, denyAllRbac, type Json } from './rbac';

/**
 * The Istio EnvoyFilter that inserts meshaccel's HTTP RBAC (from ECDS) before the router on
 * each inbound port meshaccel enforces HTTP rules on, generated from the same port list the
 * istio builder serves resources for, so the two cannot drift. The default config denies
 * every request and applies without warming (a control plane that never answers cannot hold
 * the listener); initial_fetch_timeout bounds the first fetch anyway.
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
}

export const MESHACCEL_XDS_CLUSTER = 'meshaccel-xds';

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

function httpFilterPatch(port: number, fetchTimeout: string): Json {
  return {
    applyTo: 'HTTP_FILTER',
    match: {
      context: 'SIDECAR_INBOUND',
      listener: {
        portNumber: port,
        filterChain: { filter: { name: 'envoy.filters.network.http_connection_manager', subFilter: { name: 'envoy.filters.http.router' } } },
      },
    },
    patch: {
      operation: 'INSERT_BEFORE',
      value: {
        name: rbacEcdsName('inbound', port),
        config_discovery: {
          config_source: {
            resource_api_version: 'V3',
            initial_fetch_timeout: fetchTimeout,
            api_config_source: { api_type: 'GRPC', transport_api_version: 'V3', grpc_services: [{ envoy_grpc: { cluster_name: MESHACCEL_XDS_CLUSTER } }] },
          },
          default_config: { '@type': RBAC_TYPE_URL, ...denyAllRbac() },
          apply_default_config_without_warming: true,
          type_urls: [RBAC_TYPE_URL],
        },
      },
    },
  };
}

export function istioEnvoyFilter(ports: readonly number[], options: EnvoyFilterOptions = {}): Json {
  const spec: Json = {
    configPatches: [
      {
        applyTo: 'CLUSTER',
        match: { context: 'SIDECAR_INBOUND' },
        patch: { operation: 'ADD', value: xdsCluster(options.xdsHost ?? 'meshaccel.meshaccel-system.svc.cluster.local', options.xdsPort ?? 18000) },
      },
      ...[...new Set(ports)].sort((a, b) => a - b).map((p) => httpFilterPatch(p, options.initialFetchTimeout ?? '5s')),
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
