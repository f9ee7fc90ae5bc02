import { deepFreeze } from '../json/object-id';

/**
 * The compiled form of L7 policy for one proxy: the contract between the policy side
 * (selectors, identities, rule semantics) and the Envoy side (RBAC and listener builders).
 * Peers arrive already resolved to addresses and principals, so the Envoy builders never
 * consult the selector cache.
 */

export interface PolicyOrigin {
  /** `namespace/name` of the L7Policy (or `name` for a cluster-scoped one). */
  policy: string;
  file?: string;
  line?: number;
  /** Which rule of the policy: `spec.<section>[<index>]`. Absent for the default-allow rule. */
  rule?: { section: 'ingress' | 'egress' | 'ingressDeny' | 'egressDeny'; index: number };
  /**
   * What an XdsServer of @grpc/grpc-js-xds cannot enforce in this rule, at its fields (policy/
   * enforceability.ts, `grpcJsRefusals`): grpc mode refuses a grpc-js node's build that has any.
   */
  grpcJsRefusals?: readonly FieldRefusal[];
}

/** A field of a policy that cannot be enforced somewhere: `spec.ingress[0].fromCIDR[1]`, its line, why. */
export interface FieldRefusal {
  field: string;
  line?: number;
  message: string;
}

/** Cilium's CIDRRule, resolved: addresses in `cidr` and in none of `except`. */
export interface CidrSet {
  cidr: string;
  except: readonly string[];
}

export interface HttpHeaderMatch {
  name: string;
  /** Exact value; when absent the header must merely be present. */
  value?: string;
  /** Cilium's mismatch action. RBAC can only deny, so anything but absent is reported. */
  mismatch?: 'LOG' | 'ADD' | 'DELETE' | 'REPLACE';
}

/** One Cilium-style HTTP rule; every present field must match (AND). Regexes are RE2, anchored. */
export interface HttpRule {
  method?: string;
  path?: string;
  host?: string;
  headers?: string[];
  headerMatches?: HttpHeaderMatch[];
}

/** One Kafka rule, already expanded: `role` became the API keys it stands for. */
export interface KafkaRule {
  /** Empty means every API key. */
  apiKeys: number[];
  apiVersion?: number;
  clientID?: string;
  topic?: string;
}

/**
 * The L7 rules of one port rule, one variant per protocol: the kind says which parser a port
 * needs, `rules` what it allows. An empty `rules` list allows everything of that protocol.
 * A new protocol is a new variant plus an entry in each registry (`l7-protocols.ts` on the
 * policy side, `envoy/builders/l7.ts` on the Envoy side), not a branch in the compiler.
 */
export interface L7RuleTypes {
  http: HttpRule;
  kafka: KafkaRule;
}

export type L7Kind = keyof L7RuleTypes;

export type L7Rules = { [K in L7Kind]: { kind: K; rules: L7RuleTypes[K][] } }[L7Kind];

/** The variant of `L7Rules` with this kind. */
export type L7RulesOf<K extends L7Kind> = Extract<L7Rules, { kind: K }>;

export interface PeerSet {
  /** The rule selects every peer (no fromEndpoints/toEndpoints/CIDR restriction). */
  any: boolean;
  /**
   * Addresses of the selected workloads plus CIDR peers, as CIDR strings. Read-only: the engine
   * shares these lists between ports, rules and proxies (and freezes the cached ones).
   */
  cidrs: readonly string[];
  /** mTLS identities of the selected workloads, e.g. `cluster.local/ns/default/sa/web`. */
  principals: readonly string[];
  /** CIDRs with exceptions (`fromCIDRSet`, and the `world` entity: everything but workload addresses). */
  cidrSets?: readonly CidrSet[];
}

export interface PeerEndpoint {
  principal: string;
  cidrs: readonly string[];
}

export interface CompiledRule {
  origin: PolicyOrigin;
  peers: PeerSet;
  /** Present on a port with L7 rules (of the port's kind); an empty `rules` allows all of that protocol. */
  l7?: L7Rules;
  /**
   * The workloads among `peers` as (principal, addresses) pairs, one per identity: with mTLS a
   * peer must present that principal AND connect from one of those addresses, so a pod sharing
   * the service account, or reusing an address, is not admitted. Their addresses are in
   * `peers.cidrs` too (address-only modes use those).
   */
  peerEndpoints?: readonly PeerEndpoint[];
  /**
   * Added: when the proxy serves several workloads and this rule applies to only some of them,
   * the addresses (CIDRs) of those workloads — the rule's destination on ingress, its source on
   * egress. Absent means the rule applies to every workload of the proxy.
   */
  local?: string[];
}

export interface CompiledPortPolicy {
  /** 0 with protocol 'ANY' stands for every port (rules without toPorts). */
  port: number;
  protocol: 'TCP' | 'UDP' | 'ANY';
  /** Set once any rule on the port has L7 rules: deny by default at L7 from then on. Absent: no L7 rules. */
  l7?: L7Kind;
  /** OR of rules: a request is allowed if any rule's peers and any of its L7 rules match. */
  rules: CompiledRule[];
}

export interface CompiledProxyPolicy {
  /** xDS node id of the proxy that enforces this. */
  nodeId: string;
  /** The workloads this proxy serves, `namespace/name`. */
  workloads: string[];
  ingress: CompiledPortPolicy[];
  egress: CompiledPortPolicy[];
  /**
   * L3/L4 deny rules (`ingressDeny`/`egressDeny`), by port like the allows (0/ANY: every port);
   * a connection one of them matches is denied whatever the allows say. Absent when empty.
   */
  ingressDeny?: CompiledPortPolicy[];
  egressDeny?: CompiledPortPolicy[];
}

/** A rule's L7 rules if they are of this kind (for a builder of that kind, and for tests). */
export function l7RulesOf<K extends L7Kind>(rule: Pick<CompiledRule, 'l7'>, kind: K): L7RuleTypes[K][] | undefined {
  if (rule.l7?.kind !== kind) return undefined;
  const l7: { rules: unknown } = rule.l7;
  return l7.rules as L7RuleTypes[K][];
}

const SEALED = new WeakSet<CompiledPortPolicy>();

/**
 * Freezes a port policy whole and marks it as the engine's: a sealed port policy never changes,
 * so what is built from it may be kept by its identity (the Envoy builders do). The engine
 * hands the same sealed object to every proxy, and every commit, whose port has the same rules.
 * A port policy written anywhere else (by hand, parsed from JSON) is not sealed and is built
 * afresh each time, since its owner may still change it.
 */
export function sealPortPolicy(port: CompiledPortPolicy): CompiledPortPolicy {
  SEALED.add(deepFreeze(port));
  return port;
}

export function isSealedPortPolicy(port: CompiledPortPolicy): boolean {
  return SEALED.has(port);
}
