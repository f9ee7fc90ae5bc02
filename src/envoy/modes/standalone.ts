import { TypeUrl } from '../type-urls';
import { l7ChainPorts, l7Enforcement } from '../builders/l7';
import { captureListener, listenerName, originalDstCluster, passthroughRouteConfig } from '../builders/listeners';
import { ecdsRbac } from './ecds-rbac';
import { originsOf, type GeneratedResource, type ModeBuilder } from './mode';

/**
 * Standalone Envoy: meshaccel serves everything. Per direction a capture listener with one
 * chain per enforced L7 port, that port's ECDS RBAC, the passthrough route and the
 * ORIGINAL_DST cluster.
 */
export const STANDALONE: ModeBuilder = {
  mode: 'standalone',
  build(ports, options, warnings): GeneratedResource[] {
    const resources: GeneratedResource[] = [];
    for (const [direction, list] of [['inbound', ports.ingress], ['outbound', ports.egress]] as const) {
      const l7Ports = l7ChainPorts(list);
      for (const p of l7Ports) resources.push(ecdsRbac(direction, p, false, warnings));
      const chains = l7Ports.map((p) => l7Enforcement(p).chain(direction, p.port));
      resources.push({ typeUrl: TypeUrl.Listener, name: listenerName(direction), json: captureListener(direction, chains, options.redirect), origins: originsOf(l7Ports) });
      const route = passthroughRouteConfig(direction);
      resources.push({ typeUrl: TypeUrl.RouteConfiguration, name: route.name as string, json: route, origins: [] });
      const cluster = originalDstCluster(direction, options.redirect);
      resources.push({ typeUrl: TypeUrl.Cluster, name: cluster.name as string, json: cluster, origins: [] });
    }
    return resources;
  },
};
