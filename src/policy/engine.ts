import {
  sealPortPolicy,
  type CompiledPortPolicy,
  type CompiledProxyPolicy,
  type CompiledRule,
  type L7Kind,
  type L7Rules,
  type PeerEndpoint,
  type PeerSet,
  type PolicyOrigin,
} from './compiled';
import type { Diagnostic } from './diagnostics';
import { allowAllL7, copyL7, l7Protocol } from './l7';
import { identityLabels, IdentityAllocator, type Identity } from './identities';
import { resourceKey, resourceName, type PolicyResource, type Resource, type RuleSection, type WorkloadResource } from './model';
import {
  CLUSTER_SELECTOR,
  compilePolicyRules,
  normaliseCidr,
  RULE_SECTIONS,
  ruleOrigin,
  type DirectionalRule,
  type PolicyRules,
  type PortEntry,
} from './policy-rules';
import { PortTable, type L7Conflict } from './port-table';
import { bindingKey, bindingOf, isMetadataKey, keyMatchesNode } from './proxy-binding';
import { SelectorCache, type CachedSelector } from './selector-cache';
import { shareText } from '../json/shared-text';
import { sameJson } from '../json/same-json';
import { deepFreeze, objectId } from '../json/object-id';

export interface EngineOptions {
  /** Trust domain of mTLS principals: `<trustDomain>/ns/<ns>/sa/<sa>`. */
  trustDomain?: string;
}

export interface CommitResult {
  /** Proxy keys whose compiled policy is new or differs from the last commit. */
  changed: string[];
  /** Proxy keys that no longer serve any workload. */
  removed: string[];
  /**
   * L7 parser clashes (HTTP and Kafka rules on one port of one proxy), including clashes between
   * the bindings of a tracked node that several bindings serve, when this change introduced them.
   */
  conflicts: Diagnostic[];
  /** Tracked nodes served by several bindings whose compiled policy is new, different, or now refused. */
  nodes: string[];
}

/** What a node is served: its policy, or the clashes that refuse it (enforced or refused). */
export interface NodePolicy {
  policy?: CompiledProxyPolicy;
  conflicts: Diagnostic[];
}

/** A workload and the binding key (a node id or `metadata:{...}`) that makes a node serve it. */
export interface BoundWorkload {
  binding: string;
  workload: WorkloadResource;
}

/**
 * A connected node that several bindings serve (its node id and metadata bindings): compiled as
 * one proxy, once per change that concerns it, like any binding.
 */
interface NodeTarget {
  metadata: Readonly<Record<string, unknown>>;
  /** The binding keys it was last compiled from (two or more), sorted; empty if fewer. */
  keys: string[];
  compiled?: { policy: CompiledProxyPolicy };
  conflicts: Diagnostic[];
}

interface PolicyRecord {
  resource: PolicyResource;
  fingerprint: string;
  rules: PolicyRules;
  subject: CachedSelector;
  /** Per section, per rule: the cached selectors of its peers. */
  peers: Record<RuleSection, CachedSelector[][]>;
  /** Every workload, when a rule names the `world` entity (which is everything else). */
  world?: CachedSelector;
}

function heldSelectors(rec: PolicyRecord): CachedSelector[] {
  const out = RULE_SECTIONS.flatMap((s) => rec.peers[s].flat());
  if (rec.world) out.push(rec.world);
  return out;
}

interface WorkloadRecord {
  key: string;
  resource: WorkloadResource;
  identity: Identity;
  proxyKey: string;
  cidrs: string[];
}

interface Materialized {
  readonly cidrs: readonly string[];
  readonly principals: readonly string[];
  readonly endpoints: readonly PeerEndpoint[];
}

const DEFAULT_ALLOW_ORIGIN = '(default allow: no policy selects this workload in this direction)';

const ANY_PEER: { peers: PeerSet; endpoints: readonly PeerEndpoint[] } = deepFreeze({ peers: { any: true, cidrs: [], principals: [] }, endpoints: [] });

/** Variants kept per rule and port entry (one per set of local addresses; see `compiledRule`). */
const RULE_VARIANTS = 16;
/** Port policies kept per first rule (see `sharedPort`). */
const PORT_VARIANTS = 8;

interface RuleVariant {
  peers: PeerSet;
  endpoints: readonly PeerEndpoint[];
  local: string;
  rule: CompiledRule;
}

function keep<T>(list: T[], item: T, limit: number): T {
  list.push(item);
  if (list.length > limit) list.shift();
  return item;
}

