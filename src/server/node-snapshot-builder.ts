import type { NodeInfo, SnapshotSource } from '../xds/cache';
import { SnapshotCache } from '../xds/cache';
import { Snapshot } from '../xds/snapshot';
import { TypeUrl } from '../resource/type-urls';
import type { CompiledProxyPolicy } from '../policy/compiled';
import { formatDiagnostic } from '../policy/diagnostics';
import type { NodePolicy } from '../policy/engine';
import { buildProxyResourceJson, encodeGenerated, type ProxyBuildOptions } from '../envoy/proxy-resources';
import { grpcImplementationOf } from '../envoy/builders/grpc-js-peers';
import { nodeAffected, type PolicyStore } from '../store/policy-store';
import type { Logger } from '../log';
import { nextTurn, SLICE_MS } from '../store/time-slices';

/**
 * What the policy side must offer: the compiled policy for a node. A provider that compiles
 * nodes served by several bindings as proxies of their own (the `PolicyStore`) also offers
 * `trackNode`/`untrackNode`, which the builder calls as nodes come and go.
 */
export interface CompiledPolicyProvider {
  policyForNode(nodeId: string, nodeMetadata?: Readonly<Record<string, unknown>>): CompiledProxyPolicy | undefined;
  trackNode?(nodeId: string, nodeMetadata?: Readonly<Record<string, unknown>>): NodePolicy;
  nodePolicy?(nodeId: string, nodeMetadata?: Readonly<Record<string, unknown>>): NodePolicy;
  untrackNode?(nodeId: string): void;
  /**
   * Whether there is a configuration yet. Until there is (the files failed at start-up and
   * nothing persisted could stand in), no snapshot is built: a proxy is served nothing and keeps
   * what it has, rather than an empty configuration that would remove it all.
   */
  hasCommitted?(): boolean;
  /**
   * Whether a change is being compiled now (over several turns of the event loop): until it has
   * finished, no node is tracked, untracked or queried; the builder waits, then `resume()`s.
   */
  committing?(): boolean;
}

export interface BuildFailure {
  nodeId: string;
  message: string;
  at: Date;
}

export interface NodeSnapshotBuilderOptions {
  /**
   * How long a node's state outlives its last stream (a reconnect within it costs no rebuild);
   * after it the node is forgotten and no policy change rebuilds it. Default 10 s.
   */
  graceMs?: number;
}

interface KnownNode {
  node: NodeInfo;
  /** Its metadata and user agent serialised once, for comparing. */
  metadataJson: string;
  /** Streams watching its snapshot. */
  watchers: number;
  grace?: NodeJS.Timeout;
}

/**
 * Turns compiled policy into snapshots for the nodes that are connected: a node's snapshot is
 * built when it first connects (its metadata may bind it to workloads) and rebuilt when a
 * policy update concerns it. Connection is what the xDS streams tell every `SnapshotSource`:
 * each stream watches its node's key and unsubscribes when it ends; once the last one has gone
 * (and a short grace period for reconnects has passed) the node is forgotten. A build that fails
 * Envoy's schema check, or a node whose bindings clash, stays on its last good snapshot and is
 * reported with the policies that produced the problem.
 */
export class NodeSnapshotBuilder implements SnapshotSource {
  private readonly cache = new SnapshotCache();
  private readonly nodes = new Map<string, KnownNode>();
  private readonly failures = new Map<string, BuildFailure>();
  private readonly graceMs: number;
  private builds = 0;
  /** Set once the provider has a configuration; snapshots are built from then on. */
  private serving: boolean;
  /** Nodes due for a rebuild, in order, and whether each must be tracked first (it connected or changed metadata). */
  private readonly due = new Map<string, boolean>();
  /** Nodes whose grace ended while the provider was committing. */
  private readonly forgetLater = new Set<KnownNode>();
  private draining = false;
  private whenDrained: Array<() => void> = [];

  constructor(
    private readonly policies: CompiledPolicyProvider,
    private readonly build: ProxyBuildOptions,
    private readonly log: Logger,
    options: NodeSnapshotBuilderOptions = {},
  ) {
    this.graceMs = options.graceMs ?? 10_000;
    this.serving = policies.hasCommitted?.() ?? true;
  }

  /** A builder that follows a store: every update rebuilds the connected nodes it concerns. */
  static forStore(store: PolicyStore, build: ProxyBuildOptions, log: Logger, options?: NodeSnapshotBuilderOptions): NodeSnapshotBuilder {
    const builder = new NodeSnapshotBuilder(store, build, log, options);
    store.on('update', (u) => {
      const keys = [...u.changed, ...u.removed];
      const nodes = new Set(u.nodes);
      // The first configuration concerns every node waiting for one, bound or not.
      const first = !builder.serving;
      builder.serving = true;
      builder.policiesChanged((node) => first || nodes.has(node.id) || nodeAffected(keys, node.id, node.metadata));
    });
    store.on('idle', () => builder.resume());
    return builder;
  }

  nodeKey(node: NodeInfo): string {
    const known = this.nodes.get(node.id);
    // The user agent too: in grpc mode it decides what a node can be served (a grpc-js server or not).
    const metadataJson = JSON.stringify([node.metadata, node.userAgentName]);
    if (!known) {
      const entry: KnownNode = { node, metadataJson, watchers: 0 };
      this.nodes.set(node.id, entry);
      // Forgotten unless a stream watches it (a fetch, or a stream that fails before it watches).
      this.startGrace(entry);
      this.rebuild(node, true);
    } else if (known.metadataJson !== metadataJson) {
      // A proxy rescheduled under the same id with new metadata may now serve other workloads:
      // its policy must follow the metadata it connects with, not the first it ever sent.
      known.node = node;
      known.metadataJson = metadataJson;
      this.rebuild(node, true);
    }
    return node.id;
  }

