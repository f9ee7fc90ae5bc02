import type { CompiledPortPolicy } from '../../policy/compiled';
import { TypeUrl } from '../../resource/type-urls';
import { grpcServerListener } from '../builders/grpc-server';
import { enforcedL7, l7Rbac } from '../builders/l7';
import { compileNetworkRbac } from '../builders/network-rbac';
import { compileRbac, type Json } from '../builders/rbac';
import { policyRules, UnenforceableError, type GeneratedResource, type ModeBuilder } from './mode';

/**
 * Proxyless gRPC: one server Listener per ingress port with the RBAC inline (gRPC has no ECDS
 * and no network filters). L3/L4 rules become source-address/principal conditions of the same
 * RBAC: on a port without L7 rules each rule allows any RPC from its peers; deny rules go into
 * a DENY RBAC filter first.
 */
export const GRPC: ModeBuilder = {
  mode: 'grpc',
  build(ports, options, warnings): GeneratedResource[] {
    const egress = policyRules([...ports.egress, ports.wildcard.egress, ...ports.deny.egress]);
    if (egress.length > 0) throw new UnenforceableError('grpc mode enforces no egress rules (a proxyless client runs no RBAC)', egress);
    const host = options.grpcServerHost ?? '0.0.0.0';
    return ports.ingress.map((p): GeneratedResource => {
      const filters: { name?: string; config: Json }[] = [];
      const policyOrigins: GeneratedResource['policyOrigins'] = {};
      const deny = ports.deny.ingress.filter((d) => d.port === 0 || d.port === p.port).map((d): CompiledPortPolicy => ({ ...d, port: p.port }));
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
      const withWildcard: CompiledPortPolicy =
        enforcedL7(p, 'grpc') || !ports.wildcard.ingress ? p : { ...p, rules: [...p.rules, ...ports.wildcard.ingress.rules] };
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
