import type { CompiledPortPolicy } from '../../policy/compiled';
import { TypeUrl } from '../../resource/type-urls';
import { type Direction, typedExtensionConfig } from '../builders/ecds';
import { NETWORK_RBAC_TYPE_URL, compileNetworkRbac, networkDenyName, networkRbacName } from '../builders/network-rbac';
import type { GeneratedResource } from './mode';
import { builtOnce, sealedPortsKey } from './built-once';

/** The resource `name` of these port entries' rules, built once per distinct set of sealed entries. */
function resource(name: string, entries: readonly CompiledPortPolicy[], opts: ReturnType<typeof options>, warnings: string[]): GeneratedResource {
  const ports = sealedPortsKey(entries);
  const key = ports === undefined ? undefined : `n${opts.mtlsPrincipals ? 'm' : ''}${name}:${ports}`;
  return builtOnce(key, warnings, (own) => {
    const c = compileNetworkRbac(entries, opts);
    own.push(...c.warnings);
    return {
      typeUrl: TypeUrl.ExtensionConfig,
      name,
      json: typedExtensionConfig(name, NETWORK_RBAC_TYPE_URL, c.rbac),
      origins: c.origins,
      policyOrigins: c.policyOrigins,
    };
  });
}

const options = (direction: Direction, mtls: boolean, action: 'ALLOW' | 'DENY', portConditions: boolean, scope: string) => ({
  direction: direction === 'inbound' ? ('ingress' as const) : ('egress' as const),
  // With mTLS (istio) a selected workload is its principal AND its address, as in the HTTP RBAC.
  mtlsPrincipals: mtls,
  exactPeers: mtls,
  action,
  portConditions,
  statPrefix: `${direction}_${scope}`,
});

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
  const out: GeneratedResource[] = [];
  for (const p of ports.chained) {
    out.push(resource(networkRbacName(direction, p.port), [p], options(direction, mtls, 'ALLOW', false, String(p.port)), warnings));
  }
  const other = ports.wildcard ? [...ports.other, ports.wildcard] : [...ports.other];
  out.push(resource(networkRbacName(direction, 'default'), other, options(direction, mtls, 'ALLOW', true, 'default'), warnings));
  out.push(resource(networkDenyName(direction), ports.deny, options(direction, mtls, 'DENY', true, 'deny'), warnings));
  return out;
}

/**
 * Istio's `meshaccel.l4.<direction>.all`: the allows of every port (each with its destination
 * port) and the all-ports rules, for the chains whose ports meshaccel cannot know in advance.
 */
export function allChainsRbacResource(
  direction: Direction,
  ports: readonly CompiledPortPolicy[],
  wildcard: CompiledPortPolicy | undefined,
  mtls: boolean,
  warnings: string[],
): GeneratedResource {
  const all = wildcard ? [...ports, wildcard] : [...ports];
  return resource(networkRbacName(direction, 'all'), all, options(direction, mtls, 'ALLOW', true, 'all'), warnings);
}
