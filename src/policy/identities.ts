import { NAMESPACE_LABEL, SERVICE_ACCOUNT_LABEL, type LabelMap } from './model';
import { LABEL_IDS } from './label-ids';
import { labelString, type LabelTerm, type Labels } from './selector';

/** A security identity: the numeric id shared by every workload with the same label set. */
export interface Identity {
  readonly id: number;
  /** Includes the implicit namespace and service-account labels. */
  readonly labels: Labels;
  /** Canonical `k=v,...` of the labels (see `labelString`): equal only for equal label sets. */
  readonly key: string;
  /**
   * Each `k=v` label as its id in LABEL_IDS, interned once here so that the selector cache
   * indexes and matches integers. Held from creation until `releaseIdentityLabels`.
   */
  readonly labelIds: readonly number[];
  readonly namespace: string;
  readonly serviceAccount: string;
}

/** Cilium reserves the low numbers for special identities; keep the same convention. */
export const FIRST_IDENTITY = 256;

/** The labels that make up a workload's identity. */
export function identityLabels(labels: LabelMap, namespace: string, serviceAccount: string): Map<string, string> {
  const out = new Map<string, string>(Object.entries(labels));
  out.set(NAMESPACE_LABEL, namespace);
  out.set(SERVICE_ACCOUNT_LABEL, serviceAccount);
  return out;
}

/** The labels sorted by key, as `labelString`s: joined with `,` they are the key identities are shared by. */
function canonicalLabels(labels: Labels): LabelTerm[] {
  return [...labels].sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0)).map(([key, v]) => ({ key, label: labelString(key, v) }));
}

function joined(canonical: readonly LabelTerm[]): string {
  return canonical.map((t) => t.label).join(',');
}

function buildIdentity(id: number, labels: Labels, canonical: readonly LabelTerm[], key = joined(canonical)): Identity {
  return {
    id,
    labels,
    key,
    labelIds: canonical.map((t) => LABEL_IDS.acquire(t.label, t.key)),
    namespace: labels.get(NAMESPACE_LABEL) ?? '',
    serviceAccount: labels.get(SERVICE_ACCOUNT_LABEL) ?? 'default',
  };
}

/**
 * An identity outside an allocator (the allocator numbers its own). Its label ids stay held
 * until `releaseIdentityLabels`.
 */
export function createIdentity(id: number, labels: Labels): Identity {
  return buildIdentity(id, labels, canonicalLabels(labels));
}

export function releaseIdentityLabels(identity: Identity): void {
  for (const id of identity.labelIds) LABEL_IDS.release(id);
}

/**
 * Allocates numeric identities per distinct label set, reference-counted by the workloads that
 * carry them. Freed numbers are not reused within a process, so a stale id can never alias a
 * new label set in a proxy that has not been updated yet.
 */
export class IdentityAllocator {
  private readonly byKey = new Map<string, { identity: Identity; refs: number }>();
  private readonly byId = new Map<number, Identity>();
  private nextId = FIRST_IDENTITY;

  /**
   * `created` tells the caller the selector cache must learn about this identity. A new
   * identity keeps `labels` as given (no copy): callers pass a map they do not touch again.
   */
  acquire(labels: Labels): { identity: Identity; created: boolean } {
    const canonical = canonicalLabels(labels);
    const key = joined(canonical);
    const entry = this.byKey.get(key);
    if (entry) {
      entry.refs++;
      return { identity: entry.identity, created: false };
    }
    const identity = buildIdentity(this.nextId++, labels, canonical, key);
    this.byKey.set(key, { identity, refs: 1 });
    this.byId.set(identity.id, identity);
    return { identity, created: true };
  }

  /** True when this was the last reference and the identity is gone. */
  release(identity: Identity): boolean {
    const entry = this.byKey.get(identity.key);
    if (!entry) throw new Error(`identity ${identity.id} released twice`);
    if (--entry.refs > 0) return false;
    this.byKey.delete(identity.key);
    this.byId.delete(identity.id);
    releaseIdentityLabels(identity);
    return true;
  }

  get(id: number): Identity | undefined {
    return this.byId.get(id);
  }

  all(): IterableIterator<Identity> {
    return this.byId.values();
  }

  get size(): number {
    return this.byId.size;
  }
}