function workloadFingerprint(w: WorkloadResource): string {
  return JSON.stringify([w.labels, w.spec]);
}

function sortedUnique(values: Iterable<string>): string[] {
  return [...new Set(values)].sort();
}

function addToIndex<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  let set = map.get(key);
  if (!set) map.set(key, (set = new Set()));
  set.add(value);
}

function removeFromIndex<K, V>(map: Map<K, Set<V>>, key: K, value: V): void {
  const set = map.get(key);
  set?.delete(value);
  if (set?.size === 0) map.delete(key);
}

/**
 * The incremental policy state: identities, the selector cache, and the compiled policy per proxy.
 * Every change marks only the proxies it can affect (a workload's own proxy, and the proxies of
 * policies whose peer selectors select its identity); `commit()` recompiles just those and
 * reports the ones whose result actually differs.
 */
export class PolicyEngine {
  readonly identities = new IdentityAllocator();
  readonly selectors = new SelectorCache();
  private readonly trustDomain: string;
  private readonly policies = new Map<string, PolicyRecord>();
  private readonly workloads = new Map<string, WorkloadRecord>();
  private readonly subjectUsers = new Map<CachedSelector, Set<PolicyRecord>>();
  private readonly peerUsers = new Map<CachedSelector, Set<PolicyRecord>>();
  private readonly identityWorkloads = new Map<number, Set<WorkloadRecord>>();
  private readonly proxyWorkloads = new Map<string, Set<WorkloadRecord>>();
  private readonly peerMaterialized = new Map<CachedSelector, Materialized>();
  private readonly compiled = new Map<string, { policy: CompiledProxyPolicy }>();
  private readonly dirty = new Set<string>();
  /** Policies whose peers changed; expanded to their subjects' proxies when the dirty set is read. */
  private readonly dirtyPolicies = new Set<PolicyRecord>();
  /** Binding keys of metadata bindings in use: the only keys a node can match besides its id. */
  private readonly metadataKeys = new Set<string>();
  private readonly nodes = new Map<string, NodeTarget>();
  private compiles = 0;

  constructor(options: EngineOptions = {}) {
    this.trustDomain = options.trustDomain ?? 'cluster.local';
  }

  // ---- changes ------------------------------------------------------------------------------

  /** Makes the engine hold exactly `resources`, touching only what differs. */
  sync(resources: readonly Resource[]): void {
    runToEnd(this.syncSteps(resources));
  }

  /**
   * `sync` one resource at a time: it pauses after each, so a caller can spread a large change
   * over several turns of the event loop. Nothing else may use the engine until it has finished.
   */
  *syncSteps(resources: readonly Resource[]): Generator<void, void> {
    const wanted = new Map<string, Resource>();
    for (const r of resources) {
      wanted.set(resourceKey(r), r);
      yield;
    }
    for (const key of [...this.policies.keys()]) {
      if (wanted.has(key)) continue;
      this.removePolicy(key);
      yield;
    }
    for (const key of [...this.workloads.keys()]) {
      if (wanted.has(key)) continue;
      this.removeWorkload(key);
      yield;
    }
    // Workloads first, so new policies resolve against the final identity set in one pass.
    for (const r of wanted.values()) {
      if (r.kind !== 'Workload') continue;
      this.upsertWorkload(r);
      yield;
    }
    for (const r of wanted.values()) {
      if (r.kind === 'Workload') continue;
      this.upsertPolicy(r);
      yield;
    }
  }

  upsertPolicy(resource: PolicyResource): void {
    const key = resourceKey(resource);
    // Origins are in it because a rule moved within its file must re-point diagnostics and logs.
    const origins = (dir: RuleSection): PolicyOrigin[] => ((resource.spec[dir] ?? []) as unknown[]).map((_, i) => ruleOrigin(resource, dir, i));
    const fingerprint = JSON.stringify([resource.spec, RULE_SECTIONS.map(origins)]);
    const old = this.policies.get(key);
    // A reload re-upserts every policy; most have not changed and need no compiling.
    if (old?.fingerprint === fingerprint) return;
    if (old) this.removePolicy(key);
    const rules = compilePolicyRules(resource);
    const acquire = (rs: DirectionalRule[]): CachedSelector[][] => rs.map((r) => r.peers.map((s) => this.selectors.acquire(s)));
    const rec: PolicyRecord = {
      resource,
      fingerprint,
      rules,
      subject: this.selectors.acquire(rules.subject),
      peers: { ingress: acquire(rules.ingress), egress: acquire(rules.egress), ingressDeny: acquire(rules.ingressDeny), egressDeny: acquire(rules.egressDeny) },
    };
    if (RULE_SECTIONS.some((sec) => rules[sec].some((r) => r.world))) rec.world = this.selectors.acquire(CLUSTER_SELECTOR);
    this.policies.set(key, rec);
    addToIndex(this.subjectUsers, rec.subject, rec);
    for (const cs of heldSelectors(rec)) addToIndex(this.peerUsers, cs, rec);
    this.markSubjectProxies(rec);
  }

