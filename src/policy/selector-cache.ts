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

interface IdentityEntry {
  readonly identity: Identity;
  /** The selectors in use that select it (a selector appears once). */
  readonly selectors: CachedSelector[];
}

/** Removes one occurrence by swapping the last element in: these lists are unordered. */
function removeUnordered<T>(list: T[], value: T): void {
  const i = list.indexOf(value);
  if (i < 0) return;
  const last = list.pop() as T;
  if (i < list.length) list[i] = last;
}

function pushTo<K, V>(map: Map<K, V[]>, key: K, value: V): void {
  const list = map.get(key);
  if (list) list.push(value);
  else map.set(key, [value]);
}

/**
 * Cilium-style selector cache: every selector in use remembers the identities it selects, so
 * policy resolution reads sets instead of matching labels, and the cache answers which
 * selectors an identity add or remove changed, which is what lets the engine regenerate only
 * the proxies those selectors feed.
 *
 * Both directions go through a label index keyed by (key, value): a selector is filed under the
 * values of one of its requirements (`key=v`, or `key In (...)`), and identities are indexed by
 * the values of only those keys that some selector is filed under (built on a key's first use),
 * so neither a new selector nor a new identity is tested against what cannot match it, and an
 * identity's other labels cost nothing. Selectors with no such requirement (only `NotIn`,
 * `Exists`, `DoesNotExist`) are tested against every identity.
 */
export class SelectorCache {
  private readonly byKey = new Map<string, CachedSelector>();
  /** Indexed selectors: label key → value → selectors filed under it. */
  private readonly selectorIndex = new Map<string, Map<string, CachedSelector[]>>();
  private readonly unindexed: CachedSelector[] = [];
  private readonly identities = new Map<number, IdentityEntry>();
  /** Identity ids by label, for the keys selectors are filed under: key → value → ids. */
  private readonly identityIndex = new Map<string, Map<string, number[]>>();

  /** Returns the shared entry for an equal selector, computing its selection on first use. */
  acquire(selector: Selector): CachedSelector {
    let cs = this.byKey.get(selector.key);
    if (cs) {
      cs.refs++;
      return cs;
    }
    cs = { selector, selected: new Set(), refs: 1 };
    this.byKey.set(selector.key, cs);
    const { index } = selector;
    if (index === undefined) {
      this.unindexed.push(cs);
      for (const entry of this.identities.values()) this.consider(cs, entry);
      return cs;
    }
    let byValue = this.selectorIndex.get(index.key);
    if (!byValue) this.selectorIndex.set(index.key, (byValue = new Map()));
    const postings = this.postings(index.key);
    for (const value of index.values) {
      pushTo(byValue, value, cs);
      const ids = postings.get(value);
      if (ids) for (const id of ids) this.consider(cs, this.identities.get(id) as IdentityEntry);
    }
    return cs;
  }

  release(cs: CachedSelector): void {
    if (--cs.refs > 0) return;
    const { selector } = cs;
    this.byKey.delete(selector.key);
    const { index } = selector;
    if (index === undefined) removeUnordered(this.unindexed, cs);
    else {
      const byValue = this.selectorIndex.get(index.key) as Map<string, CachedSelector[]>;
      for (const value of index.values) {
        const list = byValue.get(value);
        if (!list) continue;
        removeUnordered(list, cs);
        if (list.length === 0) byValue.delete(value);
      }
      // The identity index for this key stays: it is cheap to keep and likely needed again.
      if (byValue.size === 0) this.selectorIndex.delete(index.key);
    }
    for (const id of cs.selected) {
      const entry = this.identities.get(id);
      if (entry) removeUnordered(entry.selectors, cs);
    }
  }

  /** Adds an identity; returns the selectors that now select it. */
  addIdentity(identity: Identity): readonly CachedSelector[] {
    if (this.identities.has(identity.id)) throw new Error(`identity ${identity.id} added twice`);
    const entry: IdentityEntry = { identity, selectors: [] };
    this.identities.set(identity.id, entry);
    const { labels } = identity;
    for (const [key, byValue] of this.identityIndex) {
      const value = labels.get(key);
      if (value !== undefined) pushTo(byValue, value, identity.id);
    }
    for (const [key, byValue] of this.selectorIndex) {
      const value = labels.get(key);
      const bucket = value === undefined ? undefined : byValue.get(value);
      if (bucket) for (const cs of bucket) this.consider(cs, entry);
    }
    for (const cs of this.unindexed) this.consider(cs, entry);
    return entry.selectors;
  }

  /** Removes an identity; returns the selectors that selected it. */
  removeIdentity(identity: Identity): readonly CachedSelector[] {
    const entry = this.identities.get(identity.id);
    if (!entry) return [];
    this.identities.delete(identity.id);
    for (const [key, byValue] of this.identityIndex) {
      const value = identity.labels.get(key);
      const ids = value === undefined ? undefined : byValue.get(value);
      if (!ids) continue;
      removeUnordered(ids, identity.id);
      if (ids.length === 0) byValue.delete(value as string);
    }
    for (const cs of entry.selectors) cs.selected.delete(identity.id);
    return entry.selectors;
  }

  /** The selectors in use that select this identity. */
  selecting(id: number): readonly CachedSelector[] {
    return this.identities.get(id)?.selectors ?? EMPTY;
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

  /** The identity index of one label key, built from every identity on the key's first use. */
  private postings(key: string): Map<string, number[]> {
    let byValue = this.identityIndex.get(key);
    if (byValue) return byValue;
    this.identityIndex.set(key, (byValue = new Map()));
    for (const { identity } of this.identities.values()) {
      const value = identity.labels.get(key);
      if (value !== undefined) pushTo(byValue, value, identity.id);
    }
    return byValue;
  }

  private consider(cs: CachedSelector, entry: IdentityEntry): void {
    if (!cs.selector.matches(entry.identity.labels)) return;
    cs.selected.add(entry.identity.id);
    entry.selectors.push(cs);
  }
}

const EMPTY: readonly CachedSelector[] = [];
