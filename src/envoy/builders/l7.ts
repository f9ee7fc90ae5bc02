import type { CompiledPortPolicy, CompiledProxyPolicy, L7Kind, PolicyOrigin } from '../../policy/compiled';
import type { EnforcementMode } from '../../policy/enforceability';
import { TypeUrl } from '../../resource/type-urls';
import { allowAllKafkaConfig, kafkaEcdsName, kafkaEcdsResource, kafkaNetworkFilter, type WasmModuleSource } from '../../kafka/delivery';
import { kafkaFilterConfigs } from '../../kafka/filter-config';
import { type Direction, rbacEcdsName, typedExtensionConfig, withType } from './ecds';
import { httpChain } from './http';
import { passthroughClusterName, TCP_PROXY_TYPE_URL } from './listeners';
import { compileRbac, httpPermission, RBAC_TYPE_URL, type Json, type RbacCompilation, type RbacOptions } from './rbac';

/**
 * One L7 protocol on the Envoy side. `enforcement` is absent for a protocol that policy accepts
 * and compiles but no Envoy filter enforces yet; `enforcement.modes` lists the Envoy modes whose
 * builders enforce it (the others refuse it). The policy-side counterpart is `policy/l7`.
 */
export interface L7Builder {
  kind: L7Kind;
  name: string;
  enforcement?: L7Enforcement;
}

/** What the standalone builders need beyond the port: where Envoy loads Wasm modules from. */
export interface StandaloneL7Context {
  kafkaModule: WasmModuleSource;
}

/** An ECDS resource of one port, in the shape of the mode builders' GeneratedResource. */
export interface L7Resource {
  typeUrl: string;
  name: string;
  json: Json;
  origins: PolicyOrigin[];
  policyOrigins?: Record<string, PolicyOrigin>;
}

export interface L7Enforcement {
  modes: readonly EnforcementMode[];
  /** The RBAC for one port's rules of this kind (protocols enforced by Envoy's RBAC filters: istio and grpc modes use it too). */
  rbac?(port: CompiledPortPolicy, options: RbacOptions): RbacCompilation;
  /** Standalone: the ECDS resource the port's chain names, from the port's rules. */
  resource(direction: Direction, port: CompiledPortPolicy, ctx: StandaloneL7Context, warnings: string[]): L7Resource;
  /**
   * Standalone: the resource a port that lost its last rule of this kind gets while it still has
   * rules, so that a chain that still names it (draining) does not fall to its deny-all default.
   * `name` is the resource's name (what the previous snapshot is searched for). Absent: nothing
   * is kept.
   */
  kept?: { name(direction: Direction, port: number): string; resource(direction: Direction, port: number, ctx: StandaloneL7Context): L7Resource };
  /** The capture listener's filter chain for one port of this kind (standalone mode). */
  chain(direction: Direction, port: number, ctx: StandaloneL7Context): Json;
}

function dirOf(direction: Direction): 'ingress' | 'egress' {
  return direction === 'inbound' ? 'ingress' : 'egress';
}

const HTTP_ENFORCEMENT: L7Enforcement = {
  modes: ['standalone', 'istio', 'grpc'],
  rbac: (port, options) => compileRbac(port, options, httpPermission),
  resource(direction, port, _ctx, warnings) {
    const name = rbacEcdsName(direction, port.port);
    const c = compileRbac(port, { direction: dirOf(direction), mtlsPrincipals: false, exactPeers: false }, httpPermission);
    warnings.push(...c.warnings);
    return {
      typeUrl: TypeUrl.ExtensionConfig,
      name,
      json: typedExtensionConfig(name, RBAC_TYPE_URL, c.rbac),
      origins: c.origins,
      policyOrigins: c.policyOrigins,
    };
  },
  chain: (direction, port) => httpChain(direction, port),
};

function kafkaResource(r: { name: string; resource: Json }, origins: PolicyOrigin[]): L7Resource {
  return { typeUrl: TypeUrl.ExtensionConfig, name: r.name, json: r.resource, origins };
}

