import type { CompiledPortPolicy, CompiledProxyPolicy, PolicyOrigin } from '../policy/compiled';
import type { RedirectConfig } from '../net/capture-config';
import type { EncodedResource } from '../resource/encoded';
import { encodeEnvoyResource } from './encode';
import { TypeUrl } from '../resource/type-urls';
import { Direction, rbacEcdsName, typedExtensionConfig } from './builders/ecds';
import { captureListener, httpPorts, listenerName, originalDstCluster, passthroughRouteConfig } from './builders/listeners';
import { grpcServerListener } from './builders/grpc-server';
import { Json, RBAC_TYPE_URL, allowAllRbac, compileHttpRules } from './builders/rbac';

/**
 * The one entry from a proxy's compiled policy to the xDS resources serving it:
 * - standalone: capture listeners, routes, ORIGINAL_DST clusters, and one ECDS RBAC per HTTP port;
 * - istio: only the ECDS RBAC resources, which an EnvoyFilter-inserted filter references
 *   (istiod stays the main control plane and owns listeners/routes/clusters);
 * - grpc: one server Listener per ingress port with the RBAC inline (no ECDS in gRPC).
 */

export type EnvoyMode = 'standalone' | 'istio' | 'grpc';

export interface ProxyBuildOptions {
  mode: EnvoyMode;
  redirect: RedirectConfig;
  /** grpc mode: host part of the address the XdsServer binds (its listener name carries it). */
  grpcServerHost?: string;
  /**
   * Ingress ports that must always have a resource, even with no policy on them: in Istio mode
   * the ports the EnvoyFilter references (a missing ECDS resource would leave Envoy on the
   * deny-all default), in gRPC mode the ports XdsServers bind (no Listener, no serving).
   * Such a port without HTTP rules gets an allow-all RBAC (Istio) or no RBAC filter (gRPC):
   * L3/L4 verdicts are the datapath's, not Envoy's.
   */
  servedPorts?: readonly number[];
}

export interface GeneratedResource {
  typeUrl: string;
  name: string;
  /** Envoy JSON without "@type" (the type URL carries it). */
  json: Json;
  /** Policies that produced this resource; named in any check failure. */
  origins: PolicyOrigin[];
}

export interface ProxyBuild {
  resources: GeneratedResource[];
  warnings: string[];
}

/** Merges entries for the same port (TCP and ANY, say): rules are OR-ed anyway. */
function mergeByPort(ports: readonly CompiledPortPolicy[], warnings: string[]): CompiledPortPolicy[] {
  const byPort = new Map<number, CompiledPortPolicy>();
  for (const p of ports) {
    if (p.protocol === 'UDP') continue;
    if (p.port === 0) {
      if (p.l7 !== 'none') warnings.push(`L7 rules on port 0 (any port) from ${p.rules.map((r) => r.origin.policy).join(', ')} are not compiled to Envoy`);
      continue;
    }
    const prev = byPort.get(p.port);
    if (prev && prev.l7 !== 'none' && p.l7 !== 'none' && prev.l7 !== p.l7) {
      // TCP and ANY entries of one port meet here. The engine's PortTable already reports such a
      // clash as a conflict; this guards compiled policies that did not come through it, since
      // choosing either protocol would drop the other's rules (fail open).
      const policies = [...new Set([...prev.rules, ...p.rules].map((r) => r.origin.policy))].join(', ');
      throw new Error(`port ${p.port} has both ${prev.l7} and ${p.l7} rules (from ${policies}); one port carries one L7 protocol`);
    }
    if (p.l7 === 'kafka') {
      warnings.push(`Kafka rules on port ${p.port} (from ${[...new Set(p.rules.map((r) => r.origin.policy))].join(', ')}) are not enforced by Envoy yet: requests on that port are not restricted at L7`);
    }
    if (!prev) byPort.set(p.port, { ...p, rules: [...p.rules] });
    else byPort.set(p.port, { ...prev, l7: prev.l7 === 'none' ? p.l7 : prev.l7, rules: [...prev.rules, ...p.rules] });
  }
  return [...byPort.values()].sort((a, b) => a.port - b.port);
}

