import * as grpc from '@grpc/grpc-js';
import { createHash, randomBytes } from 'crypto';
import * as http2 from 'http2';
import type { NodeInfo, SnapshotSource } from './cache';
import type { ResponseInfo, StreamInfo, XdsCallbacks } from './callbacks';
import { NodeClaims, RequestBudget, type ClaimHolder } from './flow';
import { checkLength, checkNode, LimitError, type StreamLimits } from './limits';
import { BadRequestError } from './requests';
import type { Snapshot } from './snapshot';
import { TypeUrl } from '../resource/type-urls';
import { certificateIdentities } from './peer-certificate';
import { clientText, oneLine, type LeveledLogger, type Logger } from '../log';

export type { Logger } from '../log';
export type { StreamLimits } from './limits';

export type XdsCall = grpc.ServerDuplexStream<Buffer, Buffer>;

/**
 * Decides whether a node may receive configuration on this call; returns a denial reason (its
 * client parts escaped with clientText). Asked on the first request, and again before each new
 * snapshot is pushed: a denial then withholds that snapshot and the stream keeps the last.
 */
export type NodeAuthorizer = (node: NodeInfo, call: XdsCall) => string | undefined;

export interface SessionContext {
  source: SnapshotSource;
  callbacks: Required<XdsCallbacks>;
  /** Node ids held by open streams, with the identity they connected with. */
  claims: NodeClaims;
  /** Type URLs the server answers for; a request for any other ends the stream. */
  knownTypes: ReadonlySet<string>;
  authorize?: NodeAuthorizer;
  limits: StreamLimits;
  /** Pre-framed ControlPlane identifier fields for SotW and Delta responses. */
  controlPlane?: { sotw: Buffer; delta: Buffer };
  log: LeveledLogger;
  nextStreamId(): number;
}

/**
 * gRPC status details are bounded so the trailer carrying them always fits what a client
 * accepts (gRPC percent-encodes them: 1,024 characters are at most ~9 KB on the wire).
 */
export const MAX_STATUS_DETAILS = 1024;

/**
 * Status details from a message whose client parts were quoted with clientText(): one line and
 * cut to the bound, whatever the escapes grew it to.
 */
export function statusDetails(message: string): string {
  return oneLine(message, MAX_STATUS_DETAILS);
}

/** What identifies a node's binding: two streams with one node id must agree on it. */
export function nodeFingerprint(node: NodeInfo): string {
  return createHash('sha256')
    .update(JSON.stringify([node.cluster, node.metadata]))
    .digest('base64url')
    .slice(0, 22);
}

/**
 * Nonces are unique per stream (the stream id) and differ between server runs (the prefix), so
 * a client reconnecting to a restarted server never sends a nonce that happens to be current.
 */
const NO_IDENTITIES: readonly string[] = [];

const NONCE_PREFIX = `${randomBytes(4).toString('hex')}-`;

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
export abstract class StreamSession<TypeState> implements ClaimHolder {
  /** Per-type protocol state in make-before-break order; among equals, first asked first. */
  private readonly types = new Map<string, TypeState>();
  protected readonly id: number;
  protected node?: NodeInfo;
  protected snapshot?: Snapshot;
  private unwatch?: () => void;
  private claimed = false;
  /** Its claim was contested once already; a second conflict is refused at once. */
  private contested = false;
  private peerIdentities?: readonly string[];
  private closed = false;
  private nonceCounter = 0;
  protected readonly peer: string;
  protected readonly info: StreamInfo;

  // Flow control. Response bytes handed to gRPC and not yet flushed to the connection; while
  // they exceed the write buffer, or gRPC asked us to wait for 'drain', nothing more is
  // written: each type due is remembered (the newest state wins, nothing queues) and pushed
  // from the then-current snapshot once the client reads again.
  private unflushedBytes = 0;
  private awaitingDrain = false;
  /** Created on first need: most streams are never blocked, and thousands of them are idle. */
  private due?: Map<string, boolean>;
  private stallTimer?: NodeJS.Timeout;
  private readonly budget: RequestBudget;
  private resumeTimer?: NodeJS.Timeout;