  getSnapshot(key: string): Snapshot | undefined {
    return this.cache.getSnapshot(key);
  }

  watch(key: string, listener: (snapshot: Snapshot) => void): () => void {
    const unsubscribe = this.cache.watch(key, listener);
    const entry = this.nodes.get(key);
    if (!entry) return unsubscribe;
    entry.watchers++;
    if (entry.grace) clearTimeout(entry.grace);
    entry.grace = undefined;
    let done = false;
    return () => {
      unsubscribe();
      if (done) return;
      done = true;
      if (--entry.watchers === 0 && this.nodes.get(key) === entry) this.startGrace(entry);
    };
  }

  /**
   * Re-evaluates the known nodes a policy update may concern (`affects` decides from id and
   * metadata). Many nodes are rebuilt over several turns of the event loop (`settled` resolves
   * when all are), so streams are answered meanwhile; each node's snapshot is whole.
   */
  policiesChanged(affects: (node: NodeInfo) => boolean): void {
    for (const { node } of this.nodes.values()) if (affects(node) && !this.due.has(node.id)) this.due.set(node.id, false);
    void this.drain();
  }

  /** The provider finished a commit: what waited for it is done now. */
  resume(): void {
    for (const entry of [...this.forgetLater]) {
      this.forgetLater.delete(entry);
      this.forget(entry);
    }
    void this.drain();
  }

  /** Resolves once every rebuild due has run. */
  settled(): Promise<void> {
    if (this.due.size === 0 && !this.draining) return Promise.resolve();
    return new Promise((resolve) => this.whenDrained.push(resolve));
  }

  buildFailures(): BuildFailure[] {
    return [...this.failures.values()];
  }

  /** Ids of the nodes snapshots are built for: connected, or within the grace period. */
  knownNodes(): string[] {
    return [...this.nodes.keys()];
  }

  /** How many snapshot builds ran (for tests and debugging). */
  get buildCount(): number {
    return this.builds;
  }

  private startGrace(entry: KnownNode): void {
    entry.grace = setTimeout(() => this.forget(entry), this.graceMs);
    entry.grace.unref();
  }

  private forget(entry: KnownNode): void {
    const id = entry.node.id;
    if (this.nodes.get(id) !== entry || entry.watchers > 0) return;
    if (this.policies.committing?.()) {
      this.forgetLater.add(entry);
      return;
    }
    this.nodes.delete(id);
    this.due.delete(id);
    this.failures.delete(id);
    this.cache.clearSnapshot(id);
    this.policies.untrackNode?.(id);
  }

  /** Runs the rebuilds due, a slice at a time, pausing while the provider commits. */
  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      let deadline = performance.now() + SLICE_MS;
      while (this.due.size > 0 && !this.policies.committing?.()) {
        const [id, connected] = this.due.entries().next().value as [string, boolean];
        this.due.delete(id);
        const entry = this.nodes.get(id);
        if (entry) this.rebuildNow(entry.node, connected);
        if (this.due.size === 0 || performance.now() < deadline) continue;
        await nextTurn();
        deadline = performance.now() + SLICE_MS;
      }
    } finally {
      this.draining = false;
    }
    if (this.due.size > 0) return; // resumed when the commit is done
    for (const resolve of this.whenDrained.splice(0)) resolve();
  }

  /** Now, unless the provider is committing: then once it has finished. */
  private rebuild(node: NodeInfo, connected: boolean): void {
    if (!this.policies.committing?.()) return this.rebuildNow(node, connected);
    this.due.set(node.id, connected || (this.due.get(node.id) ?? false));
  }

  private rebuildNow(node: NodeInfo, connected: boolean): void {
    const served =
      connected && this.policies.trackNode
        ? this.policies.trackNode(node.id, node.metadata)
        : this.policies.nodePolicy
          ? this.policies.nodePolicy(node.id, node.metadata)
          : { policy: this.policies.policyForNode(node.id, node.metadata), conflicts: [] };
    // Tracked all the same, so the first configuration is compiled with this node in it.
    if (!this.serving) return;
    this.builds++;
    try {
      if (served.conflicts.length > 0) throw new Error(`policy refused:\n${served.conflicts.map(formatDiagnostic).join('\n')}`);
      let snapshot = Snapshot.empty();
      if (served.policy) {
        const previous = this.cache.getSnapshot(node.id)?.resources(TypeUrl.ExtensionConfig);
        let options = previous ? { ...this.build, previousExtensionConfigs: new Set(previous.keys()) } : this.build;
        if (options.mode === 'grpc' && options.grpcServerImplementation === undefined)
          options = { ...options, grpcServerImplementation: grpcImplementationOf(node.userAgentName) };
        const { resources, warnings } = buildProxyResourceJson(served.policy, options);
        for (const w of warnings) this.log.warn(`node ${node.id}: ${w}`);
        snapshot = Snapshot.fromResources(encodeGenerated(resources));
      }
      this.cache.setSnapshot(node.id, snapshot);
      this.failures.delete(node.id);
    } catch (err) {
      const message = (err as Error).message;
      this.failures.set(node.id, { nodeId: node.id, message, at: new Date() });
      this.log.warn(`node ${node.id}: configuration not served, keeping the last good one: ${message}`);
    }
  }
}