  removePolicy(key: string): boolean {
    const rec = this.policies.get(key);
    if (!rec) return false;
    this.markSubjectProxies(rec);
    this.policies.delete(key);
    removeFromIndex(this.subjectUsers, rec.subject, rec);
    this.selectors.release(rec.subject);
    for (const cs of heldSelectors(rec)) {
      removeFromIndex(this.peerUsers, cs, rec);
      this.selectors.release(cs);
      if (cs.refs === 0) this.peerMaterialized.delete(cs);
    }
    return true;
  }

  upsertWorkload(resource: WorkloadResource): void {
    const key = resourceKey(resource);
    const old = this.workloads.get(key);
    // Serialised only to compare with an existing version; a new workload (the hot path of an
    // identity add) skips it.
    if (old && workloadFingerprint(old.resource) === workloadFingerprint(resource)) return;
    if (old) this.removeWorkload(key);
    const labels = identityLabels(resource.labels, resource.namespace, resource.spec.serviceAccount ?? 'default');
    const { identity, created } = this.identities.acquire(labels);
    if (created) this.selectors.addIdentity(identity);
    const rec: WorkloadRecord = {
      key,
      resource,
      identity,
      proxyKey: bindingKey(bindingOf(resource.spec.proxy)),
      cidrs: resource.spec.addresses.map(normaliseCidr),
    };
    this.workloads.set(key, rec);
    addToIndex(this.identityWorkloads, identity.id, rec);
    addToIndex(this.proxyWorkloads, rec.proxyKey, rec);
    if (isMetadataKey(rec.proxyKey)) this.metadataKeys.add(rec.proxyKey);
    this.dirty.add(rec.proxyKey);
    this.peersChanged(this.selectors.selecting(identity.id));
  }

  removeWorkload(key: string): boolean {
    const rec = this.workloads.get(key);
    if (!rec) return false;
    this.workloads.delete(key);
    removeFromIndex(this.identityWorkloads, rec.identity.id, rec);
    removeFromIndex(this.proxyWorkloads, rec.proxyKey, rec);
    if (!this.proxyWorkloads.has(rec.proxyKey)) this.metadataKeys.delete(rec.proxyKey);
    this.dirty.add(rec.proxyKey);
    const affected = [...this.selectors.selecting(rec.identity.id)];
    if (this.identities.release(rec.identity)) this.selectors.removeIdentity(rec.identity);
    this.peersChanged(affected);
    return true;
  }

  /**
   * The peers these selectors select changed (membership or addresses): their users' proxies
   * must be rebuilt. Only the policies are noted here; expanding them to proxies waits until the
   * dirty set is read, so an identity add costs the selectors and policies it touches, not the
   * (possibly many) proxies behind them, and a burst of adds expands each policy once.
   */
  private peersChanged(selectors: Iterable<CachedSelector>): void {
    for (const cs of selectors) {
      this.peerMaterialized.delete(cs);
      const users = this.peerUsers.get(cs);
      if (users) for (const p of users) this.dirtyPolicies.add(p);
    }
  }

  private expandDirtyPolicies(): void {
    for (const p of this.dirtyPolicies) {
      // A policy replaced or removed since was marked by that change already.
      if (this.policies.get(p.rules.key) === p) this.markSubjectProxies(p);
    }
    this.dirtyPolicies.clear();
  }

  private markSubjectProxies(p: PolicyRecord): void {
    for (const id of p.subject.selected) {
      const ws = this.identityWorkloads.get(id);
      if (ws) for (const w of ws) this.dirty.add(w.proxyKey);
    }
  }

  // ---- queries ------------------------------------------------------------------------------

  private policyByName(name: string): PolicyResource | undefined {
    for (const p of this.policies.values()) if (resourceName(p.resource) === name) return p.resource;
    return undefined;
  }

  dirtyProxies(): ReadonlySet<string> {
    this.expandDirtyPolicies();
    return this.dirty;
  }

