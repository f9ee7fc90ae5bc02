import { andInto, andNotInto, clearBit, equalBits, equalsAnd, isZero, orInto, setBit, widen, wordsFor, type Bits } from './bitset';
import type { Identity } from './identities';
import type { Requirement, Selector } from './selector';

/** A selector in use, with the identities it currently selects. */
export interface CachedSelector {
  readonly selector: Selector;
  /** Identity ids; kept current by the cache as identities come and go. */
  readonly selected: Set<number>;
  /** How many policy rules use this selector; the entry is dropped at zero. */
  refs: number;
  /** `selected` as a bitset over identity slots (cache-internal). */
  bits: Bits;
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
  // Bitset view for full regeneration: identities occupy dense slots; one bitset per label
  // (`k=v`), per label key, and of all live slots.
  private readonly slotOf = new Map<number, number>();
  private readonly identityAt: (Identity | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  private words = 1;
  private live: Bits = new Uint32Array(1);
  private readonly labelBits = new Map<string, Bits>();
  private readonly keyBits = new Map<string, Bits>();
  private scratch: Bits = new Uint32Array(1);
  private scratch2: Bits = new Uint32Array(1);

  /** Returns the shared entry for an equal selector, computing its selection on first use. */
  acquire(selector: Selector): CachedSelector {
    let cs = this.byKey.get(selector.key);
    if (cs) {
      cs.refs++;
      return cs;
    }
    cs = { selector, selected: new Set(), refs: 1, bits: new Uint32Array(this.words) };
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
    const slot = this.allocateSlot(identity);
    for (const { key: k, label } of identity.pairs) {
      let ids = this.identitiesByLabel.get(label);
      if (!ids) this.identitiesByLabel.set(label, (ids = new Set()));
      ids.add(identity);
      setBit(this.bitsOf(this.labelBits, label), slot);
      setBit(this.bitsOf(this.keyBits, k), slot);
    }
    const hits = new Set<CachedSelector>();
    const consider = (cs: CachedSelector): void => {
      if (cs.selector.matches(identity.labels)) {
        cs.selected.add(identity.id);
        setBit(cs.bits, slot);
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
    const slot = this.slotOf.get(identity.id) as number;
    for (const { key: k, label } of identity.pairs) {
      const ids = this.identitiesByLabel.get(label);
      ids?.delete(identity);
      if (ids?.size === 0) {
        this.identitiesByLabel.delete(label);
        this.labelBits.delete(label);
      } else {
        const b = this.labelBits.get(label);
        if (b) clearBit(b, slot);
      }
      const kb = this.keyBits.get(k);
      if (kb) {
        clearBit(kb, slot);
        // Absent reads as empty (Exists/DoesNotExist), so keys no identity has any more go.
        if (isZero(kb)) this.keyBits.delete(k);
      }
    }
    const hits = this.selectorsOfIdentity.get(identity.id) ?? new Set<CachedSelector>();
    this.selectorsOfIdentity.delete(identity.id);
    for (const cs of hits) {
      cs.selected.delete(identity.id);
      clearBit(cs.bits, slot);
    }
    this.freeSlot(identity.id, slot);
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

  /**
   * Recomputes every selection from scratch (a full regeneration). Each selector is evaluated
   * over bitsets — AND of its `k=v` label sets, OR for `In`, complement for `NotIn` and
   * `DoesNotExist` — so the cost is a few word operations per requirement per 32 identities,
   * not a label match per identity. Results are compared with the cached selection and only
   * differences are applied, so the end state equals the incremental one. Returns how many
   * selectors changed (0 when the incremental state was already right).
   */
  rebuild(): number {
    if (this.scratch.length !== this.words) {
      this.scratch = new Uint32Array(this.words);
      this.scratch2 = new Uint32Array(this.words);
    }
    let changed = 0;
    for (const cs of this.byKey.values()) if (this.refresh(cs)) changed++;
    return changed;
  }

  /** Re-evaluates one selector over the bitsets; true if its selection changed. */
  private refresh(cs: CachedSelector): boolean {
    const out = this.scratch;
    const eqLabels = cs.selector.eqLabels;
    // matchLabels-only selectors (nearly all) are the AND of their labels' bitsets, which hold
    // live slots only: compare one or two of them with the cached bits in place, no copy.
    if (eqLabels !== undefined && eqLabels.length <= 2) {
      const a = this.labelBits.get(eqLabels[0]);
      const b = eqLabels.length === 2 ? this.labelBits.get(eqLabels[1]) : a;
      if (a === undefined || b === undefined) {
        if (isZero(cs.bits)) return false;
        out.fill(0);
      } else {
        if (equalsAnd(a, b, cs.bits)) return false;
        out.set(a);
        andInto(out, b);
      }
    } else {
      this.evaluate(cs.selector.requirements, out);
      if (equalBits(out, cs.bits)) return false;
    }
    const bits = cs.bits;
    for (let w = 0; w < out.length; w++) {
      let diff = (out[w] ^ bits[w]) | 0;
      while (diff !== 0) {
        const low = diff & -diff;
        const slot = (w << 5) + 31 - Math.clz32(low);
        const id = (this.identityAt[slot] as Identity).id;
        if ((out[w] & low) !== 0) this.link(cs, id, slot);
        else this.unlink(cs, id, slot);
        diff ^= low;
      }
    }
    return true;
  }

  private evaluate(reqs: readonly Requirement[], out: Bits): void {
    out.set(this.live);
    const union = this.scratch2;
    for (const r of reqs) {
      switch (r.op) {
        case 'Eq': {
          const b = this.labelBits.get(r.label);
          if (b === undefined) return void out.fill(0);
          andInto(out, b);
          break;
        }
        case 'In':
        case 'NotIn': {
          union.fill(0);
          for (const label of r.labels) {
            const b = this.labelBits.get(label);
            if (b !== undefined) orInto(union, b);
          }
          if (r.op === 'In') andInto(out, union);
          else andNotInto(out, union);
          break;
        }
        case 'Exists': {
          const b = this.keyBits.get(r.key);
          if (b === undefined) return void out.fill(0);
          andInto(out, b);
          break;
        }
        case 'DoesNotExist': {
          const b = this.keyBits.get(r.key);
          if (b !== undefined) andNotInto(out, b);
          break;
        }
      }
    }
  }

  private allocateSlot(identity: Identity): number {
    const slot = this.freeSlots.pop() ?? this.identityAt.length;
    if (slot >= this.words * 32) this.grow(wordsFor(slot + 1) * 2);
    this.identityAt[slot] = identity;
    this.slotOf.set(identity.id, slot);
    setBit(this.live, slot);
    return slot;
  }

  private freeSlot(id: number, slot: number): void {
    this.identityAt[slot] = undefined;
    this.slotOf.delete(id);
    clearBit(this.live, slot);
    this.freeSlots.push(slot);
  }

  /** Widens every bitset; amortised by doubling. */
  private grow(words: number): void {
    this.words = words;
    this.live = widen(this.live, words);
    for (const [k, b] of this.labelBits) this.labelBits.set(k, widen(b, words));
    for (const [k, b] of this.keyBits) this.keyBits.set(k, widen(b, words));
    for (const cs of this.byKey.values()) cs.bits = widen(cs.bits, words);
  }

  private bitsOf(map: Map<string, Bits>, key: string): Bits {
    let b = map.get(key);
    if (!b) map.set(key, (b = new Uint32Array(this.words)));
    return b;
  }

  private candidates(selector: Selector): Iterable<Identity> {
    return selector.indexLabel !== undefined ? this.identitiesByLabel.get(selector.indexLabel) ?? EMPTY_IDENTITIES : this.identities.values();
  }

  private link(cs: CachedSelector, id: number, slot: number): void {
    cs.selected.add(id);
    setBit(cs.bits, slot);
    let set = this.selectorsOfIdentity.get(id);
    if (!set) this.selectorsOfIdentity.set(id, (set = new Set()));
    set.add(cs);
  }

  private unlink(cs: CachedSelector, id: number, slot: number): void {
    cs.selected.delete(id);
    clearBit(cs.bits, slot);
    this.selectorsOfIdentity.get(id)?.delete(cs);
  }

  private select(cs: CachedSelector): void {
    const { selector } = cs;
    for (const identity of this.candidates(selector)) {
      if (selector.matches(identity.labels)) this.link(cs, identity.id, this.slotOf.get(identity.id) as number);
    }
  }
}

const EMPTY: ReadonlySet<CachedSelector> = new Set();
const EMPTY_IDENTITIES: ReadonlySet<Identity> = new Set();
