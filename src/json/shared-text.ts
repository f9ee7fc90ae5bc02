/**
 * JSON text that reuses the text of shared, immutable parts. The compiled policies and the
 * Envoy resources built from them share large read-only lists between proxies and rebuilds (a
 * selector's addresses, a peer set's RBAC principals); serialising each whole document again to
 * compare or hash it would cost as much as building it. A part marked with `shareText` is
 * frozen and its text kept, and `jsonText` splices that text in instead of walking it again.
 */

import { createHash } from 'crypto';

const TEXT = new WeakMap<object, string>();
const DIGEST = new WeakMap<object, string>();

/** Freezes `value` (shallowly: its parts must be shared, or not changed, already) and keeps its JSON text. */
export function shareText<T extends object>(value: T): T {
  if (!TEXT.has(value)) {
    TEXT.set(value, jsonText(value));
    Object.freeze(value);
  }
  return value;
}

/** Exactly `JSON.stringify(value)` for JSON data (no toJSON, no cycles), reusing shared parts' text. */
export function jsonText(value: unknown): string {
  return serialise(value, sharedText);
}

/**
 * A short text that tells contents apart as `jsonText` does: each shared part stands as a NUL
 * and the SHA-256 of its text (computed once per part; JSON text never holds a raw NUL), so a
 * document made mostly of shared parts is keyed without writing them out again.
 */
export function contentKey(value: unknown): string {
  return serialise(value, sharedDigest);
}

function sharedText(value: object): string | undefined {
  return TEXT.get(value);
}

function sharedDigest(value: object): string | undefined {
  let digest = DIGEST.get(value);
  if (digest !== undefined) return digest;
  const text = TEXT.get(value);
  if (text === undefined) return undefined;
  digest = `\u0000${createHash('sha256').update(text).digest('base64')}`;
  DIGEST.set(value, digest);
  return digest;
}

function serialise(value: unknown, shared: (value: object) => string | undefined): string {
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      const known = shared(value);
      if (known !== undefined) return known;
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return JSON.stringify(value);
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          const item: unknown = value[i];
          out += item === undefined || typeof item === 'function' || typeof item === 'symbol' ? 'null' : serialise(item, shared);
        }
        return out + ']';
      }
      let out = '{';
      let first = true;
      for (const key of Object.keys(value)) {
        const item: unknown = (value as Record<string, unknown>)[key];
        if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
        out += `${first ? '' : ','}${JSON.stringify(key)}:${serialise(item, shared)}`;
        first = false;
      }
      return out + '}';
    }
    default:
      return 'null';
  }
}
