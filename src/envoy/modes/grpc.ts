import type { PolicyOrigin } from '../../policy/compiled';
import { TypeUrl } from '../type-urls';
import { grpcServerListener } from '../builders/grpc-server';
import { enforcedL7, l7Enforcement } from '../builders/l7';
import type { Json } from '../builders/rbac';
import type { GeneratedResource, ModeBuilder } from './mode';

/** Proxyless gRPC: one server Listener per ingress port with the RBAC inline (gRPC has no ECDS). */
export const GRPC: ModeBuilder = {
  mode: 'grpc',
  build(ports, options, warnings): GeneratedResource[] {
    const host = options.grpcServerHost ?? '0.0.0.0';
    return ports.ingress.map((p): GeneratedResource => {
      let rbac: Json | undefined;
      let origins: PolicyOrigin[] = [];
      if (enforcedL7(p)) {
        const c = l7Enforcement(p).rbac(p, { direction: 'ingress', mtlsPrincipals: true });
        warnings.push(...c.warnings);
        rbac = c.rbac;
        origins = c.origins;
      }
      const json = grpcServerListener(host, p.port, rbac);
      return { typeUrl: TypeUrl.Listener, name: json.name as string, json, origins };
    });
  },
};
