import type { PolicyOrigin } from '../../policy/compiled';

/**
 * A compiled policy asks for something the mode cannot enforce. Never served: the caller keeps
 * the last good configuration. `policy check --mode` and the loader refuse the same policies
 * earlier, with their field; this guards compiled policies that did not come through them.
 */
export class UnenforceableError extends Error {
  readonly origins: PolicyOrigin[];
  constructor(what: string, rules: readonly { origin: PolicyOrigin }[]) {
    const origins = [...new Map(rules.map((r) => [r.origin.policy, r.origin])).values()];
    const where = origins.map((o) => `${o.policy}${o.file ? ` (${o.file}:${o.line ?? 1})` : ''}`).join(', ');
    super(`${what}; refused, from ${where}`);
    this.name = 'UnenforceableError';
    this.origins = origins;
  }
}
