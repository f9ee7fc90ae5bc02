/**
 * Process-wide small integer ids for label keys and for `key=value` labels. Identities carry
 * their labels as these ids (interned once, when the identity is allocated), so the selector
 * cache files and tests labels by array slot instead of hashing a string per selector ×
 * identity pair.
 *
 * Reference-counted: an id is freed, and may be reused, only when every holder (an identity,
 * a selector cache's index, a label of that key) has let go, so label churn (for example a
 * label unique to each pod) does not grow the tables for the life of the process.
 */
class InternTable {
  private readonly byName = new Map<string, number>();
  private readonly names: (string | undefined)[] = [];
  private readonly refs: number[] = [];
  private readonly free: number[] = [];

  /** Whether the last `acquire` gave out an id nobody held. */
  created = false;

  /** The id of `name`, held once more. */
  acquire(name: string): number {
    let id = this.byName.get(name);
    this.created = id === undefined;
    if (id === undefined) {
      id = this.free.pop() ?? this.refs.length;
      this.byName.set(name, id);
      this.names[id] = name;
      this.refs[id] = 0;
    }
    this.refs[id]++;
    return id;
  }

  hold(id: number): void {
    if (!(this.refs[id] > 0)) throw new Error(`id ${id} is not held`);
    this.refs[id]++;
  }

  /** True when that was the last reference and the id is free. */
  release(id: number): boolean {
    if (!(this.refs[id] > 0)) throw new Error(`id ${id} released more often than held`);
    if (--this.refs[id] > 0) return false;
    this.byName.delete(this.names[id] as string);
    this.names[id] = undefined;
    this.free.push(id);
    return true;
  }

  name(id: number): string | undefined {
    return this.names[id];
  }

  get size(): number {
    return this.byName.size;
  }

  /** Every id given out is below this. */
  get limit(): number {
    return this.refs.length;
  }
}

/** Ids a compiled selector holds. */
export interface HeldIds {
  readonly labels: number[];
  readonly keys: number[];
  readonly selectorKeys: number[];
}

export class LabelIds {
  private readonly labels = new InternTable();
  private readonly keys = new InternTable();
  private readonly selectorKeys = new InternTable();
  /** Label id → its key's id. */
  private readonly keyOfLabel: number[] = [];
  /** Compiled selectors have no end of life of their own: what they hold is released once they are garbage. */
  private readonly collected = new FinalizationRegistry<HeldIds>((held) => {
    for (const id of held.labels) this.release(id);
    for (const id of held.keys) this.releaseKey(id);
    for (const id of held.selectorKeys) this.selectorKeys.release(id);
  });

  /** The id of a `key=value` label (`labelString`), held once more; it holds its key's id. */
  acquire(label: string, key: string): number {
    const id = this.labels.acquire(label);
    // A label new to the table holds its key until the label is freed.
    if (this.labels.created) this.keyOfLabel[id] = this.keys.acquire(key);
    return id;
  }

  /** One more reference to a label id the caller already holds. */
  hold(id: number): void {
    this.labels.hold(id);
  }

  release(id: number): void {
    if (this.labels.release(id)) this.keys.release(this.keyOfLabel[id]);
  }

  /** The key id of a held label id. */
  keyOf(id: number): number {
    return this.keyOfLabel[id];
  }

  /** The id of a label key on its own (for `Exists`, `DoesNotExist`), held once more. */
  acquireKey(key: string): number {
    return this.keys.acquire(key);
  }

  releaseKey(id: number): void {
    this.keys.release(id);
  }

  /** The id of a selector's canonical key (equal selectors share it), held once more. */
  acquireSelectorKey(key: string): number {
    return this.selectorKeys.acquire(key);
  }

  /** Releases `held` once `owner` has been garbage collected. */
  releaseWhenCollected(owner: object, held: HeldIds): void {
    this.collected.register(owner, held);
  }

  /** The `key=value` string of a held label id. */
  label(id: number): string | undefined {
    return this.labels.name(id);
  }

  /** Every label id given out is below this (arrays indexed by label id can be sized to it). */
  get labelLimit(): number {
    return this.labels.limit;
  }

  /** Labels currently held by anyone. */
  get size(): number {
    return this.labels.size;
  }

  /** Keys currently held by anyone (by a label of theirs, or on their own). */
  get keyCount(): number {
    return this.keys.size;
  }
}

/** The one table every identity and selector cache of the process shares. */
export const LABEL_IDS = new LabelIds();
