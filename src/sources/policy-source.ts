import type { PolicyStore } from '../store/policy-store';

/**
 * A place policy comes from (a watched directory today; Kubernetes and Redis next). A source
 * reads its objects and sends them to the store as tagged resource events, in batches it
 * chooses: the store validates, applies each batch atomically and tells the snapshot builder
 * which proxies changed. A source never compiles and never talks to xDS. Reading may be
 * asynchronous; `start` resolves (or returns) once the first complete set has been sent.
 * A source is given its store when it is made.
 */
export interface PolicySource {
  /** Tag of every event this source sends, unique per store. */
  readonly name: string;
  readonly store: PolicyStore;
  start(): unknown;
  stop(): void;
}
