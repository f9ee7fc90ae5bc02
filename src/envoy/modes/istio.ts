import { enforcedL7 } from '../builders/l7';
import { ecdsRbac } from './ecds-rbac';
import type { GeneratedResource, ModeBuilder } from './mode';

/**
 * Istio: istiod stays the control plane and owns listeners, routes and clusters; meshaccel
 * serves only the ECDS RBAC resources that an EnvoyFilter-inserted filter references.
 */
export const ISTIO: ModeBuilder = {
  mode: 'istio',
  build(ports, _options, warnings): GeneratedResource[] {
    // Every known port gets its resource (allow-all without L7 rules), so removing a port's last
    // L7 rule lifts the L7 restriction instead of leaving Envoy on the deny-all default.
    const resources = ports.ingress.map((p) => ecdsRbac('inbound', p, true, warnings));
    if (ports.egress.some(enforcedL7)) warnings.push('istio mode compiles ingress HTTP rules only; egress HTTP rules are not enforced by Envoy');
    return resources;
  },
};
