import type { Identity } from './identities';
import { LABEL_IDS } from './label-ids';
import type { Selector, SelectorIds } from './selector';

/** The identities a cached selector selects: their ids, iterated in ascending order. */
export interface Selection extends Iterable<number> {
  readonly size: number;
  has(id: number): boolean;
}

/** A selector in use, with the identities it currently selects. */
export interface CachedSelector {
  readonly selector: Selector;
  /** Kept current by the cache as identities come and go. */
  readonly selected: Selection;
  /** How many policy rules use this selector; the entry is dropped at zero. */
  refs: number;
}

/** First position in an ascending list whose value is not below `id`. */
function lowerBound(list: readonly number[], id: number): number {
  let lo = 0;
  let hi = list.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (list[mid] < id) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Removes one occurrence by swapping the last element in: these lists are unordered. */
function removeUnordered<T>(list: T[], value: T): void {
  const i = list.indexOf(value);
  if (i < 0) return;
  const last = list.pop() as T;
  if (i < list.length) list[i] = last;
}

/** No label of that key, in a column. */
const NONE = -1;

/** A cached selector, and its selection: identity ids in ascending order (appends are the common case, since allocators count up). */
class CachedEntry implements CachedSelector, Selection {
  refs = 1;

  constructor(
    readonly selector: Selector,
    readonly ids: number[],
    /**
     * What it is filed under: its equality `allIds[drive]`, or failing that (-1) its `In`
     * `otherIds.anyOf[driveGroup]`; neither: tested against every identity. All it selects
     * carry one of those labels, so only its other terms are tested.
     */
    readonly drive: number,
    readonly driveGroup: number,
    /** It has no other terms. */
    readonly simple: boolean,
    /** Its place in the cache's list of entries. */
    public at: number,
  ) {}

  /** The label ids it is filed under; undefined: none. */
  get filedUnder(): readonly number[] | undefined {
    if (this.drive >= 0) return [this.selector.allIds[this.drive]];
    return this.driveGroup >= 0 ? this.selector.otherIds?.anyOf[this.driveGroup] : undefined;
  }

  get selected(): Selection {
    return this;
  }

  get size(): number {
    return this.ids.length;
  }

  has(id: number): boolean {
    return this.ids[lowerBound(this.ids, id)] === id;
  }

  [Symbol.iterator](): IterableIterator<number> {
    return this.ids.values();
  }

  insert(id: number): void {
    const { ids } = this;
    if (ids.length === 0 || ids[ids.length - 1] < id) ids.push(id);
    else ids.splice(lowerBound(ids, id), 0, id);
  }

  remove(id: number): void {
    const i = lowerBound(this.ids, id);
    if (this.ids[i] === id) this.ids.splice(i, 1);
  }
}

/** The identities carrying each label of one key, grouped by label: slots of the cache. */
interface KeyPostings {
  /** Until an identity with this key comes or goes. */
  fresh: boolean;
  /** A label's slots end at `postingEnd[label]` and start `count` before it. */
  readonly slots: Int32Array;
}

const NO_SELECTORS: readonly CachedSelector[] = [];
const NO_ENTRIES: readonly CachedEntry[] = [];
const NO_OTHERS: SelectorIds = { anyOf: [], anyOfKeys: [], noneOf: [], present: [], absent: [] };

/**
 * Cilium-style selector cache: every selector in use remembers the identities it selects, so
 * policy resolution reads sets instead of matching labels, and the cache answers which
 * selectors an identity add or remove changed, which is what lets the engine regenerate only
 * the proxies those selectors feed.
 *
 * Identities live in dense slots, and their labels (ids from LABEL_IDS, carried by each
 * identity) in one typed-array column per label key: column[slot] is the label the identity
 * has for that key. A selector is filed under its rarest equality label (or the labels of its
 * rarest `In`), and its other terms are tested against the columns; its selection comes from
 * the postings of that label (built from the column, per key, when a selector needs them), and
 * an identity added later is tested only by the selectors filed under its labels. Which
 * selectors select an identity is answered the same way rather than stored. Selectors with neither (only `NotIn`, `Exists`, `DoesNotExist`) are tested
 * against every identity. No string is hashed, and nothing is allocated, per selector ×
 * identity pair, and the per-identity state is typed arrays the garbage collector need not trace.
 */
export class SelectorCache {
  /** Entries by their selector's uid. */
  private readonly byUid: (CachedEntry | undefined)[] = [];
  private readonly live: CachedEntry[] = [];
  /** Selectors by the label id they are filed under. */
  private readonly filed: (CachedEntry[] | undefined)[] = [];
  private readonly unindexed: CachedEntry[] = [];

  private readonly slotOf = new Map<number, number>();
  private readonly identityAt: (Identity | undefined)[] = [];
  /** Slot → identity id, NONE for a free slot. */
  private ids = new Int32Array(256).fill(NONE);
  /** Key id → slot → label id (NONE: the identity has no such key). */
  private readonly columns: (Int32Array | undefined)[] = [];
  /**
   * Label id → how many identities here carry it. The cache holds each label with a count
   * once, so an id cannot be reused for another label under it; and released when the cache
   * is dropped without being emptied (a restart's old cache), through `DROPPED`.
   */
  private readonly carried = { count: new Int32Array(LABEL_IDS.labelLimit + 64) };
  private readonly postings: (KeyPostings | undefined)[] = [];
  /** Label id → where its run in its key's postings ends. */
  private postingEnd = new Int32Array(this.carried.count.length);
  /** Label id → the last posting build that met it. */
  private seen = new Int32Array(this.carried.count.length);
  private passes = 0;
  private readonly freeSlots: number[] = [];
  /** Slots in use or freed: every slot below it has been given out. */
  private top = 0;

  constructor() {
    DROPPED.register(this, this.carried);
  }

  /**
   * Returns the shared entry for an equal selector, computing its selection on first use. The
   * label ids it uses are the selector's own (held while it lives, and the entry keeps it alive).
   */
  acquire(selector: Selector): CachedSelector {
    const { uid, allIds: all } = selector;
    const found = this.byUid[uid];
    if (found) {
      found.refs++;
      return found;
    }
    const t = selector.otherIds ?? NO_OTHERS;
    for (let i = 0; i < all.length; i++) this.column(LABEL_IDS.keyOf(all[i]));
    for (const id of t.noneOf) this.column(LABEL_IDS.keyOf(id));
    for (const key of t.anyOfKeys) this.column(key);
    for (const key of t.present) this.column(key);
    for (const key of t.absent) this.column(key);
    // Filed under the equality, or failing that the `In`, that the fewest identities meet.
    let drive = -1;
    for (let i = 0; i < all.length; i++) if (drive < 0 || this.count(all[i]) < this.count(all[drive])) drive = i;
    let driveGroup = -1;
    if (drive < 0 && t.anyOf.length > 0) {
      const total = (g: readonly number[]): number => g.reduce((n, id) => n + this.count(id), 0);
      driveGroup = 0;
      for (let i = 1; i < t.anyOf.length; i++) if (total(t.anyOf[i]) < total(t.anyOf[driveGroup])) driveGroup = i;
    }
    const simple =
      all.length === (drive >= 0 ? 1 : 0) &&
      (!selector.otherIds || (t.anyOf.length === 1 && driveGroup === 0 && t.noneOf.length + t.present.length + t.absent.length === 0));
    const cs = new CachedEntry(selector, [], drive, driveGroup, simple, this.live.length);
    this.select(cs);
    while (this.byUid.length <= uid) this.byUid.push(undefined);
    this.byUid[uid] = cs;
    this.live.push(cs);
    if (drive >= 0) this.fileUnder(all[drive]).push(cs);
    else if (driveGroup >= 0) for (const id of t.anyOf[driveGroup]) this.fileUnder(id).push(cs);
    else this.unindexed.push(cs);
    return cs;
  }

  release(cs: CachedSelector): void {
    if (--cs.refs > 0) return;
    const entry = this.byUid[cs.selector.uid];
    if (entry !== cs) throw new Error(`selector ${cs.selector.key} released more often than acquired`);
    this.byUid[entry.selector.uid] = undefined;
    const last = this.live.pop() as CachedEntry;
    if (last !== entry) {
      this.live[entry.at] = last;
      last.at = entry.at;
    }
    if (entry.filedUnder) for (const id of entry.filedUnder) removeUnordered(this.filed[id] as CachedEntry[], entry);
    else removeUnordered(this.unindexed, entry);
  }

  /** Adds an identity; returns the selectors that now select it. */
  addIdentity(identity: Identity): readonly CachedSelector[] {
    const { id, labelIds } = identity;
    if (!Number.isInteger(id) || id < 0 || id > 0x7fffffff) throw new Error(`identity id ${id} is not a non-negative 32-bit integer`);
    const slot = this.freeSlots.pop() ?? this.newSlot();
    const before = this.slotOf.size;
    // One hash operation on the common path: a set that leaves the size alone found the id there.
    if (this.slotOf.set(id, slot).size === before) {
      this.slotOf.set(id, this.ids.indexOf(id));
      this.freeSlots.push(slot);
      throw new Error(`identity ${id} added twice`);
    }
    this.identityAt[slot] = identity;
    this.ids[slot] = id;
    for (let i = 0; i < labelIds.length; i++) {
      const label = labelIds[i];
      const key = LABEL_IDS.keyOf(label);
      this.column(key)[slot] = label;
      this.countLabel(label, 1);
      this.stale(key);
    }
    const selectors = this.selectingSlot(slot, identity);
    for (const cs of selectors) cs.insert(id);
    return selectors;
  }

  /** Removes an identity; returns the selectors that selected it. */
  removeIdentity(identity: Identity): readonly CachedSelector[] {
    const slot = this.slotOf.get(identity.id);
    if (slot === undefined) return NO_SELECTORS;
    const added = this.identityAt[slot] as Identity;
    const selectors = this.selectingSlot(slot, added);
    for (const cs of selectors) cs.remove(added.id);
    for (const label of added.labelIds) {
      const key = LABEL_IDS.keyOf(label);
      (this.columns[key] as Int32Array)[slot] = NONE;
      this.countLabel(label, -1);
      this.stale(key);
    }
    this.slotOf.delete(added.id);
    this.identityAt[slot] = undefined;
    this.ids[slot] = NONE;
    this.freeSlots.push(slot);
    return selectors;
  }

  /** The selectors in use that select this identity. */
  selecting(id: number): readonly CachedSelector[] {
    const slot = this.slotOf.get(id);
    return slot === undefined ? NO_SELECTORS : this.selectingSlot(slot, this.identityAt[slot] as Identity);
  }

  /** Every selector in use. */
  entries(): IterableIterator<CachedSelector> {
    return this.live.values();
  }

  get selectorCount(): number {
    return this.live.length;
  }

  get identityCount(): number {
    return this.slotOf.size;
  }

  /** The selectors filed under the identity's labels, or unindexed, whose other terms it meets. */
  private selectingSlot(slot: number, identity: Identity): readonly CachedEntry[] {
    if (this.live.length === 0) return NO_ENTRIES;
    let out: CachedEntry[] | undefined;
    const { labelIds } = identity;
    for (let i = 0; i < labelIds.length; i++) {
      const filed = this.filed[labelIds[i]];
      if (filed) for (const cs of filed) if (this.meets(cs, slot)) (out ??= []).push(cs);
    }
    for (const cs of this.unindexed) if (this.meets(cs, slot)) (out ??= []).push(cs);
    return out ?? NO_ENTRIES;
  }

  /** A new entry's selection: from its filing label's postings, its `In`'s column, or every slot. */
  private select(cs: CachedEntry): void {
    const out = cs.ids;
    const { ids } = this;
    const { drive, driveGroup, simple } = cs;
    if (drive >= 0) {
      const label = cs.selector.allIds[drive];
      if (this.count(label) > 0) {
        const { slots } = this.keyPostings(LABEL_IDS.keyOf(label));
        const end = this.postingEnd[label];
        for (let i = end - this.count(label); i < end; i++) if (simple || this.meets(cs, slots[i])) out.push(ids[slots[i]]);
      }
    } else if (driveGroup >= 0) {
      const t = cs.selector.otherIds as SelectorIds;
      const group = t.anyOf[driveGroup];
      const column = this.columns[t.anyOfKeys[driveGroup]] as Int32Array;
      for (let slot = 0; slot < this.top; slot++) {
        const label = column[slot];
        if (label !== NONE && group.includes(label) && (simple || this.meets(cs, slot))) out.push(ids[slot]);
      }
    } else {
      for (let slot = 0; slot < this.top; slot++) if (ids[slot] !== NONE && this.meets(cs, slot)) out.push(ids[slot]);
    }
    // Slots are given out in id order unless freed ones are reused.
    for (let i = 1; i < out.length; i++) {
      if (out[i - 1] > out[i]) {
        out.sort((a, b) => a - b);
        return;
      }
    }
  }

  /** Whether the identity in `slot` meets the entry's terms other than the one it is filed under. */
  private meets(cs: CachedEntry, slot: number): boolean {
    if (cs.simple) return true;
    const { columns } = this;
    const all = cs.selector.allIds;
    for (let i = 0; i < all.length; i++) if (i !== cs.drive && (columns[LABEL_IDS.keyOf(all[i])] as Int32Array)[slot] !== all[i]) return false;
    const t = cs.selector.otherIds;
    if (!t) return true;
    for (let i = 0; i < t.anyOf.length; i++) {
      if (i !== cs.driveGroup && !t.anyOf[i].includes((columns[t.anyOfKeys[i]] as Int32Array)[slot])) return false;
    }
    for (const id of t.noneOf) if ((columns[LABEL_IDS.keyOf(id)] as Int32Array)[slot] === id) return false;
    for (const key of t.present) if ((columns[key] as Int32Array)[slot] === NONE) return false;
    for (const key of t.absent) if ((columns[key] as Int32Array)[slot] !== NONE) return false;
    return true;
  }

  /** How many identities carry a label. */
  private count(label: number): number {
    const { count } = this.carried;
    return label < count.length ? count[label] : 0;
  }

  private countLabel(label: number, by: number): void {
    if (label >= this.carried.count.length) this.carried.count = grown(this.carried.count, label + 1, 0);
    const n = (this.carried.count[label] += by);
    if (by > 0 && n === 1) LABEL_IDS.hold(label);
    else if (n === 0) LABEL_IDS.release(label);
  }

  /** A key's column, created (every slot NONE) on first use. */
  private column(key: number): Int32Array {
    while (this.columns.length <= key) this.columns.push(undefined);
    let column = this.columns[key];
    if (!column) this.columns[key] = column = new Int32Array(this.ids.length).fill(NONE);
    return column;
  }

  private fileUnder(label: number): CachedEntry[] {
    while (this.filed.length <= label) this.filed.push(undefined);
    let list = this.filed[label];
    if (!list) this.filed[label] = list = [];
    return list;
  }

  private newSlot(): number {
    const slot = this.top++;
    if (slot >= this.ids.length) {
      const size = this.ids.length * 2;
      this.ids = grown(this.ids, size, NONE);
      this.columns.forEach((c, key) => {
        if (c) this.columns[key] = grown(c, size, NONE);
      });
    }
    return slot;
  }

  private stale(key: number): void {
    const p = this.postings[key];
    if (p) p.fresh = false;
  }

  /**
   * The postings of every label of a key, rebuilt from its column by a counting sort when stale.
   * Where each label's slots end is kept by label id: a label has one key, so keys never share
   * an entry.
   */
  private keyPostings(key: number): KeyPostings {
    const current = this.postings[key];
    if (current?.fresh) return current;
    const column = this.columns[key] as Int32Array;
    const { count } = this.carried;
    if (this.postingEnd.length < count.length) this.postingEnd = grown(this.postingEnd, count.length, 0);
    if (this.seen.length < count.length) this.seen = grown(this.seen, count.length, 0);
    const { postingEnd: end, seen } = this;
    const pass = ++this.passes;
    // Each label's run starts where the previous one's ends; `end` is its cursor while filling.
    let total = 0;
    for (let slot = 0; slot < this.top; slot++) {
      const label = column[slot];
      if (label === NONE || seen[label] === pass) continue;
      seen[label] = pass;
      end[label] = total;
      total += count[label];
    }
    const slots = new Int32Array(total);
    for (let slot = 0; slot < this.top; slot++) {
      const label = column[slot];
      if (label !== NONE) slots[end[label]++] = slot;
    }
    while (this.postings.length <= key) this.postings.push(undefined);
    const built: KeyPostings = { fresh: true, slots };
    this.postings[key] = built;
    return built;
  }
}

/** Releases the labels a dropped cache still held. */
const DROPPED = new FinalizationRegistry<{ count: Int32Array }>(({ count }) => {
  for (let label = 0; label < count.length; label++) if (count[label] > 0) LABEL_IDS.release(label);
});

function grown(array: Int32Array, size: number, fill: number): Int32Array<ArrayBuffer> {
  const out = new Int32Array(Math.max(size, array.length * 2));
  out.set(array);
  out.fill(fill, array.length);
  return out;
}
