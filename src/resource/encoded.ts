import { createHash } from 'crypto';

/**
 * One xDS resource, serialised once. `value` is the encoded message (not the Any); the server
 * wraps it in an Any and in the response framing once per version and shares those bytes
 * across every stream that receives it.
 */
export interface EncodedResource {
  readonly typeUrl: string;
  readonly name: string;
  /** Derived from the bytes, so an unchanged resource keeps its version across snapshots. */
  readonly version: string;
  readonly value: Buffer;
  /** Delta/SotW resource TTL (the client drops the resource if not refreshed in time). */
  readonly ttlMs?: number;
}

export function contentVersion(typeUrl: string, value: Uint8Array): string {
  return createHash('sha256').update(typeUrl).update(value).digest('base64url').slice(0, 16);
}

export function encodedResource(typeUrl: string, name: string, value: Uint8Array, options: { ttlMs?: number } = {}): EncodedResource {
  if (!name) throw new Error(`resource of type ${typeUrl} has an empty name`);
  const bytes = Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  return Object.freeze({ typeUrl, name, version: contentVersion(typeUrl, bytes), value: bytes, ttlMs: options.ttlMs });
}