  constructor(
    protected readonly call: XdsCall,
    protected readonly ctx: SessionContext,
    /** Set on the per-type services (LDS, CDS, ...), where requests may omit type_url. */
    protected readonly fixedTypeUrl: string | undefined,
    private readonly protocol: 'sotw' | 'delta',
  ) {
    this.id = ctx.nextStreamId();
    this.peer = call.getPeer();
    this.info = { streamId: this.id, protocol, peer: this.peer, typeUrl: fixedTypeUrl };
    this.budget = new RequestBudget(ctx.limits);
    // A paused stream would otherwise let grpc-js read up to 16 more requests into its buffer.
    const readable = (call as unknown as { _readableState?: { highWaterMark?: number } })._readableState;
    if (readable && typeof readable.highWaterMark === 'number') readable.highWaterMark = 1;
    call.on('data', (bytes: Buffer) => this.onData(bytes));
    call.on('end', () => this.finish(true));
    const gone = (): void => this.finish(false);
    call.on('cancelled', gone);
    call.on('error', gone);
    call.on('close', gone);
  }

  protected abstract handle(bytes: Buffer): void;
  /**
   * Push what is due for one subscribed type (`force`: answer even if unchanged). Called on a
   * new snapshot and when a type deferred by flow control may be written again.
   */
  protected abstract pushType(typeUrl: string, state: TypeState, force: boolean): void;

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
    for (const [typeUrl, state] of this.types) if (this.mayWrite(typeUrl, false)) this.pushType(typeUrl, state, false);
  }

  private onData(bytes: Buffer): void {
    if (this.closed) return;
    // Requests are paid for in bytes and in count; a stream in debt is not read until it is
    // repaid, so a client flooding requests delays itself, not the streams it shares a loop with.
    const wait = this.budget.spend(bytes.length);
    try {
      this.handle(bytes);
    } catch (err) {
      if (err instanceof ContestedClaim && !this.contested) {
        this.contestClaim(err.node, bytes);
        return;
      }
      const { code, details } = failureStatus(err, this.ctx.log, `xds stream ${this.id}`);
      this.fail(code, details);
      return;
    }
    if (wait > 0 && !this.closed && !this.resumeTimer) {
      this.call.pause();
      this.resumeTimer = setTimeout(() => {
        this.resumeTimer = undefined;
        if (!this.closed) this.call.resume();
      }, wait);
    }
  }

  /**
   * The node id is held by streams with another binding. While their liveness is checked this
   * stream is not read; then its first request is handled again: admitted if the holders were
   * evicted, refused if they answered.
   */
  private contestClaim(node: NodeInfo, bytes: Buffer): void {
    this.contested = true;
    this.call.pause();
    const describe = `by stream ${this.id} from ${this.peer}`;
    this.ctx.claims.contest(node.id, this, this.ctx.limits.claimProbeTimeoutMs, describe).then(
      (outcome) => {
        if (this.closed) return;
        this.call.resume();
        if (outcome === 'alive') {
          this.fail(grpc.status.FAILED_PRECONDITION, `${conflictingClaim(node).message} (that stream's connection answered a liveness check)`);
          return;
        }
        this.ctx.log.info(`xds stream ${this.id} from ${this.peer}: node "${clientText(node.id)}" taken over from its ${outcome} stream`);
        this.onData(bytes);
      },
      (err: unknown) => this.fail(grpc.status.INTERNAL, `claim check failed: ${(err as Error).message}`),
    );
  }

  certificateIdentities(): readonly string[] {
    // Read at admission: a connection that is closing no longer shows its certificate.
    return this.peerIdentities ?? NO_IDENTITIES;
  }

  answersPing(timeoutMs: number): Promise<boolean> {
    const session = http2StreamOf(this.call)?.session;
    if (!session || session.destroyed || session.closed) return Promise.resolve(false);
    return new Promise((resolve) => {
      const timer = setTimeout(() => answer(false), timeoutMs);
      const answer = (alive: boolean): void => {
        clearTimeout(timer);
        resolve(alive);
      };
      try {
        // false: too many pings outstanding; the connection may well be alive, so it counts as such.
        if (!session.ping((err) => answer(!err))) answer(true);
      } catch {
        answer(false);
      }
    });
  }

  evict(dead: boolean, message: string): void {
    const stream = http2StreamOf(this.call);
    this.fail(dead ? grpc.status.UNAVAILABLE : grpc.status.ABORTED, message);
    // A dead connection would hold its streams until keepalive gives up on it.
    if (dead && stream?.session && !stream.session.destroyed) stream.session.destroy();
  }

  /** Tells observers that a request was applied. */
  protected requested(typeUrl: string, versionInfo: string, responseNonce: string, wildcard: boolean, subscribedNames: number, bytes: number): void {
    if (this.node) this.ctx.callbacks.onRequest(this.info, this.node, { typeUrl, versionInfo, responseNonce, wildcard, subscribedNames, bytes });
  }

  /**
   * Whether a response for `typeUrl` may be written now. If not, the type is marked due (with
   * `force` kept if any deferred push had it) and pushed again when the client has read.
   */
  protected mayWrite(typeUrl: string, force: boolean): boolean {
    if (!this.writeBlocked) return true;
    const due = (this.due ??= new Map());
    due.set(typeUrl, (due.get(typeUrl) ?? false) || force);
    return false;
  }

  private get writeBlocked(): boolean {
    return this.awaitingDrain || this.unflushedBytes >= this.ctx.limits.writeBufferBytes;
  }

  /** Pushes the types deferred by flow control, in make-before-break order, while writing is allowed. */
  private flushDue(): void {
    if (this.closed || this.writeBlocked) return;
    this.clearStallTimer();
    const due = this.due;
    if (!due || due.size === 0) return;
    for (const [typeUrl, state] of this.types) {
      if (this.writeBlocked || this.closed) break;
      const force = due.get(typeUrl);
      if (force === undefined) continue;
      due.delete(typeUrl);
      try {
        this.pushType(typeUrl, state, force);
      } catch (err) {
        this.fail(grpc.status.INTERNAL, `push failed: ${(err as Error).message}`);
        return;
      }
    }
  }

  private startStallTimer(): void {
    if (this.stallTimer || this.closed) return;
    this.stallTimer = setTimeout(() => {
      this.stallTimer = undefined;
      if (!this.writeBlocked) return;
      const seconds = Math.round(this.ctx.limits.stallTimeoutMs / 100) / 10;
      this.fail(grpc.status.RESOURCE_EXHAUSTED, `client read none of ${this.unflushedBytes} bytes of responses for ${seconds} s; closing the stream`);
      // The status queues behind the bytes the client does not read, so it may never leave, and
      // gRPC would hold those bytes for as long as the connection lives: reset the stream.
      resetHttp2Stream(this.call);
    }, this.ctx.limits.stallTimeoutMs);
  }

  private clearStallTimer(): void {
    if (this.stallTimer) clearTimeout(this.stallTimer);
    this.stallTimer = undefined;
  }

  /** The node from the first request; later requests may omit it but must not change it. */
  protected identify(requested: NodeInfo | undefined): NodeInfo {
    if (this.node) {
      if (requested && requested.id && requested.id !== this.node.id) {
        throw new StreamError(grpc.status.INVALID_ARGUMENT, `node id changed mid-stream from "${clientText(this.node.id)}" to "${clientText(requested.id)}"`);
      }
      return this.node;
    }
    const node = admitNode(this.ctx, requested, this.call, 'the first request on a stream');
    const identities = certificateIdentities(this.call);
    if (identities.length > 0) this.peerIdentities = identities;
    // Checked before the source sees the node: asking for its key may rebuild its snapshot.
    const fingerprint = nodeFingerprint(node);
    if (this.ctx.claims.conflict(node.id, fingerprint)) throw new ContestedClaim(node);
    this.ctx.claims.claim(node.id, fingerprint, this);
    this.claimed = true;
    this.node = node;
    const key = this.ctx.source.nodeKey(node);
    this.ctx.callbacks.onStreamOpen(this.info, node, key);
    this.ctx.log.debug(
      `xds stream ${this.id} (${this.protocol}${this.fixedTypeUrl ? ` ${this.fixedTypeUrl}` : ''}) from ${this.peer}: node "${clientText(node.id)}", key "${clientText(key)}"`,
    );
    this.snapshot = this.ctx.source.getSnapshot(key);
    this.unwatch = this.ctx.source.watch(key, (s) => {
      if (this.closed) return;
      // What the node may be served can depend on the configuration (under mTLS, which
      // workloads its certificate covers): one it may not have is withheld, the last stays.
      const denial = this.ctx.authorize?.(node, this.call);
      if (denial) {
        this.ctx.log.warn(`xds stream ${this.id} from ${this.peer}: new configuration withheld, the last one stays: ${statusDetails(denial)}`);
        return;
      }
      this.snapshot = s;
      try {
        this.onSnapshot();
      } catch (err) {
        this.ctx.log.warn(`xds stream ${this.id} (${clientText(node.id)}): push failed: ${(err as Error).message}`);
        this.fail(grpc.status.INTERNAL, `push failed: ${(err as Error).message}`);
      }
    });
    return node;
  }

  protected typeUrlOf(requested: string): string {
    checkLength('type_url', requested, this.ctx.limits.maxTypeUrlLength);
    const typeUrl = this.fixedTypeUrl ?? requested;
    if (!typeUrl) throw new StreamError(grpc.status.INVALID_ARGUMENT, 'request has no type_url');
    if (this.fixedTypeUrl && requested && requested !== this.fixedTypeUrl) {
      throw new StreamError(grpc.status.INVALID_ARGUMENT, `type_url ${clientText(requested)} sent on the ${this.fixedTypeUrl} service`);
    }
    if (!this.ctx.knownTypes.has(typeUrl)) {
      throw new StreamError(
        grpc.status.INVALID_ARGUMENT,
        `unknown type_url "${clientText(typeUrl)}"; this server serves ${[...this.ctx.knownTypes].join(', ')}`,
      );
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
    return `${NONCE_PREFIX}${this.id}-${++this.nonceCounter}`;
  }

  protected get isClosed(): boolean {
    return this.closed;
  }

  /**
   * Writes a response (callers first asked mayWrite) and tells observers. `started` is when
   * the push began (performance.now()), for the response's duration.
   */
  protected write(bytes: Buffer, response: Omit<ResponseInfo, 'bytes' | 'durationMs'>, started: number): void {
    if (this.closed) return;
    const length = bytes.length;
    this.unflushedBytes += length;
    // A client gone mid-push surfaces as an error or 'cancelled' event, handled by finish();
    // write itself must never throw into the snapshot fan-out that called us.
    try {
      const more = this.call.write(bytes, () => {
        this.unflushedBytes -= length;
        // Progress: a client that reads slowly through a large response is not stalled.
        if (this.stallTimer) {
          this.clearStallTimer();
          if (this.writeBlocked) this.startStallTimer();
        }
        this.flushDue();
      });
      if (!more && !this.awaitingDrain) {
        this.awaitingDrain = true;
        this.call.once('drain', () => {
          this.awaitingDrain = false;
          this.flushDue();
        });
      }
    } catch (err) {
      this.ctx.log.warn(`xds stream ${this.id}: write failed: ${(err as Error).message}`);
      this.finish(false);
      return;
    }
    if (this.writeBlocked) this.startStallTimer();
    if (this.node) this.ctx.callbacks.onResponse(this.info, this.node, { ...response, bytes: length, durationMs: performance.now() - started });
  }

  protected fail(code: grpc.status, message: string): void {
    if (this.closed) return;
    const details = statusDetails(message);
    this.ctx.log.warn(`xds stream ${this.id}${this.node ? ` (${clientText(this.node.id)})` : ''} from ${this.peer}: ${grpc.status[code]}: ${details}`);
    this.finish(false);
    this.call.emit('error', { code, details } as grpc.ServiceError);
  }

  private finish(clientEnded: boolean): void {
    if (this.closed) return;
    this.closed = true;
    this.unwatch?.();
    this.unwatch = undefined;
    this.clearStallTimer();
    if (this.resumeTimer) clearTimeout(this.resumeTimer);
    this.resumeTimer = undefined;
    this.due = undefined;
    if (this.claimed && this.node) this.ctx.claims.release(this.node.id, this);
    this.claimed = false;
    this.ctx.callbacks.onStreamClose(this.info, this.node);
    this.ctx.log.debug(`xds stream ${this.id} closed${clientEnded ? ' by the client' : ''}`);
    if (clientEnded) this.call.end();
  }
}

