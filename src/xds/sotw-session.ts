import { checkLength, checkNackMessage, checkNames } from './limits';
import { decodeSotwRequest, type SotwRequest } from './requests';
import { StreamSession, type SessionContext, type XdsCall } from './stream-session';
import { Subscription } from './subscription';
import { withNonce } from './wire';
import type { NodeInfo } from './cache';

interface SotwTypeState {
  subscription: Subscription;
  /** The last response sent for this type. */
  sent?: { nonce: string; version: string; selectionKey: string };
  /** A version the client NACKed: not sent again until the content or subscription changes. */
  rejectedVersion?: string;
}

/** One State-of-the-World stream (ADS or a per-type service). */
export class SotwSession extends StreamSession<SotwTypeState> {
  constructor(call: XdsCall, ctx: SessionContext, fixedTypeUrl?: string) {
    super(call, ctx, fixedTypeUrl, 'sotw');
  }

  protected handle(bytes: Buffer): void {
    const req = decodeSotwRequest(bytes);
    const node = this.identify(req.node);
    const typeUrl = this.typeUrlOf(req.typeUrl);
    this.checkNames(typeUrl, req.resourceNames.length);
    checkNames('resource_names', req.resourceNames, req.resourceNames.length, this.ctx.limits);
    if (req.errorDetail) checkNackMessage(req.errorDetail.message, this.ctx.limits);
    checkLength('version_info', req.versionInfo, this.ctx.limits.maxVersionInfoLength);

    const { state, first } = this.typeState(typeUrl, () => ({ subscription: new Subscription(typeUrl), sent: undefined, rejectedVersion: undefined }));

    const stale = this.settleNonce(node, typeUrl, state, req);
    const changed = state.subscription.replace(req.resourceNames, first);
    this.requested(typeUrl, req.versionInfo, req.responseNonce, state.subscription.wildcard, state.subscription.size, bytes.length);

    // A stale nonce is not an ACK, but gRPC's client re-subscribes with an old nonce after
    // changing its name set, so a changed name set is always answered.
    if (stale && !changed) return;
    // An initial request (no nonce) always gets an answer, even if the client claims to be on
    // our version already: it may have restarted with a cached version string.
    const force = changed || req.responseNonce === '';
    if (this.mayWrite(typeUrl, force)) this.pushType(typeUrl, state, force);
  }

  /** Records ACK/NACK for the response `req` answers; returns true if the nonce is stale. */
  private settleNonce(node: NodeInfo, typeUrl: string, state: SotwTypeState, req: SotwRequest): boolean {
    if (!req.responseNonce) return false;
    if (!state.sent || req.responseNonce !== state.sent.nonce) return true;
    if (req.errorDetail) {
      state.rejectedVersion = state.sent.version;
      this.ctx.callbacks.onNack(this.info, node, typeUrl, {
        version: state.sent.version,
        nonce: req.responseNonce,
        code: req.errorDetail.code,
        message: req.errorDetail.message,
        at: new Date(),
      });
    } else {
      state.rejectedVersion = undefined;
      this.ctx.callbacks.onAck(this.info, node, typeUrl, req.versionInfo);
    }
    return false;
  }

  protected pushType(typeUrl: string, state: SotwTypeState, force: boolean): void {
    const started = performance.now();
    const snapshot = this.snapshot;
    if (!snapshot || this.isClosed || !this.node) return;
    const sub = state.subscription;
    // Nothing subscribed and not wildcard: gRPC's client uses this to unsubscribe from RDS/EDS.
    if (!sub.wildcard && sub.size === 0) return;

    const selectionKey = sub.digest();
    const response = snapshot.sotwResponse(typeUrl, selectionKey, () => sub.select(snapshot));
    const version = response.version;
    if (!force && state.sent && state.sent.version === version && state.sent.selectionKey === selectionKey) return;
    if (!force && state.rejectedVersion === version) return;

    const nonce = this.nextNonce();
    state.sent = { nonce, version, selectionKey };
    this.write(withNonce(response.body, nonce, this.ctx.controlPlane?.sotw), { typeUrl, version, nonce, resources: response.count, removed: 0 }, started);
  }
}
