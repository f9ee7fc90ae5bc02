import type { RedirectConfig } from '../../net/capture-config';
import { Direction, withType } from './ecds';
import type { Json } from './rbac';

/**
 * Standalone Envoy: the inbound and outbound capture listeners the TPROXY agent steers to
 * (ports from the shared RedirectConfig), transparent with the original_dst listener filter,
 * one filter chain per L7 port matched on the original destination port (built by the port's
 * L7 builder), and a default
 * chain passing everything else through to an ORIGINAL_DST cluster. Upstream sockets carry
 * the proxy's SO_MARK so the agent's rules never capture the proxy's own traffic again.
 */

export const HCM_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
export const ROUTER_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.router.v3.Router';
export const TCP_PROXY_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy';
export const ORIGINAL_DST_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.listener.original_dst.v3.OriginalDst';

/** Linux: SOL_SOCKET = 1, SO_MARK = 36. */
export const SOL_SOCKET = 1;
export const SO_MARK = 36;

export function listenerName(direction: Direction): string {
  return `meshaccel.${direction}`;
}

export function passthroughClusterName(direction: Direction): string {
  return `meshaccel.${direction}.passthrough`;
}

export function routeConfigName(direction: Direction): string {
  return `meshaccel.${direction}`;
}

export function routerFilter(): Json {
  return { name: 'envoy.filters.http.router', typed_config: withType(ROUTER_TYPE_URL, {}) };
}

/** ORIGINAL_DST cluster: connects to where the captured connection was going. */
export function originalDstCluster(direction: Direction, redirect: RedirectConfig): Json {
  return {
    name: passthroughClusterName(direction),
    type: 'ORIGINAL_DST',
    lb_policy: 'CLUSTER_PROVIDED',
    connect_timeout: '5s',
    upstream_bind_config: {
      socket_options: [
        {
          description: 'SO_MARK: proxy upstream traffic is not captured again',
          level: SOL_SOCKET,
          name: SO_MARK,
          int_value: redirect.proxyMark,
          state: 'STATE_PREBIND',
        },
      ],
    },
  };
}

/** One route table per direction: everything to the ORIGINAL_DST cluster. */
export function passthroughRouteConfig(direction: Direction): Json {
  return {
    name: routeConfigName(direction),
    virtual_hosts: [
      {
        name: `${direction}|all`,
        domains: ['*'],
        routes: [{ name: 'passthrough', match: { prefix: '/' }, route: { cluster: passthroughClusterName(direction), timeout: '0s' } }],
      },
    ],
  };
}

function passthroughChain(direction: Direction, before: readonly Json[]): Json {
  return {
    name: `${direction}|passthrough`,
    filters: [
      ...before,
      {
        name: 'envoy.filters.network.tcp_proxy',
        typed_config: withType(TCP_PROXY_TYPE_URL, { stat_prefix: `${direction}_passthrough`, cluster: passthroughClusterName(direction) }),
      },
    ],
  };
}

/**
 * `chains`: one filter chain per port Envoy enforces L7 rules on (matched on the original
 * destination port); `defaultChainFilters` run before the passthrough of every other connection.
 */
export function captureListener(direction: Direction, chains: readonly Json[], redirect: RedirectConfig, defaultChainFilters: readonly Json[] = []): Json {
  const port = direction === 'inbound' ? redirect.inboundProxyPort : redirect.outboundProxyPort;
  return {
    name: listenerName(direction),
    address: { socket_address: { address: '0.0.0.0', port_value: port } },
    // The agent captures IPv6 too unless told not to; TPROXY needs an IPv6 socket on the same
    // port for those flows, or they find no listener and are dropped.
    ...(redirect.captureIpv6 !== false
      ? { additional_addresses: [{ address: { socket_address: { address: '::', port_value: port, ipv4_compat: false } } }] }
      : {}),
    transparent: true,
    traffic_direction: direction === 'inbound' ? 'INBOUND' : 'OUTBOUND',
    listener_filters: [{ name: 'envoy.filters.listener.original_dst', typed_config: withType(ORIGINAL_DST_TYPE_URL, {}) }],
    filter_chains: [...chains],
    default_filter_chain: passthroughChain(direction, defaultChainFilters),
  };
}
