import type { CompiledPortPolicy, CompiledRule } from '../../policy/compiled';
import { ADS_CONFIG_SOURCE, type Direction, withType } from './ecds';
import { addRbacPolicies, emptyRbacPolicies, type Json, type RbacCompilation, type RbacOptions } from './rbac';

/**
 * L3/L4 verdicts: Envoy's network RBAC filter (`envoy.filters.network.rbac`) on the capture
 * listeners' chains, judged once per connection. Its config travels over ECDS like the HTTP
 * RBAC, so a policy or identity change updates these resources and never a listener. Each chain
 * gets two: the direction's deny rules (DENY, shared by every chain) and the allows for the
 * ports the chain carries (ALLOW; one per L7 port chain, one for the default chain with a
 * destination-port condition per port). Needs Envoy 1.28 or later (network-filter ECDS).
 */

export const NETWORK_RBAC_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

/**
 * ECDS name of a chain's allow RBAC: `port` for an L7 port's chain, `default` for the default
 * chain; `all` (istio mode) for the resource every inbound chain carries, with every port's rules.
 */
export function networkRbacName(direction: Direction, scope: number | 'default' | 'all'): string {
  return `meshaccel.l4.${direction}.${scope}`;
}

export function networkDenyName(direction: Direction): string {
  return `meshaccel.l4deny.${direction}`;
}

/** Policy names say which rule they are: `meshaccel:<ns>/<name>#<section>[<i>]@<port>`, told apart from Istio's own. */
export function networkPolicyName(rule: CompiledRule, port: number): string {
  const at = port === 0 ? '*' : String(port);
  return rule.origin.rule ? `meshaccel:${rule.origin.policy}#${rule.origin.rule.section}[${rule.origin.rule.index}]@${at}` : `meshaccel:default-allow@${at}`;
}

/**
 * The network RBAC of a set of port entries. `portConditions`: each entry's rules also need the
 * connection's destination port (the default chain); port 0 entries match any port.
 */
export function compileNetworkRbac(
  entries: readonly CompiledPortPolicy[],
  options: RbacOptions & { action: 'ALLOW' | 'DENY'; portConditions: boolean; statPrefix: string },
): RbacCompilation {
  const into = emptyRbacPolicies();
  for (const entry of entries) {
    const condition: Json = options.portConditions && entry.port !== 0 ? { destination_port: entry.port } : { any: true };
    addRbacPolicies(
      into,
      entry,
      options,
      () => condition,
      (rule) => networkPolicyName(rule, entry.port),
    );
  }
  return {
    rbac: { stat_prefix: options.statPrefix, rules: { action: options.action, policies: into.policies } },
    origins: into.origins,
    warnings: into.warnings,
    policyOrigins: into.policyOrigins,
  };
}

/** What a network RBAC filter applies when its ECDS resource is missing or rejected: nothing passes. */
export function denyAllNetworkRbac(statPrefix: string): Json {
  return { stat_prefix: statPrefix, rules: { action: 'ALLOW', policies: {} } };
}

/** A network filter whose config comes from ECDS, failing closed. */
export function ecdsNetworkFilter(name: string, statPrefix: string): Json {
  return {
    name,
    config_discovery: {
      config_source: ADS_CONFIG_SOURCE,
      default_config: withType(NETWORK_RBAC_TYPE_URL, denyAllNetworkRbac(statPrefix)),
      apply_default_config_without_warming: false,
      type_urls: [NETWORK_RBAC_TYPE_URL],
    },
  };
}

/** The L3/L4 filters every capture chain starts with: the deny rules, then the chain's allows. */
export function networkRbacFilters(direction: Direction, scope: number | 'default'): Json[] {
  return [ecdsNetworkFilter(networkDenyName(direction), `${direction}_deny`), ecdsNetworkFilter(networkRbacName(direction, scope), `${direction}_${scope}`)];
}