  /** Last committed policy per proxy key (node id, or `metadata:{...}` for metadata bindings). */
  proxies(): ReadonlyMap<string, CompiledProxyPolicy> {
    return new Map([...this.compiled].map(([k, v]) => [k, v.policy]));
  }

  proxy(key: string): CompiledProxyPolicy | undefined {
    return this.compiled.get(key)?.policy;
  }

  get policyCount(): number {
    return this.policies.size;
  }

  get workloadCount(): number {
    return this.workloads.size;
  }

  /** Identity ids a policy rule's peers select, for tests and debugging: `[policyKey, 'ingress', ruleIndex]`. */
  selectedPeers(policyKey: string, direction: RuleSection, rule: number): number[] {
    const rec = this.policies.get(policyKey);
    const peers = rec?.peers[direction][rule];
    const ids = new Set<number>();
    for (const cs of peers ?? []) for (const id of cs.selected) ids.add(id);
    return [...ids].sort((a, b) => a - b);
  }

  /** A workload's proxy key and addresses (`policy trace` looks up both ends with it). */
  workload(workloadKey: string): { resource: WorkloadResource; proxyKey: string; addresses: readonly string[] } | undefined {
    const w = this.workloads.get(workloadKey);
    return w && { resource: w.resource, proxyKey: w.proxyKey, addresses: w.resource.spec.addresses };
  }

  /** The workload that owns an address, if any. */
  workloadByAddress(address: string): string | undefined {
    for (const w of this.workloads.values()) if (w.resource.spec.addresses.includes(address)) return w.key;
    return undefined;
  }

  identityOf(workloadKey: string): Identity | undefined {
    return this.workloads.get(workloadKey)?.identity;
  }

  // ---- compilation --------------------------------------------------------------------------

  /**
   * Recompiles the dirty proxies (and the tracked nodes several bindings serve), all or nothing:
   * if any has an L7 conflict nothing is stored and the proxies stay dirty, so the caller can roll
   * the resources back (`sync` with the last good set) and the next commit restores exactly the
   * last good policies. A node whose bindings already clashed before this change stays refused
   * and does not block it.
   */
  commit(): CommitResult {
    return runToEnd(this.commitSteps());
  }

  /** `commit` one compile at a time (see `syncSteps`): it pauses after each proxy and node. */
  *commitSteps(): Generator<void, CommitResult> {
    const results: { key: string; policy: CompiledProxyPolicy }[] = [];
    const removed: string[] = [];
    const conflicts: Diagnostic[] = [];
    this.expandDirtyPolicies();
    for (const key of [...this.dirty].sort()) {
      if (!this.proxyWorkloads.has(key)) {
        if (this.compiled.has(key)) removed.push(key);
        continue;
      }
      const result = this.compileProxy(key);
      yield;
      if (result.conflicts.length > 0) {
        conflicts.push(...result.conflicts.map((c) => conflictDiagnostic(key, c, this.policyByName(c.second.origin.policy))));
        continue;
      }
      // Exactly "its JSON text differs", without writing it: unchanged parts are the same objects.
      const old = this.compiled.get(key);
      if (!old || !sameJson(old.policy, result.policy)) results.push({ key, policy: result.policy });
    }
    const nodeResults: { nodeId: string; target: NodeTarget }[] = [];
    for (const [nodeId, node] of this.nodes) {
      const keys = this.bindingsOf(nodeId, node.metadata);
      const composite = keys.length >= 2 ? keys : [];
      if (!sameKeys(composite, node.keys) || composite.some((k) => this.dirty.has(k))) {
        const next = this.compileNode(nodeId, composite);
        yield;
        if (next.conflicts.length > 0 && node.conflicts.length === 0) conflicts.push(...next.conflicts);
        else nodeResults.push({ nodeId, target: { ...next, metadata: node.metadata } });
      }
    }
    if (conflicts.length > 0) return { changed: [], removed: [], conflicts, nodes: [] };
    for (const key of removed) this.compiled.delete(key);
    for (const r of results) this.compiled.set(r.key, { policy: r.policy });
    const nodes: string[] = [];
    for (const { nodeId, target } of nodeResults) {
      const old = this.nodes.get(nodeId) as NodeTarget;
      if (!sameJson(old.compiled?.policy, target.compiled?.policy) || old.conflicts.length !== target.conflicts.length) nodes.push(nodeId);
      this.nodes.set(nodeId, target);
    }
    this.dirty.clear();
    return { changed: results.map((r) => r.key), removed, conflicts, nodes };
  }

