/**
 * A token bucket that goes into debt: a request is always accepted (it has already been
 * received), and the debt says how long the stream is left unread before its next request,
 * so one client sending large or many requests slows only itself.
 */
export class RequestBudget {
  private tokens: number;
  private last: number;

  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = burst;
    this.last = now();
  }

  /** Spends `amount`; returns how many milliseconds to wait before reading more (0: none). */
  spend(amount: number): number {
    const t = this.now();
    this.tokens = Math.min(this.burst, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    this.tokens -= amount;
    return this.tokens >= 0 ? 0 : Math.ceil((-this.tokens / this.perSecond) * 1000);
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
