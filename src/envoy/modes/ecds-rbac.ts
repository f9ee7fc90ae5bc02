import type { CompiledPortPolicy } from '../../policy/compiled';
import { TypeUrl } from '../../resource/type-urls';
import { type Direction, rbacEcdsName, typedExtensionConfig } from '../builders/ecds';
import { l7Rbac } from '../builders/l7';
import { RBAC_TYPE_URL, allowAllRbac } from '../builders/rbac';
import type { GeneratedResource } from './mode';

/** A port's ECDS RBAC resource: its L7 builder's RBAC, or allow-all for a port without L7 rules. */
export function ecdsRbac(direction: Direction, port: CompiledPortPolicy, mtls: boolean, warnings: string[]): GeneratedResource {
  const name = rbacEcdsName(direction, port.port);
  if (port.l7 === undefined) return { typeUrl: TypeUrl.ExtensionConfig, name, json: typedExtensionConfig(name, RBAC_TYPE_URL, allowAllRbac()), origins: [] };
  const c = l7Rbac(port, { direction: direction === 'inbound' ? 'ingress' : 'egress', mtlsPrincipals: mtls, exactPeers: mtls });
  warnings.push(...c.warnings);
  return {
    typeUrl: TypeUrl.ExtensionConfig,
    name,
    json: typedExtensionConfig(name, RBAC_TYPE_URL, c.rbac),
    origins: c.origins,
    policyOrigins: c.policyOrigins,
  };
}
