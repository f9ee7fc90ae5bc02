import type { Identity } from './identities';
import type { Selector } from './selector';

/** A selector in use, with the identities it currently selects. */
export interface CachedSelector {
  readonly selector: Selector;
  /** Identity ids; kept current by the cache as identities come and go. */
  readonly selected: Set<number>;
  /** How many policy rules use this selector; the entry is dropped at zero. */
  refs: number;
}

/**
 * Cilium-style selector cache: every selector in use remembers the identities it selects, so
 * policy resolution reads sets instead of matching labels. A new identity is tested only against
 * selectors that could select it — those indexed under one of its `key=value` labels plus the few
 * without an equality requirement — and the cache answers which selectors changed, which is what
 * lets the engine regenerate only the proxies those selectors feed.
 */
export class SelectorCache {
  private readonly byKey = new Map<string, CachedSelector>();
  private readonly byIndexLabel = new Map<string, Set<CachedSelector>>();
  private readonly unindexed = new Set<CachedSelector>();
  private readonly identities = new Map<number, Identity>();
  private readonly identitiesByLabel = new Map<string, Set<Identity>>();
  private readonly selectorsOfIdentity = new Map<number, Set<CachedSelector>>();

  /** Returns the shared entry for an equal selector, computing its selection on first use. */
  acquire(selector: Selector): CachedSelector {
    let cs = this.byKey.get(selector.key);
    if (cs) {
      cs.refs++;
      return cs;
    }
    cs = { selector, selected: new Set(), refs: 1 };
    this.byKey.set(selector.key, cs);
    if (selector.indexLabel !== undefined) {
      let bucket = this.byIndexLabel.get(selector.indexLabel);
      if (!bucket) this.byIndexLabel.set(selector.indexLabel, (bucket = new Set()));
      bucket.add(cs);
    } else this.unindexed.add(cs);
    this.select(cs);
    return cs;
  }

  release(cs: CachedSelector): void {
    if (--cs.refs > 0) return;
    const { selector } = cs;
    this.byKey.delete(selector.key);
    if (selector.indexLabel !== undefined) {
      const bucket = this.byIndexLabel.get(selector.indexLabel);
      bucket?.delete(cs);
      if (bucket?.size === 0) this.byIndexLabel.delete(selector.indexLabel);
    } else this.unindexed.delete(cs);
    for (const id of cs.selected) this.selectorsOfIdentity.get(id)?.delete(cs);
  }

  /** Adds an identity; returns the selectors that now select it. */
  addIdentity(identity: Identity): ReadonlySet<CachedSelector> {
    if (this.identities.has(identity.id)) throw new Error(`identity ${identity.id} added twice`);
    this.identities.set(identity.id, identity);
    for (const { label } of identity.pairs) {
      let ids = this.identitiesByLabel.get(label);
      if (!ids) this.identitiesByLabel.set(label, (ids = new Set()));
      ids.add(identity);
    }
    const hits = new Set<CachedSelector>();
    const consider = (cs: CachedSelector): void => {
      if (cs.selector.matches(identity.labels)) {
        cs.selected.add(identity.id);
        hits.add(cs);
      }
    };
    for (const { label } of identity.pairs) {
      const bucket = this.byIndexLabel.get(label);
      if (bucket) for (const cs of bucket) consider(cs);
    }
    for (const cs of this.unindexed) consider(cs);
    this.selectorsOfIdentity.set(identity.id, hits);
    return hits;
  }

  /** Removes an identity; returns the selectors that selected it. */
  removeIdentity(identity: Identity): CachedSelector[] {
    if (!this.identities.delete(identity.id)) return [];
    for (const { label } of identity.pairs) {
      const ids = this.identitiesByLabel.get(label);
      ids?.delete(identity);
      if (ids?.size === 0) this.identitiesByLabel.delete(label);
    }
    const hits = this.selectorsOfIdentity.get(identity.id) ?? new Set<CachedSelector>();
    this.selectorsOfIdentity.delete(identity.id);
    for (const cs of hits) cs.selected.delete(identity.id);
    return [...hits];
  }

  /** The selectors in use that select this identity. */
  selecting(id: number): ReadonlySet<CachedSelector> {
    return this.selectorsOfIdentity.get(id) ?? EMPTY;
  }

  /** Every selector in use. */
  entries(): IterableIterator<CachedSelector> {
    return this.byKey.values();
  }

  get selectorCount(): number {
    return this.byKey.size;
  }

  get identityCount(): number {
    return this.identities.size;
  }

  private candidates(selector: Selector): Iterable<Identity> {
    return selector.indexLabel !== undefined ? (this.identitiesByLabel.get(selector.indexLabel) ?? EMPTY_IDENTITIES) : this.identities.values();
  }

  private link(cs: CachedSelector, id: number): void {
    cs.selected.add(id);
    let set = this.selectorsOfIdentity.get(id);
    if (!set) this.selectorsOfIdentity.set(id, (set = new Set()));
    set.add(cs);
  }

  private select(cs: CachedSelector): void {
    const { selector } = cs;
    for (const identity of this.candidates(selector)) {
      if (selector.matches(identity.labels)) this.link(cs, identity.id);
    }
  }
}

const EMPTY: ReadonlySet<CachedSelector> = new Set();
const EMPTY_IDENTITIES: ReadonlySet<Identity> = new Set();
