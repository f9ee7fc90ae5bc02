import type { StreamLimits } from './limits';

/**
 * Two token buckets, request bytes and request count, that go into debt: a request is always
 * accepted (it has already been received), and the debt says how long the stream is left
 * unread before its next request, so one client sending large or many requests slows only
 * itself. One object with plain fields: every stream has one.
 */
export class RequestBudget {
  private bytes: number;
  private requests: number;
  private last: number;
  private readonly limits: Pick<StreamLimits, 'requestBurstBytes' | 'requestBytesPerSecond' | 'requestBurst' | 'requestsPerSecond'>;

  constructor(
    limits: Pick<StreamLimits, 'requestBurstBytes' | 'requestBytesPerSecond' | 'requestBurst' | 'requestsPerSecond'>,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.limits = limits;
    this.bytes = limits.requestBurstBytes;
    this.requests = limits.requestBurst;
    this.last = now();
  }

  /** Spends one request of `size` bytes; returns how many milliseconds to wait before reading more (0: none). */
  spend(size: number): number {
    const l = this.limits;
    const t = this.now();
    const seconds = (t - this.last) / 1000;
    this.last = t;
    this.bytes = Math.min(l.requestBurstBytes, this.bytes + seconds * l.requestBytesPerSecond) - size;
    this.requests = Math.min(l.requestBurst, this.requests + seconds * l.requestsPerSecond) - 1;
    const waitBytes = this.bytes >= 0 ? 0 : (-this.bytes / l.requestBytesPerSecond) * 1000;
    const waitRequests = this.requests >= 0 ? 0 : (-this.requests / l.requestsPerSecond) * 1000;
    return Math.ceil(Math.max(waitBytes, waitRequests));
  }
}

/** Which nodes are connected with which identity, so one stream cannot rebind another's node id. */
export class NodeClaims {
  private readonly claims = new Map<string, { fingerprint: string; streams: number }>();

  /** The fingerprint of a conflicting claim held by an open stream, or undefined when `fingerprint` may connect. */
  conflict(nodeId: string, fingerprint: string): boolean {
    const held = this.claims.get(nodeId);
    return held !== undefined && held.fingerprint !== fingerprint;
  }

  claim(nodeId: string, fingerprint: string): void {
    const held = this.claims.get(nodeId);
    if (held) held.streams++;
    else this.claims.set(nodeId, { fingerprint, streams: 1 });
  }

  release(nodeId: string): void {
    const held = this.claims.get(nodeId);
    if (held && --held.streams === 0) this.claims.delete(nodeId);
  }
}