  /**
   * Starts compiling a connected node as one proxy when several bindings serve it (its node id
   * and the metadata bindings its metadata satisfies), now and on every later commit that
   * concerns it. Clashes between its bindings refuse the node and are returned.
   */
  trackNode(nodeId: string, nodeMetadata: Readonly<Record<string, unknown>> = {}): NodePolicy {
    const keys = this.bindingsOf(nodeId, nodeMetadata);
    const target: NodeTarget = { ...this.compileNode(nodeId, keys.length >= 2 ? keys : []), metadata: nodeMetadata };
    this.nodes.set(nodeId, target);
    return this.nodePolicy(nodeId, nodeMetadata);
  }

  /** The node is gone: it is no longer compiled. */
  untrackNode(nodeId: string): void {
    this.nodes.delete(nodeId);
  }

  get trackedNodeCount(): number {
    return this.nodes.size;
  }

  /**
   * What a node is served: the policy of its one binding from the last commit, or, for a node
   * several bindings serve, its own compiled policy (tracked nodes: from the last commit; others
   * compiled now, for one-shot use) or the clashes that refuse it.
   */
  nodePolicy(nodeId: string, nodeMetadata: Readonly<Record<string, unknown>> = {}): NodePolicy {
    const keys = this.committedBindingsOf(nodeId, nodeMetadata);
    if (keys.length === 0) return { conflicts: [] };
    if (keys.length === 1) return { policy: { ...(this.compiled.get(keys[0]) as { policy: CompiledProxyPolicy }).policy, nodeId }, conflicts: [] };
    const tracked = this.nodes.get(nodeId);
    if (tracked && tracked.metadata === nodeMetadata) return { policy: tracked.compiled?.policy, conflicts: tracked.conflicts };
    const { compiled, conflicts } = this.compileNode(nodeId, keys);
    return { policy: compiled?.policy, conflicts };
  }

  /** `nodePolicy`'s policy; undefined for a node no binding serves or whose bindings clash. */
  policyForNode(nodeId: string, nodeMetadata: Readonly<Record<string, unknown>> = {}): CompiledProxyPolicy | undefined {
    return this.nodePolicy(nodeId, nodeMetadata).policy;
  }

  /**
   * The workloads a node with this id and metadata would be served, each with the binding key
   * that brings it (its node id or `metadata:{...}`): what an mTLS client claims by connecting.
   */
  workloadsBoundTo(nodeId: string, nodeMetadata: Readonly<Record<string, unknown>> = {}): BoundWorkload[] {
    return this.bindingsOf(nodeId, nodeMetadata).flatMap((binding) =>
      [...(this.proxyWorkloads.get(binding) ?? [])].map((w) => ({ binding, workload: w.resource })),
    );
  }

  /** Binding keys in use (workloads bound) that serve this node, sorted. */
  private bindingsOf(nodeId: string, nodeMetadata: Readonly<Record<string, unknown>>): string[] {
    const keys: string[] = [];
    if (this.proxyWorkloads.has(nodeId)) keys.push(nodeId);
    for (const k of this.metadataKeys) if (keyMatchesNode(k, nodeId, nodeMetadata)) keys.push(k);
    return keys.sort();
  }

  /** Committed binding keys that serve this node, sorted. */
  private committedBindingsOf(nodeId: string, nodeMetadata: Readonly<Record<string, unknown>>): string[] {
    const keys: string[] = [];
    if (this.compiled.has(nodeId)) keys.push(nodeId);
    for (const k of this.metadataKeys) if (this.compiled.has(k) && keyMatchesNode(k, nodeId, nodeMetadata)) keys.push(k);
    return keys.sort();
  }

  /** The one compile of a node served by these bindings (none: nothing of its own to compile). */
  private compileNode(nodeId: string, keys: string[]): Omit<NodeTarget, 'metadata'> {
    if (keys.length === 0) return { keys, conflicts: [] };
    const result = this.compileWorkloads(
      nodeId,
      keys.flatMap((k) => [...(this.proxyWorkloads.get(k) ?? [])]),
    );
    if (result.conflicts.length > 0) {
      return { keys, conflicts: result.conflicts.map((c) => conflictDiagnostic(nodeId, c, this.policyByName(c.second.origin.policy), keys)) };
    }
    return { keys, compiled: { policy: result.policy }, conflicts: [] };
  }

  /** Compiles one proxy's policy from the current state without storing it. */
  compileProxy(key: string): { policy: CompiledProxyPolicy; conflicts: L7Conflict[] } {
    return this.compileWorkloads(key, [...(this.proxyWorkloads.get(key) ?? [])]);
  }

