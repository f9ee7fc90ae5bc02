import type { CompiledPortPolicy, PolicyOrigin } from '../../policy/compiled';
import type { RedirectConfig } from '../../net/capture-config';
import type { Json } from '../builders/rbac';
import type { WasmModuleSource } from '../../kafka/delivery';
import type { GrpcImplementation } from '../builders/grpc-js-peers';

export type EnvoyMode = 'standalone' | 'istio' | 'grpc';

export interface ProxyBuildOptions {
  mode: EnvoyMode;
  redirect: RedirectConfig;
  /** grpc mode: host part of the address the XdsServer binds (its listener name carries it). */
  grpcServerHost?: string;
  /**
   * grpc mode: what serves the Listeners (`grpcImplementationOf` the node's user agent). An
   * XdsServer of @grpc/grpc-js-xds (the default: the restrictions only refuse or deny more) is
   * served no IPv6 range and no deny rule that names its peers (builders/grpc-js-peers.ts).
   */
  grpcServerImplementation?: GrpcImplementation;
  /**
   * Ingress ports that must always have a resource, even with no policy on them: in Istio mode
   * the ports the EnvoyFilter references (a missing ECDS resource would leave Envoy on the
   * deny-all default), in gRPC mode the ports XdsServers bind (no Listener, no serving).
   * Such a port without HTTP rules gets an allow-all HTTP RBAC (Istio: istio mode refuses L3/L4
   * rules) or the RBAC of its L3/L4 rules (gRPC: deny-all when no rule names it on a selected
   * workload). In Istio mode, HTTP rules on a port outside this list are refused.
   */
  servedPorts?: readonly number[];
  /** standalone: where Envoy loads the Kafka filter module from (default: the built .wasm, `kafkaFilterWasmPath()`). */
  kafkaModule?: WasmModuleSource;
  /**
   * standalone: names of the ECDS resources this proxy was served in its previous snapshot (the
   * memory behind the Kafka filter's kept resources, see `STANDALONE`). Absent: a first build.
   */
  previousExtensionConfigs?: ReadonlySet<string>;
}

export interface GeneratedResource {
  typeUrl: string;
  name: string;
  /** Envoy JSON without "@type" (the type URL carries it). */
  json: Json;
  /** Policies that produced this resource; named in any check failure. */
  origins: PolicyOrigin[];
  /** For RBAC resources: the rule behind each RBAC policy name (what `policy trace` reports). */
  policyOrigins?: Record<string, PolicyOrigin>;
}

/** One direction's ports of a proxy, merged per port number (TCP and ANY entries together), sorted. */
export interface PortsByDirection {
  ingress: CompiledPortPolicy[];
  egress: CompiledPortPolicy[];
  /** The all-ports entries (port 0), which the lists above leave out. */
  wildcard: { ingress?: CompiledPortPolicy; egress?: CompiledPortPolicy };
  /** L3/L4 deny rules by port (0: every port). */
  deny: { ingress: CompiledPortPolicy[]; egress: CompiledPortPolicy[] };
}

/** One Envoy mode: what resources a proxy's ports become there. */
export interface ModeBuilder {
  mode: EnvoyMode;
  build(ports: PortsByDirection, options: ProxyBuildOptions, warnings: string[]): GeneratedResource[];
}

/** The policies behind a set of ports, once each, in first-seen order. */
export function originsOf(ports: readonly CompiledPortPolicy[]): PolicyOrigin[] {
  const seen = new Map<string, PolicyOrigin>();
  for (const p of ports) for (const r of p.rules) if (!seen.has(r.origin.policy)) seen.set(r.origin.policy, r.origin);
  return [...seen.values()];
}

export { UnenforceableError } from '../builders/unenforceable';

/** Rules other than the default allow of an unselected workload. */
export function policyRules(ports: readonly (CompiledPortPolicy | undefined)[]): { origin: PolicyOrigin; peers: { any: boolean } }[] {
  return ports.flatMap((p) => p?.rules ?? []).filter((r) => r.origin.rule !== undefined);
}
