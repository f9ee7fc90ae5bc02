import { HCM_TYPE_URL, routerFilter } from './listeners';
import { Json, RBAC_FILTER_NAME, RBAC_TYPE_URL } from './rbac';
import { withType } from './ecds';

/**
 * Proxyless gRPC servers (grpc's XdsServer) ask for a Listener named after their listening
 * address and do not speak ECDS, so the RBAC filter goes inline. Their rules, from
 * @grpc/grpc-js-xds' listener validation: one filter (HCM) per chain, no listener_filters,
 * socket_address equal to the bound host:port, router filter last, and the route's action
 * must be non_forwarding_action or the server rejects every RPC.
 */

export const GRPC_SERVER_LISTENER_TEMPLATE = 'grpc/server?xds.resource.listening_address=%s';

export function grpcServerListenerName(host: string, port: number): string {
  const hostPort = host.includes(':') ? `[${host}]:${port}` : `${host}:${port}`;
  return GRPC_SERVER_LISTENER_TEMPLATE.replace('%s', hostPort);
}

/** `rbac`: the RBAC filters in order (a DENY one first, then the ALLOW one); a name each. */
export function grpcServerListener(host: string, port: number, rbac: readonly { name?: string; config: Json }[]): Json {
  const httpFilters: Json[] = rbac.map((r) => ({ name: r.name ?? RBAC_FILTER_NAME, typed_config: withType(RBAC_TYPE_URL, r.config) }));
  httpFilters.push(routerFilter());
  const hcm = {
    stat_prefix: `grpc_${port}`,
    codec_type: 'AUTO',
    route_config: {
      name: `grpc-server-${port}`,
      virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ name: 'all', match: { prefix: '' }, non_forwarding_action: {} }] }],
    },
    http_filters: httpFilters,
  };
  return {
    name: grpcServerListenerName(host, port),
    address: { socket_address: { address: host, port_value: port } },
    default_filter_chain: {
      name: `grpc-server-${port}`,
      filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: withType(HCM_TYPE_URL, hcm) }],
    },
  };
}
