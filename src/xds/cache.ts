import { Snapshot } from './snapshot';

/** The parts of an xDS Node the control plane keys on. */
export interface NodeInfo {
  id: string;
  cluster: string;
  /** Node metadata (a google.protobuf.Struct) as plain JSON. */
  metadata: Record<string, unknown>;
  userAgentName: string;
}

/** Maps a node to the key its snapshot is stored under (go-control-plane's NodeHash). */
export type NodeHash = (node: NodeInfo) => string;

export const nodeIdHash: NodeHash = (node) => node.id;

/**
 * Where the server gets configuration: the small interface between cache and server, so an
 * embedding application can supply its own (go-control-plane's ConfigWatcher split).
 */
export interface SnapshotSource {
  nodeKey(node: NodeInfo): string;
  getSnapshot(key: string): Snapshot | undefined;
  /** Calls `listener` on every later snapshot for `key`; returns the unsubscribe function. */
  watch(key: string, listener: (snapshot: Snapshot) => void): () => void;
}

export interface SnapshotCacheOptions {
  nodeHash?: NodeHash;
}

/** In-memory snapshots per node key, with change notification. */
export class SnapshotCache implements SnapshotSource {
  private readonly snapshots = new Map<string, Snapshot>();
  private readonly watchers = new Map<string, Set<(s: Snapshot) => void>>();
  private readonly nodeHash: NodeHash;

  constructor(options: SnapshotCacheOptions = {}) {
    this.nodeHash = options.nodeHash ?? nodeIdHash;
  }

  nodeKey(node: NodeInfo): string {
    return this.nodeHash(node);
  }

  getSnapshot(key: string): Snapshot | undefined {
    return this.snapshots.get(key);
  }

  keys(): string[] {
    return [...this.snapshots.keys()];
  }

  setSnapshot(key: string, snapshot: Snapshot): void {
    if (this.snapshots.get(key) === snapshot) return;
    this.snapshots.set(key, snapshot);
    this.notify(key, snapshot);
  }

  clearSnapshot(key: string): void {
    if (!this.snapshots.delete(key)) return;
    // Streams on that key are told their configuration is now empty.
    this.notify(key, Snapshot.empty());
  }

  watch(key: string, listener: (snapshot: Snapshot) => void): () => void {
    let set = this.watchers.get(key);
    if (!set) this.watchers.set(key, (set = new Set()));
    set.add(listener);
    return () => {
      const s = this.watchers.get(key);
      if (!s) return;
      s.delete(listener);
      if (s.size === 0) this.watchers.delete(key);
    };
  }

  private notify(key: string, snapshot: Snapshot): void {
    const set = this.watchers.get(key);
    if (!set) return;
    for (const listener of [...set]) listener(snapshot);
  }
}
