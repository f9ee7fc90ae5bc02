import { TypeUrl } from '../../resource/type-urls';
import { l7ChainPorts, l7Enforcement } from '../builders/l7';
import { captureListener, listenerName, originalDstCluster, passthroughRouteConfig } from '../builders/listeners';
import { networkRbacFilters } from '../builders/network-rbac';
import type { Json } from '../builders/rbac';
import { ecdsRbac } from './ecds-rbac';
import { networkRbacResources } from './network';
import { originsOf, type GeneratedResource, type ModeBuilder } from './mode';

/**
 * Standalone Envoy: meshaccel serves everything. Per direction a capture listener with one
 * chain per enforced L7 port and a default chain for every other port, each starting with the
 * L3/L4 network RBAC (ECDS), the L7 ports' ECDS RBAC, the passthrough route and the
 * ORIGINAL_DST cluster.
 */
export const STANDALONE: ModeBuilder = {
  mode: 'standalone',
  build(ports, options, warnings): GeneratedResource[] {
    const resources: GeneratedResource[] = [];
    for (const [direction, dir] of [['inbound', 'ingress'], ['outbound', 'egress']] as const) {
      const list = ports[dir];
      const l7Ports = l7ChainPorts(list);
      for (const p of l7Ports) resources.push(ecdsRbac(direction, p, false, warnings));
      const other = list.filter((p) => !l7Ports.includes(p));
      resources.push(...networkRbacResources(direction, { chained: l7Ports, other, wildcard: ports.wildcard[dir], deny: ports.deny[dir] }, false, warnings));
      const chains = l7Ports.map((p) => {
        const chain = l7Enforcement(p).chain(direction, p.port);
        return { ...chain, filters: [...networkRbacFilters(direction, p.port), ...(chain.filters as Json[])] };
      });
      const listener = captureListener(direction, chains, options.redirect, networkRbacFilters(direction, 'default'));
      resources.push({ typeUrl: TypeUrl.Listener, name: listenerName(direction), json: listener, origins: originsOf(l7Ports) });
      const route = passthroughRouteConfig(direction);
      resources.push({ typeUrl: TypeUrl.RouteConfiguration, name: route.name as string, json: route, origins: [] });
      const cluster = originalDstCluster(direction, options.redirect);
      resources.push({ typeUrl: TypeUrl.Cluster, name: cluster.name as string, json: cluster, origins: [] });
    }
    return resources;
  },
};