/**
 * Resets the HTTP/2 stream under a grpc-js server call (RST_STREAM is not flow-controlled, so
 * it reaches a client that reads nothing). grpc-js has no public way to abort a server call.
 */
function resetHttp2Stream(call: XdsCall): void {
  const stream = http2StreamOf(call);
  if (stream && !stream.destroyed) stream.close(http2.constants.NGHTTP2_CANCEL);
}

/**
 * The HTTP/2 stream under a grpc-js server call. grpc-js exposes neither it nor its session;
 * this follows its internal chain (call -> interceptors -> base call -> stream) and returns
 * undefined if that shape ever changes.
 */
function http2StreamOf(call: XdsCall): http2.ServerHttp2Stream | undefined {
  let link: unknown = (call as unknown as { call?: unknown }).call;
  for (let depth = 0; depth < 8 && link && typeof link === 'object'; depth++) {
    const stream = (link as { stream?: { close?: unknown } }).stream;
    if (stream && typeof stream.close === 'function') return stream as http2.ServerHttp2Stream;
    link = (link as { nextCall?: unknown }).nextCall;
  }
  return undefined;
}

function conflictingClaim(node: NodeInfo): StreamError {
  return new StreamError(
    grpc.status.FAILED_PRECONDITION,
    `node "${clientText(node.id)}" is connected on another stream with a different cluster or metadata; a node id keeps its binding until all its streams have closed`,
  );
}

