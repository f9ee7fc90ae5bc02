import { enforcedL7 } from '../builders/l7';
import { ecdsRbac } from './ecds-rbac';
import { policyRules, UnenforceableError, type ModeBuilder, type PortsByDirection } from './mode';

/**
 * Istio: istiod stays the control plane and owns listeners, routes and clusters; meshaccel
 * serves only the ECDS RBAC resources that an EnvoyFilter-inserted filter references.
 */
export const ISTIO: ModeBuilder = {
  mode: 'istio',
  build(ports, options, warnings) {
    // Every known port gets its resource (allow-all without L7 rules), so removing a port's last
    // L7 rule lifts the L7 restriction instead of leaving Envoy on the deny-all default.
    const egress = policyRules([...ports.egress, ports.wildcard.egress, ...ports.deny.egress]);
    if (egress.length > 0) throw new UnenforceableError('istio mode enforces no egress rules', egress);
    const deny = policyRules(ports.deny.ingress);
    if (deny.length > 0) throw new UnenforceableError('istio mode enforces no L3/L4 deny rules', deny);
    // L3/L4 rules that restrict peers: nothing in istio mode would check their peers.
    const l4 = policyRules([...ports.ingress.filter((p) => !enforcedL7(p, 'istio')), ports.wildcard.ingress]).filter((r) => !r.peers.any);
    if (l4.length > 0) throw new UnenforceableError('istio mode enforces HTTP rules only; these L3/L4 rules restrict peers that nothing would check', l4);
    // A port with HTTP rules that the deployed EnvoyFilter does not patch would go unenforced.
    const covered = options.servedPorts;
    if (covered) {
      const uncovered = ports.ingress.filter((p) => enforcedL7(p, 'istio') && !covered.includes(p.port));
      for (const p of uncovered)
        throw new UnenforceableError(
          `port ${p.port} has HTTP rules but the EnvoyFilter covers only port${covered.length === 1 ? '' : 's'} ${covered.join(', ')} (regenerate it: meshaccel envoy render --mode istio --envoyfilter)`,
          p.rules,
        );
    }
    return ports.ingress.map((p) => ecdsRbac('inbound', p, true, warnings));
  },
};

/** The ports the istio builder enforces HTTP rules on: what the generated EnvoyFilter must patch. */
export function istioHttpPorts(ports: PortsByDirection): number[] {
  return ports.ingress.filter((p) => enforcedL7(p, 'istio')).map((p) => p.port);
}
