import { createHash } from 'crypto';
import type { EncodedResource } from '../resource/encoded';
import type { Snapshot } from './snapshot';
import { TypeUrl } from '../resource/type-urls';
import { WILDCARD } from '../resource/wildcard';

/**
 * Types whose SotW responses carry the full state and whose empty first request means
 * "everything" (legacy wildcard). For every other type an empty name list means "nothing",
 * which is how gRPC's xDS client unsubscribes from RDS/EDS.
 */
const LEGACY_WILDCARD_TYPES: ReadonlySet<string> = new Set([TypeUrl.Listener, TypeUrl.Cluster, TypeUrl.ScopedRouteConfiguration]);

/**
 * Name sets that SotW streams replaced theirs with, by digest: thousands of proxies of one
 * kind ask for the same names, and share one frozen set and one digest string instead of a copy
 * each (bench-xds: about 2 KiB per stream). Bounded; a set dropped from here stays shared by the
 * streams that hold it.
 */
const sharedNameSets = new Map<string, { names: ReadonlySet<string>; digest: string }>();
/** What the registry may keep: a client's huge or ever-changing name sets must not pile up here. */
const MAX_SHARED_SET_SIZE = 1024;
const MAX_SHARED_NAMES = 65_536;
let sharedNames = 0;
const EMPTY_NAMES: ReadonlySet<string> = new Set();

/** What one stream has subscribed to for one type, as the xDS protocol defines it. */
export class Subscription {
  private explicitWildcard = false;
  private legacyWildcard = false;
  /** Shared (see sharedNameSets) until this stream changes it: then it gets its own copy. */
  private named: ReadonlySet<string> = EMPTY_NAMES;
  private owned = false;
  /** digest() is asked on every push; recomputed only after the name set changes. */
  private cachedKey: string | undefined;

  constructor(readonly typeUrl: string) {}

  get wildcard(): boolean {
    return this.explicitWildcard || this.legacyWildcard;
  }

  get size(): number {
    return this.named.size;
  }

  names(): IterableIterator<string> {
    return this.named.values();
  }

  /** The name set, made this stream's own before it is changed. */
  private own(): Set<string> {
    if (!this.owned) {
      this.named = new Set(this.named);
      this.owned = true;
    }
    return this.named as Set<string>;
  }

  /** SotW: each request carries the complete name list. Returns whether anything changed. */
  replace(names: readonly string[], first: boolean): boolean {
    const before = this.digest();
    this.cachedKey = undefined;
    const next = new Set<string>();
    let star = false;
    for (const n of names) {
      if (n === WILDCARD) star = true;
      else next.add(n);
    }
    const digest = selectionDigest([...next].sort());
    let shared = sharedNameSets.get(digest);
    if (!shared && next.size > 0 && next.size <= MAX_SHARED_SET_SIZE) {
      if (sharedNames + next.size > MAX_SHARED_NAMES) {
        sharedNameSets.clear();
        sharedNames = 0;
      }
      sharedNameSets.set(digest, (shared = { names: next, digest }));
      sharedNames += next.size;
    }
    // A set too large to share is this stream's own.
    this.named = shared?.names ?? (next.size > 0 ? next : EMPTY_NAMES);
    this.owned = !shared && next.size > 0;
    this.explicitWildcard = star;
    if (first) this.legacyWildcard = names.length === 0 && LEGACY_WILDCARD_TYPES.has(this.typeUrl);
    // A client that once did a legacy wildcard and then names resources has left wildcard mode.
    else if (names.length > 0) this.legacyWildcard = false;
    if (!this.wildcard) this.cachedKey = shared?.digest ?? digest;
    return this.digest() !== before;
  }

  /** Delta: add names. An empty first request is a legacy wildcard. */
  subscribe(names: readonly string[], first: boolean): string[] {
    this.cachedKey = undefined;
    const added: string[] = [];
    if (first && names.length === 0 && LEGACY_WILDCARD_TYPES.has(this.typeUrl)) this.legacyWildcard = true;
    for (const n of names) {
      if (n === WILDCARD) {
        this.explicitWildcard = true;
        continue;
      }
      if (!this.named.has(n)) {
        this.own().add(n);
        added.push(n);
      }
    }
    return added;
  }

  /** Delta: remove names; unsubscribing from `*` leaves wildcard mode. Returns names removed. */
  unsubscribe(names: readonly string[]): string[] {
    this.cachedKey = undefined;
    const removed: string[] = [];
    for (const n of names) {
      if (n === WILDCARD) {
        this.explicitWildcard = false;
        this.legacyWildcard = false;
      } else if (this.named.has(n)) {
        this.own().delete(n);
        removed.push(n);
      }
    }
    return removed;
  }

  /** Is `name` wanted, by name or through the wildcard? */
  wants(name: string): boolean {
    return this.wildcard || this.named.has(name);
  }

  select(snapshot: Snapshot): EncodedResource[] {
    const all = snapshot.resources(this.typeUrl);
    if (this.wildcard) return [...all.values()];
    const out: EncodedResource[] = [];
    for (const n of this.named) {
      const r = all.get(n);
      if (r) out.push(r);
    }
    return out;
  }

  /** The selection spelled out: '*' or the sorted names, one a line. */
  key(): string {
    return this.wildcard ? WILDCARD : [...this.named].sort().join('\n');
  }

  /**
   * Identifies the selection: streams with equal digests share one encoded response body.
   * '*' or a hash of the sorted names, so a large name set is never kept a second time as a
   * cache key or as the stream's record of what it sent.
   */
  digest(): string {
    return (this.cachedKey ??= this.wildcard ? WILDCARD : selectionDigest([...this.named].sort()));
  }
}

function selectionDigest(sortedNames: readonly string[]): string {
  const h = createHash('sha256');
  for (const n of sortedNames) h.update(n).update('\n');
  return `${sortedNames.length}:${h.digest('base64url')}`;
}