/** Adds an empty (no L7) entry for each served port the compiled policy does not mention. */
function withServedPorts(ports: CompiledPortPolicy[], served: readonly number[] | undefined): CompiledPortPolicy[] {
  if (!served || served.length === 0) return ports;
  const have = new Set(ports.map((p) => p.port));
  const extra = [...new Set(served)].filter((p) => !have.has(p)).map((port): CompiledPortPolicy => ({ port, protocol: 'TCP', l7: 'none', rules: [] }));
  return [...ports, ...extra].sort((a, b) => a.port - b.port);
}

function ecdsRbac(direction: Direction, port: CompiledPortPolicy, mtls: boolean, warnings: string[]): GeneratedResource {
  if (port.l7 !== 'http') {
    const name = rbacEcdsName(direction, port.port);
    return { typeUrl: TypeUrl.ExtensionConfig, name, json: typedExtensionConfig(name, RBAC_TYPE_URL, allowAllRbac()), origins: [] };
  }
  const c = compileHttpRules(port, { direction: direction === 'inbound' ? 'ingress' : 'egress', mtlsPrincipals: mtls });
  warnings.push(...c.warnings);
  const name = rbacEcdsName(direction, port.port);
  return { typeUrl: TypeUrl.ExtensionConfig, name, json: typedExtensionConfig(name, RBAC_TYPE_URL, c.rbac), origins: c.origins };
}

export function buildProxyResourceJson(compiled: CompiledProxyPolicy, options: ProxyBuildOptions): ProxyBuild {
  const warnings: string[] = [];
  const resources: GeneratedResource[] = [];
  const ingress = withServedPorts(mergeByPort(compiled.ingress, warnings), options.servedPorts);
  const egress = mergeByPort(compiled.egress, warnings);
  const allOrigins = (ports: CompiledPortPolicy[]): PolicyOrigin[] => {
    const seen = new Map<string, PolicyOrigin>();
    for (const p of ports) for (const r of p.rules) if (!seen.has(r.origin.policy)) seen.set(r.origin.policy, r.origin);
    return [...seen.values()];
  };
  const isHttp = (p: CompiledPortPolicy): boolean => p.l7 === 'http';
  switch (options.mode) {
    case 'standalone': {
      for (const [direction, ports] of [['inbound', ingress], ['outbound', egress]] as const) {
        for (const p of ports.filter(isHttp)) resources.push(ecdsRbac(direction, p, false, warnings));
        const origins = allOrigins(ports.filter((p) => httpPorts([p]).length > 0));
        resources.push({ typeUrl: TypeUrl.Listener, name: listenerName(direction), json: captureListener(direction, ports, options.redirect), origins });
        const route = passthroughRouteConfig(direction);
        resources.push({ typeUrl: TypeUrl.RouteConfiguration, name: route.name as string, json: route, origins: [] });
        const cluster = originalDstCluster(direction, options.redirect);
        resources.push({ typeUrl: TypeUrl.Cluster, name: cluster.name as string, json: cluster, origins: [] });
      }
      break;
    }
    case 'istio': {
      // Every known port gets its resource (allow-all without HTTP rules), so removing a port's
      // last L7 rule lifts the L7 restriction instead of leaving Envoy on the deny-all default.
      for (const p of ingress) resources.push(ecdsRbac('inbound', p, true, warnings));
      if (egress.some(isHttp)) warnings.push('istio mode compiles ingress HTTP rules only; egress HTTP rules are not enforced by Envoy');
      break;
    }
    case 'grpc': {
      const host = options.grpcServerHost ?? '0.0.0.0';
      for (const p of ingress) {
        let rbac: Json | undefined;
        let origins: PolicyOrigin[] = [];
        if (isHttp(p)) {
          const c = compileHttpRules(p, { direction: 'ingress', mtlsPrincipals: true });
          warnings.push(...c.warnings);
          rbac = c.rbac;
          origins = c.origins;
        }
        const json = grpcServerListener(host, p.port, rbac);
        resources.push({ typeUrl: TypeUrl.Listener, name: json.name as string, json, origins });
      }
      break;
    }
  }
  return { resources, warnings };
}

/** Checks and encodes; throws SchemaError naming the policies behind the first bad resource. */
export function encodeGenerated(resources: readonly GeneratedResource[]): EncodedResource[] {
  return resources.map((r) => encodeEnvoyResource(r.typeUrl, r.name, r.json, { origins: r.origins }));
}

export function buildProxyResources(compiled: CompiledProxyPolicy, options: ProxyBuildOptions): EncodedResource[] {
  return encodeGenerated(buildProxyResourceJson(compiled, options).resources);
}
