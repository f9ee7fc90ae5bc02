import type { CompiledPortPolicy } from '../../policy/compiled';
import { TypeUrl } from '../../resource/type-urls';
import { allowAllKafkaConfig, istioKafkaFilterConfig, kafkaEcdsResource, type WasmModuleSource } from '../../kafka/delivery';
import { kafkaFilterConfigs } from '../../kafka/filter-config';
import { kafkaFilterWasmPath } from '../../kafka/wasm-path';
import { enforcedL7, l7Builder } from '../builders/l7';
import { ecdsRbac } from './ecds-rbac';
import { allChainsRbacResource, networkRbacResources } from './network';
import { policyRules, UnenforceableError, type GeneratedResource, type ModeBuilder, type PortsByDirection, type ProxyBuildOptions } from './mode';

/**
 * Istio: istiod stays the control plane and owns listeners, routes and clusters; meshaccel
 * serves only ECDS resources, which the generated EnvoyFilter (builders/istio-envoyfilter.ts)
 * inserts on the sidecar's inbound chains:
 * - on every inbound chain: the deny rules and `meshaccel.l4.inbound.all` (every port's allows,
 *   each with its destination port, and the all-ports rules), so a selected workload is
 *   default-deny on every port, declared by a Service or not;
 * - on Istio's passthrough chains (ports no Service declares) and on an L7 port's chains of the
 *   other protocol: `meshaccel.l4.inbound.default` (the ports without L7 rules only), so L7
 *   rules can never be bypassed through a chain that does not run their filter;
 * - per HTTP port the HTTP RBAC before the router, per Kafka port the Kafka filter before tcp_proxy.
 */
export const ISTIO: ModeBuilder = {
  mode: 'istio',
  build(ports, options, warnings) {
    const egress = policyRules([...ports.egress, ports.wildcard.egress, ...ports.deny.egress]);
    if (egress.length > 0) throw new UnenforceableError('istio mode enforces no egress rules (its EnvoyFilter patches inbound chains only)', egress);
    refuseUncovered(ports, options.servedPorts);
    const module: WasmModuleSource = options.kafkaModule ?? { localPath: kafkaFilterWasmPath() };
    const l7 = ports.ingress.filter((p) => enforcedL7(p, 'istio'));
    const resources: GeneratedResource[] = [
      ...networkRbacResources(
        'inbound',
        { chained: [], other: ports.ingress.filter((p) => !l7.includes(p)), wildcard: ports.wildcard.ingress, deny: ports.deny.ingress },
        true,
        warnings,
      ),
      allChainsRbacResource('inbound', ports.ingress, ports.wildcard.ingress, true, warnings),
    ];
    // A port without L7 rules gets both protocols' allow-all resources: an EnvoyFilter that still
    // patches it (the port lost its L7 rules) then lifts the L7 restriction instead of leaving
    // Envoy on the deny-all default. A port with rules of one protocol gets nothing of the other,
    // so a stale patch of the other protocol fails closed.
    for (const p of ports.ingress) {
      if (p.l7 === undefined || p.l7 === 'http') resources.push(ecdsRbac('inbound', p, true, warnings));
      if (p.l7 === undefined) resources.push(kafkaResource(kafkaEcdsResource(allowAllKafkaConfig('ingress', p.port), module), p));
      if (p.l7 === 'kafka') resources.push(kafkaResource(kafkaPortResource(p, module), p));
    }
    return resources;
  },
};

function kafkaPortResource(p: CompiledPortPolicy, module: WasmModuleSource): { name: string; resource: Record<string, unknown> } {
  const [cfg] = kafkaFilterConfigs({ nodeId: '', workloads: [], ingress: [p], egress: [] });
  return kafkaEcdsResource(istioKafkaFilterConfig(cfg), module);
}

function kafkaResource(r: { name: string; resource: Record<string, unknown> }, p: CompiledPortPolicy): GeneratedResource {
  const origins = [...new Map(p.rules.map((x) => [x.origin.policy, x.origin])).values()];
  // The filter names the deciding rule by its index in the port's rules, as in standalone mode.
  const policyOrigins = Object.fromEntries(p.rules.map((x, i) => [String(i), x.origin]));
  return { typeUrl: TypeUrl.ExtensionConfig, name: r.name, json: r.resource, origins, policyOrigins };
}

/**
 * With `servedPorts` (the ports the deployed EnvoyFilter patches), L7 rules on another port are
 * refused: no filter of theirs would be on that port's chains. L3/L4 rules need no per-port
 * patch (every inbound chain carries the network RBAC).
 */
function refuseUncovered(ports: PortsByDirection, covered: ProxyBuildOptions['servedPorts']): void {
  if (!covered || covered.length === 0) return;
  for (const p of ports.ingress) {
    if (!enforcedL7(p, 'istio') || covered.includes(p.port) || p.l7 === undefined) continue;
    throw new UnenforceableError(
      `port ${p.port} has ${l7Builder(p.l7).name} rules but the EnvoyFilter covers only port${covered.length === 1 ? '' : 's'} ${covered.join(', ')} (regenerate it: meshaccel envoy render --mode istio --envoyfilter)`,
      p.rules,
    );
  }
}

/** The ports the generated EnvoyFilter patches per port, by the protocol whose filter it inserts there. */
export interface IstioL7Ports {
  http: number[];
  kafka: number[];
}

export function istioL7Ports(ports: PortsByDirection): IstioL7Ports {
  const of = (kind: 'http' | 'kafka'): number[] => ports.ingress.filter((p) => p.l7 === kind && enforcedL7(p, 'istio')).map((p) => p.port);
  return { http: of('http'), kafka: of('kafka') };
}
