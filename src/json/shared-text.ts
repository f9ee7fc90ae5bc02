/**
 * JSON text that reuses the text of shared, immutable parts. The compiled policies and the
 * Envoy resources built from them share large read-only lists between proxies and rebuilds (a
 * selector's addresses, a peer set's RBAC principals); serialising each whole document again to
 * compare or hash it would cost as much as building it. A part marked with `shareText` is
 * frozen and its text kept, and `jsonText` splices that text in instead of walking it again.
 */

const TEXT = new WeakMap<object, string>();

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
  switch (typeof value) {
    case 'string':
    case 'number':
    case 'boolean':
      return JSON.stringify(value);
    case 'object': {
      if (value === null) return 'null';
      const known = TEXT.get(value);
      if (known !== undefined) return known;
      if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return JSON.stringify(value);
      if (Array.isArray(value)) {
        let out = '[';
        for (let i = 0; i < value.length; i++) {
          if (i > 0) out += ',';
          const item: unknown = value[i];
          out += item === undefined || typeof item === 'function' || typeof item === 'symbol' ? 'null' : jsonText(item);
        }
        return out + ']';
      }
      let out = '{';
      let first = true;
      for (const key of Object.keys(value)) {
        const item: unknown = (value as Record<string, unknown>)[key];
        if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue;
        out += `${first ? '' : ','}${JSON.stringify(key)}:${jsonText(item)}`;
        first = false;
      }
      return out + '}';
    }
    default:
      return 'null';
  }
}
