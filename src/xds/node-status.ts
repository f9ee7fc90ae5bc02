import { EventEmitter } from 'events';
import type { NodeInfo } from './cache';
import type { NackRecord, RequestInfo, ResponseInfo, StreamInfo, XdsCallbacks } from './callbacks';

export type { NackRecord };

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
  /** Estimated size, counted while the node is disconnected. */
  bytes: number;
}

/** What a kept NACK message is cut to: enough to read the error, never a client's megabytes. */
export const NACK_MESSAGE_KEPT = 1024;
/** Cluster and user agent as kept. */
const LABEL_KEPT = 256;

export interface NodeStatusEvents {
  ack: [nodeId: string, typeUrl: string, version: string];
  nack: [nodeId: string, typeUrl: string, nack: NackRecord];
  connect: [nodeId: string, streamId: number];
  disconnect: [nodeId: string, streamId: number];
}

/**
 * What every connected node has been sent, has applied and has rejected, per type: one
 * implementation of XdsCallbacks, the source of `meshaccel status` and of the library's
 * ack/nack events. Records of disconnected nodes are kept (marked with zero streams) so a
 * crash-looping proxy's last NACK stays visible, up to a count and a total size, so that no
 * number of departed clients can make `GET /status` unbounded. Strings are kept cut to a
 * bound; escaping them is the printer's job.
 */
export class NodeStatusRegistry extends EventEmitter<NodeStatusEvents> implements XdsCallbacks {
  private readonly nodes = new Map<string, NodeRecord>();
  /** Nodes with no open stream, and their estimated bytes; kept as totals so closing a stream is O(1), not O(nodes). */
  private disconnected = 0;
  private disconnectedBytes = 0;

  constructor(
    private readonly retainDisconnected = 1000,
    private readonly retainDisconnectedBytes = 4 * 1024 * 1024,
  ) {
    super();
  }

  onStreamOpen(stream: StreamInfo, node: NodeInfo, key: string): void {
    this.streamOpened(stream.streamId, node.id, key, node.cluster, node.userAgentName, stream.peer, stream.protocol);
  }

  onStreamClose(stream: StreamInfo, node: NodeInfo | undefined): void {
    if (node) this.streamClosed(stream.streamId, node.id);
  }

  onRequest(_stream: StreamInfo, node: NodeInfo, request: RequestInfo): void {
    this.subscribed(node.id, request.typeUrl, request.wildcard, request.subscribedNames);
  }

  onResponse(_stream: StreamInfo, node: NodeInfo, response: ResponseInfo): void {
    this.sent(node.id, response.typeUrl, response.version);
  }

  onAck(_stream: StreamInfo, node: NodeInfo, typeUrl: string, version: string): void {
    this.acked(node.id, typeUrl, version);
  }

  onNack(_stream: StreamInfo, node: NodeInfo, typeUrl: string, nack: NackRecord): void {
    this.nacked(node.id, typeUrl, nack);
  }

  streamOpened(streamId: number, nodeId: string, key: string, cluster: string, userAgent: string, peer: string, protocol: string): void {
    let rec = this.nodes.get(nodeId);
    const now = Date.now();
    if (!rec) {
      rec = {
        nodeId,
        key,
        cluster: cluster.slice(0, LABEL_KEPT),
        userAgent: userAgent.slice(0, LABEL_KEPT),
        streams: new Map(),
        connectedAt: now,
        lastRequestAt: now,
        types: new Map(),
        bytes: 0,
      };
      this.nodes.set(nodeId, rec);
    } else if (rec.streams.size === 0) {
      this.disconnected--;
      this.disconnectedBytes -= rec.bytes;
    }
    if (rec.streams.size === 0) rec.connectedAt = now;
    rec.key = key;
    rec.streams.set(streamId, { peer, protocol });
    this.emit('connect', nodeId, streamId);
  }

  streamClosed(streamId: number, nodeId: string): void {
    const rec = this.nodes.get(nodeId);
    if (!rec || !rec.streams.delete(streamId)) return;
    if (rec.streams.size === 0) {
      this.disconnected++;
      rec.bytes = recordBytes(rec);
      this.disconnectedBytes += rec.bytes;
    }
    this.emit('disconnect', nodeId, streamId);
    if (this.disconnected > this.retainDisconnected || this.disconnectedBytes > this.retainDisconnectedBytes) this.evictDisconnected();
  }

  /** Forgets the longest-known disconnected nodes beyond the retention limit. */
  private evictDisconnected(): void {
    for (const [id, r] of this.nodes) {
      if (this.disconnected <= this.retainDisconnected && this.disconnectedBytes <= this.retainDisconnectedBytes) return;
      if (r.streams.size === 0) {
        this.nodes.delete(id);
        this.disconnected--;
        this.disconnectedBytes -= r.bytes;
      }
    }
  }

  private type(nodeId: string, typeUrl: string): TypeRecord | undefined {
    const rec = this.nodes.get(nodeId);
    if (!rec) return undefined;
    rec.lastRequestAt = Date.now();
    let t = rec.types.get(typeUrl);
    // Every field from the start: V8 then keeps them in the object, not in a property array added later.
    if (!t)
      rec.types.set(
        typeUrl,
        (t = {
          sentVersion: undefined,
          sentAt: undefined,
          ackedVersion: undefined,
          ackedAt: undefined,
          lastNack: undefined,
          wildcard: false,
          subscribedNames: 0,
        }),
      );
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
    const kept =
      nack.message.length > NACK_MESSAGE_KEPT
        ? { ...nack, message: `${nack.message.slice(0, NACK_MESSAGE_KEPT)}...(${nack.message.length - NACK_MESSAGE_KEPT} more characters)` }
        : nack;
    t.lastNack = kept;
    this.emit('nack', nodeId, typeUrl, kept);
  }

  get(nodeId: string): NodeStatus | undefined {
    const rec = this.nodes.get(nodeId);
    return rec && toStatus(rec);
  }

  list(): NodeStatus[] {
    return [...this.nodes.values()].map(toStatus).sort((a, b) => a.nodeId.localeCompare(b.nodeId));
  }
}

/** A record's size as JSON and in memory, roughly: strings at two bytes a character plus fixed costs. */
function recordBytes(rec: NodeRecord): number {
  let n = 400 + 2 * (rec.nodeId.length + rec.key.length + rec.cluster.length + rec.userAgent.length);
  for (const [typeUrl, t] of rec.types) {
    n += 200 + 2 * (typeUrl.length + (t.sentVersion?.length ?? 0) + (t.ackedVersion?.length ?? 0));
    if (t.lastNack) n += 100 + 2 * (t.lastNack.message.length + t.lastNack.version.length + t.lastNack.nonce.length);
  }
  return n;
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
