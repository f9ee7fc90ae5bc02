import { checkNackMessage, checkNames } from './limits';
import { decodeDeltaRequest } from './requests';
import type { EncodedResource } from '../resource/encoded';
import { StreamSession, type SessionContext, type XdsCall } from './stream-session';
import { Subscription } from './subscription';
import { deltaResponse } from './wire';

interface DeltaTypeState {
  subscription: Subscription;
  /**
   * name -> version the client has, or will have once it ACKs what is in flight. Seeded from
   * initial_resource_versions on reconnect. Updated when sent (not when ACKed) so a NACKed
   * version is not pushed again until the resource changes.
   */
  known: Map<string, string>;
  /** Names we told the client do not exist, so we do not repeat it on every push. */
  announcedAbsent: Set<string>;
  /** Responses awaiting ACK/NACK: nonce -> system version they carried. */
  inFlight: Map<string, string>;
  /** The first response for a wildcard subscription is due even if it is empty. */
  owesInitialResponse: boolean;
}

/** Responses whose ACK never came are forgotten past this, so a silent client cannot grow it. */
const MAX_IN_FLIGHT = 64;

/** One incremental (Delta) xDS stream. */
export class DeltaSession extends StreamSession<DeltaTypeState> {
  constructor(call: XdsCall, ctx: SessionContext, fixedTypeUrl?: string) {
    super(call, ctx, fixedTypeUrl, 'delta');
  }

  protected handle(bytes: Buffer): void {
    const req = decodeDeltaRequest(bytes);
    const node = this.identify(req.node);
    const typeUrl = this.typeUrlOf(req.typeUrl);
    const limits = this.ctx.limits;
    checkNames('resource_names_subscribe', req.subscribe, req.subscribe.length, limits);
    checkNames('resource_names_unsubscribe', req.unsubscribe, req.unsubscribe.length, limits);
    checkNames('initial_resource_versions', req.initialResourceVersions.keys(), req.initialResourceVersions.size, limits);
    if (req.errorDetail) checkNackMessage(req.errorDetail.message, limits);

    const { state, first } = this.typeState(typeUrl, () => ({
      subscription: new Subscription(typeUrl),
      known: new Map(req.initialResourceVersions),
      announcedAbsent: new Set<string>(),
      inFlight: new Map<string, string>(),
      owesInitialResponse: true,
    }));

    if (req.responseNonce) {
      const version = state.inFlight.get(req.responseNonce);
      // An unknown nonce is stale (or forged): neither ACK nor NACK.
      if (version !== undefined) {
        state.inFlight.delete(req.responseNonce);
        if (req.errorDetail) {
          this.ctx.callbacks.onNack(this.info, node, typeUrl, {
            version,
            nonce: req.responseNonce,
            code: req.errorDetail.code,
            message: req.errorDetail.message,
            at: new Date(),
          });
        } else {
          this.ctx.callbacks.onAck(this.info, node, typeUrl, version);
        }
      }
    }

    const sub = state.subscription;
    const added = sub.subscribe(req.subscribe, first);
    for (const name of sub.unsubscribe(req.unsubscribe)) {
      // The client forgets what it unsubscribed from; a later subscribe must re-send it.
      if (!sub.wants(name)) state.known.delete(name);
      state.announcedAbsent.delete(name);
    }
    // Re-subscribing to a name makes a previous "does not exist" answer due again.
    for (const name of added) state.announcedAbsent.delete(name);
    this.checkNames(typeUrl, sub.size);
    this.requested(typeUrl, '', req.responseNonce, sub.wildcard, sub.size, bytes.length);
    if (this.mayWrite(typeUrl, false)) this.pushType(typeUrl, state);
  }

  protected pushType(typeUrl: string, state: DeltaTypeState): void {
    const started = performance.now();
    const snapshot = this.snapshot;
    if (!snapshot || this.isClosed || !this.node) return;
    const sub = state.subscription;
    const current = snapshot.resources(typeUrl);

    const updated: EncodedResource[] = [];
    const removed: string[] = [];
    if (sub.wildcard) {
      for (const r of current.values()) if (state.known.get(r.name) !== r.version) updated.push(r);
    }
    for (const name of sub.names()) {
      if (sub.wildcard && current.has(name)) continue; // already considered above
      const r = current.get(name);
      if (r) {
        if (state.known.get(name) !== r.version) updated.push(r);
      } else if (!state.known.has(name) && !state.announcedAbsent.has(name)) {
        // The protocol answers a subscription to a resource that does not exist by listing it
        // in removed_resources, so the client need not wait for its fetch timeout.
        removed.push(name);
      }
    }
    for (const name of state.known.keys()) {
      if (!current.has(name) && sub.wants(name)) removed.push(name);
    }

    const owed = state.owesInitialResponse && sub.wildcard;
    state.owesInitialResponse = false;
    if (updated.length === 0 && removed.length === 0 && !owed) return;

    for (const r of updated) {
      state.known.set(r.name, r.version);
      state.announcedAbsent.delete(r.name);
    }
    for (const name of removed) {
      state.known.delete(name);
      state.announcedAbsent.add(name);
    }
    const version = snapshot.version(typeUrl);
    const nonce = this.nextNonce();
    state.inFlight.set(nonce, version);
    if (state.inFlight.size > MAX_IN_FLIGHT) state.inFlight.delete(state.inFlight.keys().next().value as string);
    this.write(
      deltaResponse(typeUrl, version, updated, removed, nonce, this.ctx.controlPlane?.delta),
      { typeUrl, version, nonce, resources: updated.length, removed: removed.length },
      started,
    );
  }
}
