import { ADS_CONFIG_SOURCE, type Direction, ecdsHttpFilter, rbacEcdsName, withType } from './ecds';
import { HCM_TYPE_URL, routeConfigName, routerFilter } from './listeners';
import { type Json, RBAC_TYPE_URL, denyAllRbac } from './rbac';

/** The filter chain of an HTTP port: HCM with the port's ECDS RBAC, then the router. */
export function httpChain(direction: Direction, port: number): Json {
  const hcm = {
    stat_prefix: `${direction}_${port}`,
    codec_type: 'AUTO',
    rds: { route_config_name: routeConfigName(direction), config_source: ADS_CONFIG_SOURCE },
    http_filters: [ecdsHttpFilter(rbacEcdsName(direction, port), RBAC_TYPE_URL, denyAllRbac()), routerFilter()],
  };
  return {
    name: `${direction}|${port}|http`,
    filter_chain_match: { destination_port: port },
    filters: [{ name: 'envoy.filters.network.http_connection_manager', typed_config: withType(HCM_TYPE_URL, hcm) }],
  };
}
