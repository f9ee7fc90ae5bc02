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
    private readonly now: () => number = performanceNow,
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

function performanceNow(): number {
  return performance.now();
}

/** An open stream holding a node id's claim, as NodeClaims needs to see it. */
export interface ClaimHolder {
  /** The identities its client certificate asserts; empty on plaintext. */
  certificateIdentities(): readonly string[];
  /** Whether its connection answers an HTTP/2 PING within `timeoutMs`. */
  answersPing(timeoutMs: number): Promise<boolean>;
  /** Ends the stream (and, if `dead`, its connection): another stream took its node id. */
  evict(dead: boolean, message: string): void;
}

/** How a contested claim ended: the holders are gone (superseded or dead), or still answer. */
export type ContestOutcome = 'superseded' | 'dead' | 'alive';

interface Claim {
  fingerprint: string;
  holders: ClaimHolder[];
  /** The liveness check under way, shared by every challenger that arrives meanwhile. */
  probe?: Promise<ContestOutcome>;
}

/**
 * Which nodes are connected with which identity, so one stream cannot rebind another's node id.
 * A restarted proxy that reconnects with new metadata finds its old stream still open when the
 * old connection died without a FIN (power loss, a killed pod's network torn down first): it
 * may take the node id over from holders that are provably not that live proxy, namely holders
 * authenticated by the same certificate identity, or holders whose connection does not answer
 * an HTTP/2 PING within a short time. A live holder on plaintext keeps its claim.
 */
export class NodeClaims {
  private readonly claims = new Map<string, Claim>();

  /** Whether an open stream holds `nodeId` with a different fingerprint. */
  conflict(nodeId: string, fingerprint: string): boolean {
    const held = this.claims.get(nodeId);
    return held !== undefined && held.fingerprint !== fingerprint;
  }

  claim(nodeId: string, fingerprint: string, holder: ClaimHolder): void {
    const held = this.claims.get(nodeId);
    if (held) held.holders.push(holder);
    else this.claims.set(nodeId, { fingerprint, holders: [holder] });
  }

  release(nodeId: string, holder: ClaimHolder): void {
    const held = this.claims.get(nodeId);
    if (!held) return;
    const i = held.holders.indexOf(holder);
    if (i >= 0) held.holders.splice(i, 1);
    if (held.holders.length === 0) this.claims.delete(nodeId);
  }

  /**
   * A stream claims `nodeId` with another fingerprint than its holders: resolves 'superseded'
   * or 'dead' once the holders have been evicted (the challenger may then claim it), 'alive'
   * when one of them answered, leaving them in place.
   */
  contest(nodeId: string, challenger: ClaimHolder, probeTimeoutMs: number, describe: string): Promise<ContestOutcome> {
    const held = this.claims.get(nodeId);
    if (!held) return Promise.resolve('dead');
    const mine = challenger.certificateIdentities();
    if (mine.length > 0) {
      for (const h of held.holders.filter((h) => h.certificateIdentities().some((id) => mine.includes(id)))) {
        h.evict(false, `superseded by a new stream of the same certificate identity ${describe}`);
      }
      if (this.claims.get(nodeId) !== held) return Promise.resolve('superseded');
    }
    // The others are checked for liveness.
    const probed = [...held.holders];
    held.probe ??= Promise.all(probed.map((h) => h.answersPing(probeTimeoutMs))).then((answers) => {
      held.probe = undefined;
      if (answers.some(Boolean)) return 'alive';
      const seconds = probeTimeoutMs / 1000;
      for (const h of probed) h.evict(true, `connection did not answer a liveness check within ${seconds} s; the node id was taken over ${describe}`);
      // A stream of the old binding that connected during the check was not probed: it stands.
      return this.claims.get(nodeId) === held ? 'alive' : 'dead';
    });
    return held.probe;
  }
}
