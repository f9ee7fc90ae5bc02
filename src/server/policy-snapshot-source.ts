import type { NodeInfo, SnapshotSource } from '../xds/cache';
import { SnapshotCache } from '../xds/cache';
import { Snapshot } from '../xds/snapshot';
import type { CompiledProxyPolicy } from '../policy/compiled';
import { buildProxyResourceJson, encodeGenerated, type ProxyBuildOptions } from '../envoy/proxy-resources';
import type { Logger } from '../xds/stream-session';

/** What the policy side must offer: the compiled policy for a node as it connects. */
export interface CompiledPolicyProvider {
  policyForNode(nodeId: string, nodeMetadata?: Readonly<Record<string, unknown>>): CompiledProxyPolicy | undefined;
}

export interface BuildFailure {
  nodeId: string;
  message: string;
  at: Date;
}

/**
 * Turns compiled policy into per-node snapshots, lazily: a node's snapshot is built when it
 * first connects (its metadata may bind it to workloads) and rebuilt when a policy update
 * concerns it. A build that fails Envoy's schema check leaves that node on its last good
 * snapshot and is reported with the policies that produced the bad resource.
 */
export class PolicySnapshotSource implements SnapshotSource {
  private readonly cache = new SnapshotCache();
  /** Each node as it last connected, with its metadata serialised once for comparing. */
  private readonly nodes = new Map<string, { node: NodeInfo; metadataJson: string }>();
  private readonly failures = new Map<string, BuildFailure>();

  constructor(
    private readonly policies: CompiledPolicyProvider,
    private readonly build: ProxyBuildOptions,
    private readonly log: Logger,
  ) {}

  nodeKey(node: NodeInfo): string {
    const known = this.nodes.get(node.id);
    const metadataJson = JSON.stringify(node.metadata);
    // A proxy rescheduled under the same id with new metadata may now serve other workloads:
    // its policy must follow the metadata it connects with, not the first it ever sent.
    if (!known || known.metadataJson !== metadataJson) {
      this.nodes.set(node.id, { node, metadataJson });
      this.rebuild(node);
    }
    return node.id;
  }

  getSnapshot(key: string): Snapshot | undefined {
    return this.cache.getSnapshot(key);
  }

  watch(key: string, listener: (snapshot: Snapshot) => void): () => void {
    return this.cache.watch(key, listener);
  }

  /** Re-evaluates the nodes a policy update may concern (`affects` decides from id and metadata). */
  policiesChanged(affects: (node: NodeInfo) => boolean): void {
    for (const { node } of this.nodes.values()) if (affects(node)) this.rebuild(node);
  }

  buildFailures(): BuildFailure[] {
    return [...this.failures.values()];
  }

  private rebuild(node: NodeInfo): void {
    const compiled = this.policies.policyForNode(node.id, node.metadata);
    try {
      let snapshot = Snapshot.empty();
      if (compiled) {
        const { resources, warnings } = buildProxyResourceJson(compiled, this.build);
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
