import * as grpc from '@grpc/grpc-js';
import { randomBytes } from 'crypto';
import type { NodeInfo, SnapshotSource } from './cache';
import type { NodeStatusRegistry } from './node-status';
import { BadRequestError } from './requests';
import type { Snapshot } from './snapshot';
import { TypeUrl } from '../resource/type-urls';

export type XdsCall = grpc.ServerDuplexStream<Buffer, Buffer>;

/** Decides whether a node may receive configuration on this call; returns a denial reason. */
export type NodeAuthorizer = (node: NodeInfo, call: XdsCall) => string | undefined;

export interface StreamLimits {
  /** Names one stream may hold subscribed for one type. */
  maxNamesPerType: number;
  /** Distinct type URLs one stream may subscribe to. */
  maxTypesPerStream: number;
}

export interface Logger {
  info(message: string): void;
  warn(message: string): void;
}

export interface SessionContext {
  source: SnapshotSource;
  registry: NodeStatusRegistry;
  /** Type URLs the server answers for; a request for any other ends the stream. */
  knownTypes: ReadonlySet<string>;
  authorize?: NodeAuthorizer;
  limits: StreamLimits;
  /** Pre-framed ControlPlane identifier fields for SotW and Delta responses. */
  controlPlane?: { sotw: Buffer; delta: Buffer };
  log: Logger;
  nextStreamId(): number;
}

/**
 * Make-before-break order for ADS pushes (Envoy's xDS protocol, "eventual consistency
 * considerations"): clusters and their endpoints before the listeners that use them, listeners
 * before routes; secrets and extension configs before what references them.
 */
const PUSH_ORDER: readonly string[] = [
  TypeUrl.Secret,
  TypeUrl.Cluster,
  TypeUrl.ClusterLoadAssignment,
  TypeUrl.ExtensionConfig,
  TypeUrl.Listener,
  TypeUrl.RouteConfiguration,
  TypeUrl.ScopedRouteConfiguration,
  TypeUrl.VirtualHost,
  TypeUrl.Runtime,
];

function pushRank(typeUrl: string): number {
  const i = PUSH_ORDER.indexOf(typeUrl);
  return i < 0 ? PUSH_ORDER.length : i;
}

/**
 * What SotW and Delta streams share: identifying and authorising the node on its first
 * request, following the node's snapshot, writing responses, and tidying up however the
 * stream ends. Subclasses hold the per-type protocol state.
 */
export abstract class StreamSession<TypeState> {
  /** Per-type protocol state in make-before-break order; among equals, first asked first. */
  private readonly types = new Map<string, TypeState>();
  protected readonly id: number;
  protected node?: NodeInfo;
  protected snapshot?: Snapshot;
  private unwatch?: () => void;
  private closed = false;
  private nonceCounter = 0;
  private readonly noncePrefix = randomBytes(4).toString('hex');
  protected readonly peer: string;

  constructor(
    protected readonly call: XdsCall,
    protected readonly ctx: SessionContext,
    /** Set on the per-type services (LDS, CDS, ...), where requests may omit type_url. */
    protected readonly fixedTypeUrl: string | undefined,
    private readonly protocol: 'sotw' | 'delta',
  ) {
    this.id = ctx.nextStreamId();
    this.peer = call.getPeer();
    call.on('data', (bytes: Buffer) => this.onData(bytes));
    call.on('end', () => this.finish(true));
    call.on('cancelled', () => this.finish(false));
    call.on('error', () => this.finish(false));
    call.on('close', () => this.finish(false));
  }

  protected abstract handle(bytes: Buffer): void;
  /** Push what a new snapshot changed for one subscribed type. */
  protected abstract pushOnSnapshot(typeUrl: string, state: TypeState): void;

  /** The state of a type, created (within the per-stream type limit) on its first request. */
  protected typeState(typeUrl: string, create: () => TypeState): { state: TypeState; first: boolean } {
    const existing = this.types.get(typeUrl);
    if (existing) return { state: existing, first: false };
    this.checkTypeCount(this.types.size + 1);
    const state = create();
    this.types.set(typeUrl, state);
    // Sorted here, once per type, rather than on every snapshot: a Map iterates in insertion
    // order, so the types to push after this one move behind it.
    const rank = pushRank(typeUrl);
    for (const [t, s] of [...this.types]) {
      if (pushRank(t) > rank) {
        this.types.delete(t);
        this.types.set(t, s);
      }
    }
    return { state, first: true };
  }

  private onSnapshot(): void {
    for (const [typeUrl, state] of this.types) this.pushOnSnapshot(typeUrl, state);
  }

  private onData(bytes: Buffer): void {
    if (this.closed) return;
    try {
      this.handle(bytes);
    } catch (err) {
      const { code, details } = failureStatus(err, this.ctx.log, `xds stream ${this.id}`);
      this.fail(code, details);
    }
  }

