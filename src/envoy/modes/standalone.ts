import { TypeUrl } from '../../resource/type-urls';
import { kafkaFilterWasmPath } from '../../kafka/wasm-path';
import { l7ChainPorts, l7Enforcement, l7Enforcements, type StandaloneL7Context } from '../builders/l7';
import { captureListener, listenerName, originalDstCluster, passthroughRouteConfig } from '../builders/listeners';
import { networkRbacFilters } from '../builders/network-rbac';
import type { Json } from '../builders/rbac';
import { networkRbacResources } from './network';
import { originsOf, type GeneratedResource, type ModeBuilder } from './mode';
import { builtOnce, contextId, sealedPortsKey } from './built-once';

/**
 * Standalone Envoy: meshaccel serves everything. Per direction a capture listener with one
 * chain per enforced L7 port (HTTP: HCM with ECDS RBAC; Kafka: the ECDS-fed proxy-wasm filter
 * before tcp_proxy) and a default chain for every other port, each starting with the L3/L4
 * network RBAC (ECDS), the L7 ports' ECDS resources, the passthrough route and the ORIGINAL_DST
 * cluster.
 */
let defaultCtx: StandaloneL7Context | undefined;

function defaultContext(): StandaloneL7Context {
  return (defaultCtx ??= { kafkaModule: { localPath: kafkaFilterWasmPath() } });
}

export const STANDALONE: ModeBuilder = {
  mode: 'standalone',
  build(ports, options, warnings): GeneratedResource[] {
    const resources: GeneratedResource[] = [];
    const ctx: StandaloneL7Context = options.kafkaModule ? { kafkaModule: options.kafkaModule } : defaultContext();
    // Everything the resources below read besides the ports and direction: part of their cache keys.
    const context = contextId(`${JSON.stringify(ctx)}\u0000${JSON.stringify(options.redirect)}`);
    for (const [direction, dir] of [
      ['inbound', 'ingress'],
      ['outbound', 'egress'],
    ] as const) {
      const list = ports[dir];
      const l7Ports = l7ChainPorts(list, 'standalone');
      for (const p of l7Ports) {
        const sealed = sealedPortsKey([p]);
        const key = sealed === undefined ? undefined : `l7${direction}${context}:${sealed}`;
        resources.push(builtOnce(key, warnings, (own) => l7Enforcement(p).resource(direction, p, ctx, own)));
      }
      // A Kafka port that loses its last Kafka rule loses its chain, but connections open on the
      // draining chain still name its ECDS resource, and the filter applies a port's newest
      // configuration to open connections: without a resource Envoy would apply the deny-all
      // default and cut them. So such a port keeps an allow-all resource (its restriction is
      // lifted) for as long as it has rules. The memory of which ports had Kafka rules is the
      // proxy's previous snapshot: a kept resource is in it, so it stays kept until the port
      // loses every rule or the proxy is forgotten (its listeners then start without the
      // chain). Ports that never had Kafka rules get nothing. Memory elsewhere (a per-proxy set
      // in the builder) would be a second copy of what the snapshot already says, and would
      // outlive the snapshot it describes.
      const previous = options.previousExtensionConfigs;
      for (const e of l7Enforcements('standalone')) {
        const kept = e.kept;
        if (!kept || !previous) continue;
        for (const p of list) {
          if (l7Ports.some((c) => c.port === p.port && l7Enforcement(c) === e)) continue;
          if (previous.has(kept.name(direction, p.port))) resources.push(kept.resource(direction, p.port, ctx));
        }
      }
      const other = list.filter((p) => !l7Ports.includes(p));
      resources.push(...networkRbacResources(direction, { chained: l7Ports, other, wildcard: ports.wildcard[dir], deny: ports.deny[dir] }, false, warnings));
      // The listener reads only which ports have which chain; its origins (for error messages) are the ports' policies.
      const chainKey = l7Ports.map((p) => `${p.port}:${p.l7}`).join(',');
      const listener = builtOnce(`listener${direction}${context}:${chainKey}`, warnings, () => {
        const chains = l7Ports.map((p) => {
          const chain = l7Enforcement(p).chain(direction, p.port, ctx);
          return { ...chain, filters: [...networkRbacFilters(direction, p.port), ...(chain.filters as Json[])] };
        });
        const json = captureListener(direction, chains, options.redirect, networkRbacFilters(direction, 'default'));
        return { typeUrl: TypeUrl.Listener, name: listenerName(direction), json, origins: [] };
      });
      resources.push({ ...listener, origins: originsOf(l7Ports) });
      resources.push(
        builtOnce(`route${direction}`, warnings, () => {
          const route = passthroughRouteConfig(direction);
          return { typeUrl: TypeUrl.RouteConfiguration, name: route.name as string, json: route, origins: [] };
        }),
      );
      resources.push(
        builtOnce(`cluster${direction}${context}`, warnings, () => {
          const cluster = originalDstCluster(direction, options.redirect);
          return { typeUrl: TypeUrl.Cluster, name: cluster.name as string, json: cluster, origins: [] };
        }),
      );
    }
    return resources;
  },
};
