import type { CompiledPortPolicy } from '../../policy/compiled';
import { TypeUrl } from '../../resource/type-urls';
import { grpcJsRule, refuseForGrpcJs } from '../builders/grpc-js-peers';
import { grpcServerListener } from '../builders/grpc-server';
import { enforcedL7, l7Rbac } from '../builders/l7';
import { compileNetworkRbac } from '../builders/network-rbac';
import { compileRbac, type Json } from '../builders/rbac';
import { policyRules, UnenforceableError, type GeneratedResource, type ModeBuilder } from './mode';

/**
 * Proxyless gRPC: one server Listener per ingress port with the RBAC inline (gRPC has no ECDS
 * and no network filters). L3/L4 rules become source-address/principal conditions of the same
 * RBAC: on a port without L7 rules each rule allows any RPC from its peers; deny rules go into
 * a DENY RBAC filter first. An XdsServer of @grpc/grpc-js-xds (`grpcServerImplementation`, from
 * the node's user agent) is served no IPv6 range and no deny rule it would not apply
 * (builders/grpc-js-peers.ts).
 */
export const GRPC: ModeBuilder = {
  mode: 'grpc',
  build(ports, options, warnings): GeneratedResource[] {
    const egress = policyRules([...ports.egress, ports.wildcard.egress, ...ports.deny.egress]);
    if (egress.length > 0) throw new UnenforceableError('grpc mode enforces no egress rules (a proxyless client runs no RBAC)', egress);
    const host = options.grpcServerHost ?? '0.0.0.0';
    const grpcJs = (options.grpcServerImplementation ?? 'grpc-js') === 'grpc-js';
    const served = (port: CompiledPortPolicy): CompiledPortPolicy => (grpcJs ? { ...port, rules: port.rules.map(grpcJsRule) } : port);
    return ports.ingress.map((written): GeneratedResource => {
      const filters: { name?: string; config: Json }[] = [];
      const policyOrigins: GeneratedResource['policyOrigins'] = {};
      const deny = ports.deny.ingress.filter((d) => d.port === 0 || d.port === written.port).map((d): CompiledPortPolicy => ({ ...d, port: written.port }));
      const wildcard = enforcedL7(written, 'grpc') ? [] : (ports.wildcard.ingress?.rules ?? []);
      const denies = deny.flatMap((d) => d.rules);
      if (grpcJs) refuseForGrpcJs([...written.rules, ...wildcard], denies);
      const p = served(written);
      if (deny.length > 0) {
        const c = compileNetworkRbac(deny, {
          direction: 'ingress',
          mtlsPrincipals: true,
          action: 'DENY',
          portConditions: false,
          statPrefix: `grpc_${p.port}_deny`,
        });
        warnings.push(...c.warnings);
        filters.push({ name: 'meshaccel.deny', config: { rules: (c.rbac as { rules: Json }).rules } });
        Object.assign(policyOrigins, c.policyOrigins);
      }
      // A port without L7 rules: its own rules and the all-ports ones, each allowing any RPC.
      const withWildcard: CompiledPortPolicy = wildcard.length === 0 ? p : served({ ...written, rules: [...written.rules, ...wildcard] });
      const c = enforcedL7(p, 'grpc')
        ? l7Rbac(p, { direction: 'ingress', mtlsPrincipals: true })
        : compileRbac(withWildcard, { direction: 'ingress', mtlsPrincipals: true }, () => ({ any: true }));
      warnings.push(...c.warnings);
      filters.push({ config: c.rbac });
      Object.assign(policyOrigins, c.policyOrigins);
      const json = grpcServerListener(host, p.port, filters);
      return { typeUrl: TypeUrl.Listener, name: json.name as string, json, origins: c.origins, policyOrigins };
    });
  },
};