  /** How many proxy compiles ran (bindings and nodes alike; for tests and benchmarks). */
  get compileCount(): number {
    return this.compiles;
  }

  private compileWorkloads(nodeId: string, unsorted: WorkloadRecord[]): { policy: CompiledProxyPolicy; conflicts: L7Conflict[] } {
    this.compiles++;
    const workloads = unsorted.sort((a, b) => (a.key < b.key ? -1 : 1));
    const applicable = new Map<PolicyRecord, WorkloadRecord[]>();
    const enforced = { ingress: new Set<WorkloadRecord>(), egress: new Set<WorkloadRecord>() };
    for (const w of workloads) {
      for (const cs of this.selectors.selecting(w.identity.id)) {
        const users = this.subjectUsers.get(cs);
        if (!users) continue;
        for (const p of users) {
          let list = applicable.get(p);
          if (!list) applicable.set(p, (list = []));
          list.push(w);
          if (p.rules.enforcesIngress) enforced.ingress.add(w);
          if (p.rules.enforcesEgress) enforced.egress.add(w);
        }
      }
    }
    const localOf = (ws: readonly WorkloadRecord[]): string[] | undefined =>
      ws.length === workloads.length ? undefined : sortedUnique(ws.flatMap((w) => w.cidrs));
    const fill = (r: CompiledRule, kind: L7Kind): CompiledRule => this.allowingAllL7(r, kind);
    const tables: Record<RuleSection, PortTable> = {
      ingress: new PortTable(fill),
      egress: new PortTable(fill),
      ingressDeny: new PortTable(fill),
      egressDeny: new PortTable(fill),
    };
    const ordered = [...applicable].sort((a, b) => (a[0].rules.key < b[0].rules.key ? -1 : 1));
    for (const [p, ws] of ordered) {
      const local = localOf(ws);
      for (const dir of RULE_SECTIONS) {
        const peersOf = p.peers[dir];
        p.rules[dir].forEach((r, i) => {
          const { peers, endpoints } = this.peerSet(r, peersOf[i], p.world);
          if (r.ports.length === 0) tables[dir].add(0, 'ANY', this.compiledRule(r, undefined, peers, endpoints, local));
          for (const e of r.ports) tables[dir].add(e.port, e.protocol, this.compiledRule(r, e, peers, endpoints, local));
        });
      }
    }
    for (const dir of ['ingress', 'egress'] as const) {
      const open = workloads.filter((w) => !enforced[dir].has(w));
      if (open.length === 0) continue;
      tables[dir].add(0, 'ANY', this.defaultAllowRule(localOf(open)));
    }
    const conflicts = [...tables.ingress.conflicts, ...tables.egress.conflicts];
    // With a clash nothing is served, so nothing is shared either (a port may have lost its rule).
    const finish = (t: PortTable): CompiledPortPolicy[] =>
      Object.freeze(t.finish().map((port) => (conflicts.length > 0 ? port : this.sharedPort(port)))) as CompiledPortPolicy[];
    const policy: CompiledProxyPolicy = {
      nodeId,
      workloads: Object.freeze(workloads.map((w) => resourceName(w.resource))) as string[],
      ingress: finish(tables.ingress),
      egress: finish(tables.egress),
    };
    const ingressDeny = finish(tables.ingressDeny);
    const egressDeny = finish(tables.egressDeny);
    if (ingressDeny.length > 0) policy.ingressDeny = ingressDeny;
    if (egressDeny.length > 0) policy.egressDeny = egressDeny;
    return { policy: Object.freeze(policy), conflicts };
  }

  /**
   * A rule's resolved peers are the same for every proxy it applies to: cached per rule, and
   * reused while the materialized peers of its selectors (replaced whenever those change) are
   * the same objects. Shared read-only, like the materialized lists.
   */
  private readonly resolvedPeers = new WeakMap<
    DirectionalRule,
    { inputs: readonly Materialized[]; result: { peers: PeerSet; endpoints: readonly PeerEndpoint[] } }
  >();

  private peerSet(
    rule: DirectionalRule,
    selectors: readonly CachedSelector[],
    world: CachedSelector | undefined,
  ): { peers: PeerSet; endpoints: readonly PeerEndpoint[] } {
    if (rule.any) return ANY_PEER;
    const inputs = selectors.map((cs) => this.materialize(cs));
    if (rule.world && world) inputs.push(this.materialize(world));
    const cached = this.resolvedPeers.get(rule);
    if (cached && cached.inputs.length === inputs.length && cached.inputs.every((m, i) => m === inputs[i])) return cached.result;
    const result = this.resolvePeers(rule, selectors, world);
    this.resolvedPeers.set(rule, { inputs, result });
    return result;
  }

