import { EventEmitter } from 'events';

/** A client's rejection of a response, kept until the type is next ACKed. */
export interface NackRecord {
  version: string;
  nonce: string;
  /** google.rpc.Status code and message from the client's error_detail. */
  code: number;
  message: string;
  at: Date;
}

export interface TypeStatus {
  typeUrl: string;
  /** Last version sent, and when. */
  sentVersion?: string;
  sentAt?: Date;
  /** Last version the client confirmed it applied. */
  ackedVersion?: string;
  ackedAt?: Date;
  /** The last NACK; cleared by a later ACK. */
  lastNack?: NackRecord;
  wildcard: boolean;
  subscribedNames: number;
}

export interface NodeStatus {
  nodeId: string;
  /** Snapshot key the node hashes to. */
  key: string;
  cluster: string;
  userAgent: string;
  peers: string[];
  streams: number;
  /** 'sotw' and/or 'delta'. */
  protocols: string[];
  connectedAt: Date;
  lastRequestAt: Date;
  types: TypeStatus[];
}

/** Kept per node and type for every connected proxy: times as epoch ms, not Date objects, since thousands of these live for as long as the streams do. */
interface TypeRecord {
  sentVersion?: string;
  sentAt?: number;
  ackedVersion?: string;
  ackedAt?: number;
  lastNack?: NackRecord;
  wildcard: boolean;
  subscribedNames: number;
}

interface NodeRecord {
  nodeId: string;
  key: string;
  cluster: string;
  userAgent: string;
  streams: Map<number, { peer: string; protocol: string }>;
  connectedAt: number;
  lastRequestAt: number;
  types: Map<string, TypeRecord>;
}

export interface NodeStatusEvents {
  ack: [nodeId: string, typeUrl: string, version: string];
  nack: [nodeId: string, typeUrl: string, nack: NackRecord];
  connect: [nodeId: string, streamId: number];
  disconnect: [nodeId: string, streamId: number];
}

/**
 * What every connected node has been sent, has applied and has rejected, per type. The source
 * of `meshaccel status` and of the library's ack/nack events. Records of disconnected nodes are
 * kept (marked with zero streams) so a crash-looping proxy's last NACK stays visible.
 */
export class NodeStatusRegistry extends EventEmitter<NodeStatusEvents> {
  private readonly nodes = new Map<string, NodeRecord>();
  /** Nodes with no open stream; kept as a count so closing a stream is O(1), not O(nodes). */
  private disconnected = 0;

  constructor(private readonly retainDisconnected = 1000) {
    super();
  }

  streamOpened(streamId: number, nodeId: string, key: string, cluster: string, userAgent: string, peer: string, protocol: string): void {
    let rec = this.nodes.get(nodeId);
    const now = Date.now();
    if (!rec) {
      rec = { nodeId, key, cluster, userAgent, streams: new Map(), connectedAt: now, lastRequestAt: now, types: new Map() };
      this.nodes.set(nodeId, rec);
    }
    else if (rec.streams.size === 0) this.disconnected--;
    if (rec.streams.size === 0) rec.connectedAt = now;
    rec.key = key;
    rec.streams.set(streamId, { peer, protocol });
    this.emit('connect', nodeId, streamId);
  }

  streamClosed(streamId: number, nodeId: string): void {
    const rec = this.nodes.get(nodeId);
    if (!rec || !rec.streams.delete(streamId)) return;
    if (rec.streams.size === 0) this.disconnected++;
    this.emit('disconnect', nodeId, streamId);
    if (this.disconnected > this.retainDisconnected) this.evictDisconnected();
  }

  /** Forgets the longest-known disconnected nodes beyond the retention limit. */
  private evictDisconnected(): void {
    for (const [id, r] of this.nodes) {
      if (this.disconnected <= this.retainDisconnected) return;
      if (r.streams.size === 0) {
        this.nodes.delete(id);
        this.disconnected--;
      }
    }
  }

  private type(nodeId: string, typeUrl: string): TypeRecord | undefined {
    const rec = this.nodes.get(nodeId);
    if (!rec) return undefined;
    rec.lastRequestAt = Date.now();
    let t = rec.types.get(typeUrl);
    if (!t) rec.types.set(typeUrl, (t = { wildcard: false, subscribedNames: 0 }));
    return t;
  }

  subscribed(nodeId: string, typeUrl: string, wildcard: boolean, names: number): void {
    const t = this.type(nodeId, typeUrl);
    if (!t) return;
    t.wildcard = wildcard;
    t.subscribedNames = names;
  }

  sent(nodeId: string, typeUrl: string, version: string): void {
    const t = this.type(nodeId, typeUrl);
    if (!t) return;
    t.sentVersion = version;
    t.sentAt = Date.now();
  }

  acked(nodeId: string, typeUrl: string, version: string): void {
    const t = this.type(nodeId, typeUrl);
    if (!t) return;
    t.ackedVersion = version;
    t.ackedAt = Date.now();
    t.lastNack = undefined;
    this.emit('ack', nodeId, typeUrl, version);
  }

  nacked(nodeId: string, typeUrl: string, nack: NackRecord): void {
    const t = this.type(nodeId, typeUrl);
    if (!t) return;
    t.lastNack = nack;
    this.emit('nack', nodeId, typeUrl, nack);
  }

  get(nodeId: string): NodeStatus | undefined {
    const rec = this.nodes.get(nodeId);
    return rec && toStatus(rec);
  }

  list(): NodeStatus[] {
    return [...this.nodes.values()].map(toStatus).sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }
}

function toStatus(rec: NodeRecord): NodeStatus {
  return {
    nodeId: rec.nodeId,
    key: rec.key,
    cluster: rec.cluster,
    userAgent: rec.userAgent,
    peers: [...new Set([...rec.streams.values()].map((s) => s.peer))],
    streams: rec.streams.size,
    protocols: [...new Set([...rec.streams.values()].map((s) => s.protocol))],
    connectedAt: new Date(rec.connectedAt),
    lastRequestAt: new Date(rec.lastRequestAt),
    types: [...rec.types].map(([typeUrl, t]) => ({
      typeUrl,
      sentVersion: t.sentVersion,
      sentAt: t.sentAt === undefined ? undefined : new Date(t.sentAt),
      ackedVersion: t.ackedVersion,
      ackedAt: t.ackedAt === undefined ? undefined : new Date(t.ackedAt),
      lastNack: t.lastNack,
      wildcard: t.wildcard,
      subscribedNames: t.subscribedNames,
    })),
  };
}
