import type { CompiledPortPolicy } from '../../policy/compiled';
import { TypeUrl } from '../../resource/type-urls';
import { type Direction, typedExtensionConfig } from '../builders/ecds';
import { NETWORK_RBAC_TYPE_URL, compileNetworkRbac, networkDenyName, networkRbacName } from '../builders/network-rbac';
import type { GeneratedResource } from './mode';

function resource(name: string, c: ReturnType<typeof compileNetworkRbac>, warnings: string[]): GeneratedResource {
  warnings.push(...c.warnings);
  return {
    typeUrl: TypeUrl.ExtensionConfig,
    name,
    json: typedExtensionConfig(name, NETWORK_RBAC_TYPE_URL, c.rbac),
    origins: c.origins,
    policyOrigins: c.policyOrigins,
  };
}

/**
 * One direction's L3/L4 ECDS resources: the allows of each L7 port's chain (its rules already
 * include the all-ports ones), the allows of the default chain (every other port, each with its
 * destination port, plus the all-ports rules), and the deny rules.
 */
export function networkRbacResources(
  direction: Direction,
  ports: { chained: readonly CompiledPortPolicy[]; other: readonly CompiledPortPolicy[]; wildcard?: CompiledPortPolicy; deny: readonly CompiledPortPolicy[] },
  mtls: boolean,
  warnings: string[],
): GeneratedResource[] {
  const dir = direction === 'inbound' ? 'ingress' : 'egress';
  const out: GeneratedResource[] = [];
  for (const p of ports.chained) {
    const name = networkRbacName(direction, p.port);
    out.push(
      resource(
        name,
        compileNetworkRbac([p], { direction: dir, mtlsPrincipals: mtls, action: 'ALLOW', portConditions: false, statPrefix: `${direction}_${p.port}` }),
        warnings,
      ),
    );
  }
  const other = ports.wildcard ? [...ports.other, ports.wildcard] : [...ports.other];
  out.push(
    resource(
      networkRbacName(direction, 'default'),
      compileNetworkRbac(other, { direction: dir, mtlsPrincipals: mtls, action: 'ALLOW', portConditions: true, statPrefix: `${direction}_default` }),
      warnings,
    ),
  );
  out.push(
    resource(
      networkDenyName(direction),
      compileNetworkRbac(ports.deny, { direction: dir, mtlsPrincipals: mtls, action: 'DENY', portConditions: true, statPrefix: `${direction}_deny` }),
      warnings,
    ),
  );
  return out;
}
