import type { CompiledPortPolicy } from '../../policy/compiled';
import { TypeUrl } from '../../resource/type-urls';
import { type Direction, rbacEcdsName, typedExtensionConfig } from '../builders/ecds';
import { ISTIO_HTTP_RULES_STAT_PREFIX } from '../builders/istio-envoyfilter';
import { l7Rbac } from '../builders/l7';
import { networkPolicyName } from '../builders/network-rbac';
import { RBAC_TYPE_URL, allowAllRbac } from '../builders/rbac';
import type { GeneratedResource } from './mode';

/**
 * Istio: a port's ECDS HTTP RBAC resource, its L7 builder's RBAC or allow-all for a port without
 * L7 rules, with policy names and a stat prefix that tell its denials from Istio's own.
 */
export function ecdsRbac(direction: Direction, port: CompiledPortPolicy, mtls: boolean, warnings: string[]): GeneratedResource {
  const name = rbacEcdsName(direction, port.port);
  const stats = { rules_stat_prefix: ISTIO_HTTP_RULES_STAT_PREFIX };
  if (port.l7 === undefined)
    return { typeUrl: TypeUrl.ExtensionConfig, name, json: typedExtensionConfig(name, RBAC_TYPE_URL, { ...allowAllRbac(), ...stats }), origins: [] };
  const c = l7Rbac(port, {
    direction: direction === 'inbound' ? 'ingress' : 'egress',
    mtlsPrincipals: mtls,
    exactPeers: mtls,
    policyName: (rule, index) => (rule.origin.rule ? networkPolicyName(rule, port.port) : `meshaccel:${rule.origin.policy}#${index}`),
  });
  warnings.push(...c.warnings);
  return {
    typeUrl: TypeUrl.ExtensionConfig,
    name,
    json: typedExtensionConfig(name, RBAC_TYPE_URL, { ...c.rbac, ...stats }),
    origins: c.origins,
    policyOrigins: c.policyOrigins,
  };
}
