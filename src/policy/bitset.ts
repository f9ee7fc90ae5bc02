/**
 * Fixed-width bitsets over identity slots (dense small integers), 32 slots per word. Used by
 * the selector cache's full regeneration: a selector's selection is a few word-wise ANDs of
 * per-label bitsets instead of a label match per identity.
 */
export type Bits = Uint32Array;

export function wordsFor(slots: number): number {
  return Math.max(1, Math.ceil(slots / 32));
}

export function setBit(b: Bits, slot: number): void {
  b[slot >>> 5] |= 1 << (slot & 31);
}

export function clearBit(b: Bits, slot: number): void {
  b[slot >>> 5] &= ~(1 << (slot & 31));
}

/** A copy widened to `words` (new words zero). */
export function widen(b: Bits, words: number): Bits {
  const out = new Uint32Array(words);
  out.set(b.subarray(0, Math.min(b.length, words)));
  return out;
}

// Word loops kept in tiny functions of their own: V8 optimises and inlines these well, where
// the same loops inside a large function ran several times slower.

export function andInto(out: Bits, b: Bits): void {
  for (let w = 0; w < out.length; w++) out[w] &= b[w];
}

export function andNotInto(out: Bits, b: Bits): void {
  for (let w = 0; w < out.length; w++) out[w] &= ~b[w];
}

export function orInto(out: Bits, b: Bits): void {
  for (let w = 0; w < out.length; w++) out[w] |= b[w];
}

export function equalBits(a: Bits, b: Bits): boolean {
  for (let w = 0; w < a.length; w++) if (a[w] !== b[w]) return false;
  return true;
}

export function isZero(a: Bits): boolean {
  for (let w = 0; w < a.length; w++) if (a[w] !== 0) return false;
  return true;
}

/** Whether `a & b` equals `bits`, without materialising `a & b`. */
export function equalsAnd(a: Bits, b: Bits, bits: Bits): boolean {
  for (let w = 0; w < bits.length; w++) if (((a[w] & b[w]) >>> 0) !== bits[w]) return false;
  return true;
}