const KAFKA_ENFORCEMENT: L7Enforcement = {
  // istio: the generated EnvoyFilter inserts the filter (modes/istio.ts serves its resources); grpc has no network filters.
  modes: ['standalone', 'istio'],
  resource(direction, port, ctx) {
    const dir = dirOf(direction);
    const single: CompiledProxyPolicy = { nodeId: '', workloads: [], ingress: dir === 'ingress' ? [port] : [], egress: dir === 'egress' ? [port] : [] };
    const [cfg] = kafkaFilterConfigs(single);
    const origins = [...new Map(port.rules.map((r) => [r.origin.policy, r.origin])).values()];
    // The filter configuration's rules are the port's, in order: `policy trace` names the rule behind an index.
    const policyOrigins = Object.fromEntries(port.rules.map((r, i) => [String(i), r.origin]));
    return { ...kafkaResource(kafkaEcdsResource(cfg, ctx.kafkaModule), origins), policyOrigins };
  },
  kept: {
    name: (direction, port) => kafkaEcdsName(dirOf(direction), port),
    resource: (direction, port, ctx) => kafkaResource(kafkaEcdsResource(allowAllKafkaConfig(dirOf(direction), port), ctx.kafkaModule), []),
  },
  chain(direction, port, ctx) {
    return {
      name: `${direction}|${port}|kafka`,
      filter_chain_match: { destination_port: port },
      filters: [
        kafkaNetworkFilter(dirOf(direction), port, ctx.kafkaModule),
        {
          name: 'envoy.filters.network.tcp_proxy',
          typed_config: withType(TCP_PROXY_TYPE_URL, { stat_prefix: `${direction}_${port}_kafka`, cluster: passthroughClusterName(direction) }),
        },
      ],
    };
  },
};

const BUILDERS: { readonly [K in L7Kind]: L7Builder & { kind: K } } = {
  http: { kind: 'http', name: 'HTTP', enforcement: HTTP_ENFORCEMENT },
  kafka: { kind: 'kafka', name: 'Kafka', enforcement: KAFKA_ENFORCEMENT },
};

export function l7Builder(kind: L7Kind): L7Builder {
  return BUILDERS[kind];
}

/** Every protocol's enforcement in `mode`. */
export function l7Enforcements(mode: EnforcementMode): readonly L7Enforcement[] {
  // Asked on every build of every proxy: the registry does not change.
  let list = ENFORCEMENTS.get(mode);
  if (!list) ENFORCEMENTS.set(mode, (list = Object.values(BUILDERS).flatMap((b) => (b.enforcement?.modes.includes(mode) ? [b.enforcement] : []))));
  return list;
}

const ENFORCEMENTS = new Map<EnforcementMode, readonly L7Enforcement[]>();

/** Whether `mode` enforces this kind of L7 rules. */
export function l7EnforcedIn(kind: L7Kind, mode: EnforcementMode): boolean {
  return l7Builder(kind).enforcement?.modes.includes(mode) ?? false;
}

/** Whether Envoy enforces this port's L7 rules in `mode` (a port without L7 rules has none to enforce). */
export function enforcedL7(port: CompiledPortPolicy, mode: EnforcementMode): boolean {
  return port.l7 !== undefined && l7EnforcedIn(port.l7, mode);
}

/** Ports whose L7 rules Envoy enforces in `mode`, one entry per port (TCP and ANY entries share a chain). */
export function l7ChainPorts(ports: readonly CompiledPortPolicy[], mode: EnforcementMode): CompiledPortPolicy[] {
  const seen = new Map<number, CompiledPortPolicy>();
  for (const p of ports) if (enforcedL7(p, mode) && p.protocol !== 'UDP' && !seen.has(p.port)) seen.set(p.port, p);
  return [...seen.values()].sort((a, b) => a.port - b.port);
}

/** The enforcement of a port that `enforcedL7` accepted. */
export function l7Enforcement(port: CompiledPortPolicy): L7Enforcement {
  const e = port.l7 === undefined ? undefined : l7Builder(port.l7).enforcement;
  if (!e) throw new Error(`port ${port.port} has no L7 rules that Envoy enforces`);
  return e;
}

/** The RBAC of a port whose L7 rules an RBAC filter enforces (istio and grpc modes). */
export function l7Rbac(port: CompiledPortPolicy, options: RbacOptions): RbacCompilation {
  const rbac = l7Enforcement(port).rbac;
  if (!rbac) throw new Error(`${l7Builder(port.l7 as L7Kind).name} rules on port ${port.port} are not enforced by an RBAC filter`);
  return rbac(port, options);
}
