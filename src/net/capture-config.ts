/**
 * The one description of traffic capture shared by the redirect agent (nftables / tc rules)
 * and the Envoy listener builders, so the ports and marks the kernel steers to are the ports
 * and marks the proxy listens on and sets.
 */
export interface RedirectConfig {
  /** Proxy listener receiving captured inbound flows (Istio's 15006). */
  inboundProxyPort: number;
  /** Proxy listener receiving captured outbound flows (Istio's 15001). */
  outboundProxyPort: number;
  /** fwmark that TPROXY sets and the policy-routing rule matches. */
  tproxyMark: number;
  /** Routing table holding `local 0.0.0.0/0 dev lo`. */
  routeTable: number;
  /** SO_MARK the proxy sets on its own upstream sockets so they are never captured again. */
  proxyMark: number;
  /** UID the proxy runs as; its traffic is excluded too when set. */
  proxyUid?: number;
  /** Workload ports captured inbound; empty means every port. */
  inboundPorts: number[];
  excludeInboundPorts: number[];
  excludeOutboundPorts: number[];
  excludeInboundCidrs: string[];
  excludeOutboundCidrs: string[];
  /**
   * Capture IPv6 TCP too (default true). The proxy's listeners must then accept IPv6 (bind `::`
   * with IPv4 compatibility); set false when they are IPv4-only, or captured IPv6 flows find no
   * socket and are dropped.
   */
  captureIpv6?: boolean;
}

export const DEFAULT_REDIRECT_CONFIG: Readonly<RedirectConfig> = Object.freeze({
  inboundProxyPort: 15006,
  outboundProxyPort: 15001,
  tproxyMark: 0x1,
  routeTable: 100,
  proxyMark: 0x539,
  inboundPorts: [],
  excludeInboundPorts: [15000, 15001, 15006, 15020, 15021, 15090],
  excludeOutboundPorts: [],
  excludeInboundCidrs: [],
  excludeOutboundCidrs: [],
});