/** Admission, the same for streams and fetches: a node id is required, the authorizer may refuse. */
export function admitNode(ctx: SessionContext, node: NodeInfo | undefined, call: XdsCall, request: string): NodeInfo {
  if (!node?.id) throw new StreamError(grpc.status.INVALID_ARGUMENT, `${request} must carry node.id`);
  checkNode(node, ctx.limits);
  const denial = ctx.authorize?.(node, call);
  if (denial) throw new StreamError(grpc.status.PERMISSION_DENIED, denial);
  return node;
}

/** The status a failed request ends with; anything but a protocol error is a bug, so it is logged. */
export function failureStatus(err: unknown, log: Logger, context: string): { code: grpc.status; details: string } {
  if (err instanceof StreamError || err instanceof LimitError) return { code: err.code, details: statusDetails(err.message) };
  if (err instanceof BadRequestError) return { code: grpc.status.INVALID_ARGUMENT, details: statusDetails(err.message) };
  log.warn(`${context}: ${oneLine(String((err as Error).stack ?? err), 4 * MAX_STATUS_DETAILS)}`);
  return { code: grpc.status.INTERNAL, details: statusDetails(`internal error: ${(err as Error).message}`) };
}

export class StreamError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Thrown by identify(): the node id is held with another binding. On a stream's first conflict
 * the holders' liveness decides; otherwise it ends the stream as the refusal it carries.
 */
class ContestedClaim extends StreamError {
  constructor(readonly node: NodeInfo) {
    const refusal = conflictingClaim(node);
    super(refusal.code, refusal.message);
  }
}
