import { createHash } from 'crypto';
import type { EncodedResource } from '../resource/encoded';
import { WILDCARD } from '../resource/wildcard';
import { sotwResponseBody } from './wire';

/**
 * A consistent set of resources for one node (or group of nodes), immutable once built.
 * Versions are derived from content: a type's version changes only when one of its resources
 * does, and each resource carries its own content version, so Delta never re-sends an
 * unchanged resource and SotW never re-sends an unchanged type.
 */
export class Snapshot {
  private readonly byType: Map<string, ReadonlyMap<string, EncodedResource>>;
  private readonly typeVersions = new Map<string, string>();
  private readonly responseCache = new Map<string, SotwResponse>();
  private responseCacheBytes = 0;

  private constructor(byType: Map<string, ReadonlyMap<string, EncodedResource>>) {
    this.byType = byType;
  }

  static fromResources(resources: Iterable<EncodedResource>): Snapshot {
    const byType = new Map<string, Map<string, EncodedResource>>();
    for (const r of resources) {
      let named = byType.get(r.typeUrl);
      if (!named) byType.set(r.typeUrl, (named = new Map()));
      const existing = named.get(r.name);
      if (existing && existing.version !== r.version) {
        throw new Error(`snapshot has two different ${shortType(r.typeUrl)} resources named "${r.name}"`);
      }
      named.set(r.name, r);
    }
    return new Snapshot(byType);
  }

  static empty(): Snapshot {
    return new Snapshot(new Map());
  }

  resources(typeUrl: string): ReadonlyMap<string, EncodedResource> {
    return this.byType.get(typeUrl) ?? EMPTY;
  }

  get(typeUrl: string, name: string): EncodedResource | undefined {
    return this.byType.get(typeUrl)?.get(name);
  }

  /** Content version of every resource of a type together. */
  version(typeUrl: string): string {
    let v = this.typeVersions.get(typeUrl);
    if (v === undefined) {
      v = selectionVersion(this.resources(typeUrl).values());
      this.typeVersions.set(typeUrl, v);
    }
    return v;
  }

  /**
   * The SotW response for a selection of this snapshot's resources, computed once and shared by
   * every stream with an equal selection. `selectionKey` is '*' for the wildcard or a digest of
   * the sorted names (Subscription.digest()), so a client's name set is never kept as a key.
   */
  sotwResponse(typeUrl: string, selectionKey: string, select: () => EncodedResource[]): SotwResponse {
    const key = `${typeUrl}\n${selectionKey}`;
    let response = this.responseCache.get(key);
    if (!response) {
      const selected = select();
      const version = selectionKey === WILDCARD ? this.version(typeUrl) : selectionVersion(selected);
      response = new SotwResponse(typeUrl, version, selected);
      // Bound the cache by entries and by the bytes its bodies will take: a client cycling
      // through name sets must not grow it; recomputing a body is cheap next to leaking. The
      // oldest selections go first; the newest is always kept.
      while (
        this.responseCache.size > 0 &&
        (this.responseCache.size >= MAX_CACHED_RESPONSES || this.responseCacheBytes + response.estimatedBytes > MAX_CACHED_RESPONSE_BYTES)
      ) {
        const [oldestKey, oldest] = this.responseCache.entries().next().value as [string, SotwResponse];
        this.responseCache.delete(oldestKey);
        this.responseCacheBytes -= oldest.estimatedBytes;
      }
      this.responseCache.set(key, response);
      this.responseCacheBytes += response.estimatedBytes;
    }
    return response;
  }
}

/**
 * A selection's version, and its body: everything but the nonce and control_plane. Snapshots
 * may be shared by control planes with different identifiers, so the body must not carry one.
 */
export class SotwResponse {
  private framed?: Buffer;
  /** What this entry costs the cache once framed: the body plus the selection array. */
  readonly estimatedBytes: number;

  constructor(
    private readonly typeUrl: string,
    readonly version: string,
    private readonly resources: readonly EncodedResource[],
  ) {
    let bytes = 256 + 8 * resources.length;
    for (const r of resources) bytes += r.value.length + r.typeUrl.length + 16;
    this.estimatedBytes = bytes;
  }

  get count(): number {
    return this.resources.length;
  }

  // Framed on first read, not when built: on a new snapshot every stream asks for every type it
  // follows, and most of those types are unchanged, so the stream stops at the version.
  get body(): Buffer {
    return (this.framed ??= sotwResponseBody(this.typeUrl, this.version, this.resources));
  }
}

const EMPTY: ReadonlyMap<string, EncodedResource> = new Map();
const MAX_CACHED_RESPONSES = 256;
const MAX_CACHED_RESPONSE_BYTES = 16 * 1024 * 1024;

/** Version of a set of resources: stable under reordering, changes when any member changes. */
export function selectionVersion(resources: Iterable<EncodedResource>): string {
  const pairs: string[] = [];
  for (const r of resources) pairs.push(`${r.name}\u0000${r.version}`);
  if (pairs.length === 0) return 'empty';
  pairs.sort();
  return createHash('sha256').update(pairs.join('\u0001')).digest('base64url').slice(0, 16);
}

export function shortType(typeUrl: string): string {
  const name = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  return name.slice(name.lastIndexOf('.') + 1);
}
