/**
 * Whether `JSON.stringify(a) === JSON.stringify(b)` for JSON data (no toJSON, no cycles), without
 * writing either out: parts that are the same object are equal at once, so two compiled
 * policies that share most of their parts (the engine reuses unchanged rules and peer lists)
 * compare in the time it takes to walk what differs. Key order counts, as it does in the text.
 */
export function sameJson(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return sameScalarText(a, b);
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameJson(listItem(a[i]), listItem(b[i]))) return false;
    return true;
  }
  const ka = presentKeys(a as Record<string, unknown>);
  const kb = presentKeys(b as Record<string, unknown>);
  if (ka.length !== kb.length) return false;
  for (let i = 0; i < ka.length; i++) {
    if (ka[i] !== kb[i]) return false;
    if (!sameJson((a as Record<string, unknown>)[ka[i]], (b as Record<string, unknown>)[kb[i]])) return false;
  }
  return true;
}

/** Keys JSON text writes: those whose value is not undefined, a function or a symbol. */
function presentKeys(o: Record<string, unknown>): string[] {
  return Object.keys(o).filter((k) => written(o[k]));
}

function written(v: unknown): boolean {
  return v !== undefined && typeof v !== 'function' && typeof v !== 'symbol';
}

/** A list writes what an object leaves out as `null`. */
function listItem(v: unknown): unknown {
  return written(v) ? v : null;
}

function sameScalarText(a: unknown, b: unknown): boolean {
  // Only here when a !== b: equal text is then NaN, Infinity and null (all `null`), never an object.
  if ((typeof a === 'object' && a !== null) || (typeof b === 'object' && b !== null)) return false;
  return JSON.stringify(a) === JSON.stringify(b);
}