  private resolvePeers(
    rule: DirectionalRule,
    selectors: readonly CachedSelector[],
    world: CachedSelector | undefined,
  ): { peers: PeerSet; endpoints: readonly PeerEndpoint[] } {
    const sets = [...rule.cidrSets];
    if (rule.world && world) {
      // Cilium's world: any address outside the cluster, i.e. none of the workloads' addresses.
      const cluster = this.materialize(world).cidrs;
      sets.push({ cidr: '0.0.0.0/0', except: cluster.filter((c) => !c.includes(':')) }, { cidr: '::/0', except: cluster.filter((c) => c.includes(':')) });
    }
    // Shared by every proxy the rule applies to, and by their compiled policies' text.
    const withExtras = (p: PeerSet, endpoints: readonly PeerEndpoint[]): { peers: PeerSet; endpoints: readonly PeerEndpoint[] } => ({
      peers: shareText(deepFreeze(sets.length > 0 ? { ...p, cidrSets: sets } : p)),
      endpoints,
    });
    if (selectors.length === 1 && rule.cidrs.length === 0) {
      const m = this.materialize(selectors[0]);
      return withExtras({ any: false, cidrs: m.cidrs, principals: m.principals }, m.endpoints);
    }
    const cidrs: string[] = [...rule.cidrs];
    const principals: string[] = [];
    const endpoints = new Map<string, PeerEndpoint>();
    for (const cs of selectors) {
      const m = this.materialize(cs);
      cidrs.push(...m.cidrs);
      principals.push(...m.principals);
      for (const e of m.endpoints) endpoints.set(`${e.principal}|${e.cidrs.join(',')}`, e);
    }
    return withExtras({ any: false, cidrs: sortedUnique(cidrs), principals: sortedUnique(principals) }, shareText([...endpoints.values()]));
  }

  /**
   * The compiled rules, and the port policies made of them, are frozen and shared: a rule whose
   * peers did not change is the same object in every proxy it applies to and in every commit,
   * and so is a port whose rules are the same objects. Commit's change test and the Envoy
   * builders' caches then see an unchanged part by identity (`sealPortPolicy`). Kept per
   * source rule, so they go with it.
   */
  private readonly compiledRules = new WeakMap<DirectionalRule, Map<PortEntry | undefined, RuleVariant[]>>();
  private readonly frozenOrigins = new WeakMap<DirectionalRule, PolicyOrigin>();
  private readonly frozenL7 = new WeakMap<PortEntry, L7Rules>();
  private readonly filledRules = new WeakMap<CompiledRule, Partial<Record<L7Kind, CompiledRule>>>();
  private readonly defaultAllowRules = new Map<string, CompiledRule>();
  private readonly sharedPorts = new WeakMap<CompiledRule, Map<string, CompiledPortPolicy>>();

  private compiledRule(
    r: DirectionalRule,
    entry: PortEntry | undefined,
    peers: PeerSet,
    endpoints: readonly PeerEndpoint[],
    local: string[] | undefined,
  ): CompiledRule {
    let byEntry = this.compiledRules.get(r);
    if (!byEntry) this.compiledRules.set(r, (byEntry = new Map()));
    let variants = byEntry.get(entry);
    if (!variants) byEntry.set(entry, (variants = []));
    const localKey = local === undefined ? '' : `\u0000${local.join(',')}`;
    const at = variants.findIndex((v) => v.local === localKey);
    const hit = at >= 0 ? variants[at] : undefined;
    if (hit && hit.peers === peers && hit.endpoints === endpoints) return hit.rule;
    // The peers of this variant changed: the old rule is not wanted any more.
    if (at >= 0) variants.splice(at, 1);
    let origin = this.frozenOrigins.get(r);
    if (!origin) this.frozenOrigins.set(r, (origin = deepFreeze({ ...r.origin })));
    const rule: CompiledRule = { origin, peers };
    if (endpoints.length > 0) rule.peerEndpoints = endpoints;
    if (local) rule.local = Object.freeze(local) as string[];
    if (entry?.l7) {
      let l7 = this.frozenL7.get(entry);
      if (!l7) this.frozenL7.set(entry, (l7 = deepFreeze(copyL7(entry.l7))));
      rule.l7 = l7;
    }
    return keep(variants, { peers, endpoints, local: localKey, rule: Object.freeze(rule) }, RULE_VARIANTS).rule;
  }