  /** The node from the first request; later requests may omit it but must not change it. */
  protected identify(requested: NodeInfo | undefined): NodeInfo {
    if (this.node) {
      if (requested && requested.id && requested.id !== this.node.id) {
        throw new StreamError(grpc.status.INVALID_ARGUMENT, `node id changed mid-stream from "${this.node.id}" to "${requested.id}"`);
      }
      return this.node;
    }
    const node = admitNode(this.ctx, requested, this.call, 'the first request on a stream');
    this.node = node;
    const key = this.ctx.source.nodeKey(node);
    this.ctx.registry.streamOpened(this.id, node.id, key, node.cluster, node.userAgentName, this.peer, this.protocol);
    this.snapshot = this.ctx.source.getSnapshot(key);
    this.unwatch = this.ctx.source.watch(key, (s) => {
      if (this.closed) return;
      this.snapshot = s;
      try {
        this.onSnapshot();
      } catch (err) {
        this.ctx.log.warn(`xds stream ${this.id} (${node.id}): push failed: ${(err as Error).message}`);
        this.fail(grpc.status.INTERNAL, `push failed: ${(err as Error).message}`);
      }
    });
    return node;
  }

  protected typeUrlOf(requested: string): string {
    const typeUrl = this.fixedTypeUrl ?? requested;
    if (!typeUrl) throw new StreamError(grpc.status.INVALID_ARGUMENT, 'request has no type_url');
    if (this.fixedTypeUrl && requested && requested !== this.fixedTypeUrl) {
      throw new StreamError(grpc.status.INVALID_ARGUMENT, `type_url ${requested} sent on the ${this.fixedTypeUrl} service`);
    }
    if (!this.ctx.knownTypes.has(typeUrl)) {
      throw new StreamError(grpc.status.INVALID_ARGUMENT, `unknown type_url "${typeUrl}"; this server serves ${[...this.ctx.knownTypes].join(', ')}`);
    }
    return typeUrl;
  }

  protected checkNames(typeUrl: string, count: number): void {
    if (count > this.ctx.limits.maxNamesPerType) {
      throw new StreamError(grpc.status.RESOURCE_EXHAUSTED, `too many subscribed ${typeUrl} names (${count} > ${this.ctx.limits.maxNamesPerType})`);
    }
  }

  private checkTypeCount(count: number): void {
    if (count > this.ctx.limits.maxTypesPerStream) {
      throw new StreamError(grpc.status.RESOURCE_EXHAUSTED, `too many type URLs on one stream (${count} > ${this.ctx.limits.maxTypesPerStream})`);
    }
  }

  protected nextNonce(): string {
    return `${this.noncePrefix}-${++this.nonceCounter}`;
  }

  protected get isClosed(): boolean {
    return this.closed;
  }

  protected write(bytes: Buffer): void {
    if (this.closed) return;
    // A client gone mid-push surfaces as an error or 'cancelled' event, handled by finish();
    // write itself must never throw into the snapshot fan-out that called us.
    try {
      this.call.write(bytes);
    } catch (err) {
      this.ctx.log.warn(`xds stream ${this.id}: write failed: ${(err as Error).message}`);
      this.finish(false);
    }
  }

  protected fail(code: grpc.status, message: string): void {
    if (this.closed) return;
    this.ctx.log.warn(`xds stream ${this.id}${this.node ? ` (${this.node.id})` : ''} from ${this.peer}: ${grpc.status[code]}: ${message}`);
    this.finish(false);
    this.call.emit('error', { code, details: message } as grpc.ServiceError);
  }

  private finish(clientEnded: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.unwatch?.();
    this.unwatch = undefined;
    if (this.node) this.ctx.registry.streamClosed(this.id, this.node.id);
    if (clientEnded) this.call.end();
  }
}

/** Admission, the same for streams and fetches: a node id is required, the authorizer may refuse. */
export function admitNode(ctx: SessionContext, node: NodeInfo | undefined, call: XdsCall, request: string): NodeInfo {
  if (!node?.id) throw new StreamError(grpc.status.INVALID_ARGUMENT, `${request} must carry node.id`);
  const denial = ctx.authorize?.(node, call);
  if (denial) throw new StreamError(grpc.status.PERMISSION_DENIED, denial);
  return node;
}

/** The status a failed request ends with; anything but a protocol error is a bug, so it is logged. */
export function failureStatus(err: unknown, log: Logger, context: string): { code: grpc.status; details: string } {
  if (err instanceof StreamError) return { code: err.code, details: err.message };
  if (err instanceof BadRequestError) return { code: grpc.status.INVALID_ARGUMENT, details: err.message };
  log.warn(`${context}: ${(err as Error).stack ?? err}`);
  return { code: grpc.status.INTERNAL, details: `internal error: ${(err as Error).message}` };
}

export class StreamError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}