  /** A rule without L7 rules on a port with them (Cilium: it allows all of that protocol). */
  private allowingAllL7(r: CompiledRule, kind: L7Kind): CompiledRule {
    if (r.l7) return r;
    let filled = this.filledRules.get(r);
    if (!filled) this.filledRules.set(r, (filled = {}));
    return (filled[kind] ??= Object.freeze({ ...r, l7: deepFreeze(allowAllL7(kind)) }));
  }

  private defaultAllowRule(local: string[] | undefined): CompiledRule {
    const key = local === undefined ? '' : `\u0000${local.join(',')}`;
    let rule = this.defaultAllowRules.get(key);
    if (!rule) {
      rule = { origin: deepFreeze({ policy: DEFAULT_ALLOW_ORIGIN }), peers: ANY_PEER.peers };
      if (local) rule.local = Object.freeze(local) as string[];
      if (this.defaultAllowRules.size >= 1024) this.defaultAllowRules.delete(this.defaultAllowRules.keys().next().value as string);
      this.defaultAllowRules.set(key, Object.freeze(rule));
    }
    return rule;
  }

  /** The shared port policy with these rules (the same objects, in this order), made from `port` if there is none. */
  private sharedPort(port: CompiledPortPolicy): CompiledPortPolicy {
    const first = port.rules[0];
    if (!first) return port;
    let byKey = this.sharedPorts.get(first);
    if (!byKey) this.sharedPorts.set(first, (byKey = new Map()));
    const key = `${port.port}/${port.protocol}/${port.l7 ?? ''}/${port.rules.map(objectId).join(',')}`;
    const hit = byKey.get(key);
    if (hit) return hit;
    if (byKey.size >= PORT_VARIANTS) byKey.delete(byKey.keys().next().value as string);
    byKey.set(key, sealPortPolicy(port));
    return port;
  }

  /** Addresses and principals of a selector's identities, cached until its peers change. */
  private materialize(cs: CachedSelector): Materialized {
    let m = this.peerMaterialized.get(cs);
    if (m) return m;
    const cidrs: string[] = [];
    const principals: string[] = [];
    const endpoints: PeerEndpoint[] = [];
    for (const id of cs.selected) {
      const ws = this.identityWorkloads.get(id);
      if (!ws || ws.size === 0) continue;
      const identity = this.identities.get(id) as Identity;
      const principal = `${this.trustDomain}/ns/${identity.namespace}/sa/${identity.serviceAccount}`;
      principals.push(principal);
      const own: string[] = [];
      for (const w of ws) own.push(...w.cidrs);
      cidrs.push(...own);
      endpoints.push(Object.freeze({ principal, cidrs: Object.freeze(sortedUnique(own)) }));
    }
    endpoints.sort((a, b) => (a.principal < b.principal ? -1 : a.principal > b.principal ? 1 : a.cidrs[0] < b.cidrs[0] ? -1 : 1));
    // Frozen, text kept: every proxy whose rules select this selector shares these lists.
    m = { cidrs: shareText(sortedUnique(cidrs)), principals: shareText(sortedUnique(principals)), endpoints: shareText(endpoints) };
    this.peerMaterialized.set(cs, m);
    return m;
  }
}

function runToEnd<T>(steps: Generator<void, T>): T {
  for (;;) {
    const step = steps.next();
    if (step.done) return step.value;
  }
}

function sameKeys(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((k, i) => k === b[i]);
}

function conflictDiagnostic(proxyKey: string, c: L7Conflict, policy: PolicyResource | undefined, bindings?: readonly string[]): Diagnostic {
  const kindOf = (r: CompiledRule): string => (r.l7 ? l7Protocol(r.l7.kind).name : 'no L7');
  return {
    file: c.second.origin.file ?? '<memory>',
    line: c.second.origin.line ?? 1,
    column: 1,
    document: policy?.source?.document,
    subject: `${policy?.kind ?? 'policy'} ${c.second.origin.policy}`,
    path: '',
    message:
      `port ${c.port}/${c.protocol} of proxy ${proxyKey} gets ${kindOf(c.second)} rules here but ${kindOf(c.first)} rules from ` +
      `${c.first.origin.policy}${c.first.origin.file ? ` (${c.first.origin.file}:${c.first.origin.line ?? 1})` : ''}; a port has one L7 protocol` +
      (bindings ? ` (node ${proxyKey} is served by the bindings ${bindings.join(', ')}, compiled as one proxy)` : ''),
  };
}
