// A bounds-checked cursor over one Kafka frame in linear memory. Every read checks the end;
// a failed read sets `bad` and returns 0, so parsers check once per structure instead of per field.

export let pos: usize = 0;
export let end: usize = 0;
export let bad: bool = false;
/** The request (or response) uses a flexible version: compact strings/arrays and tagged fields. */
export let flex: bool = false;

export function reset(start: usize, stop: usize, flexible: bool): void {
  pos = start;
  end = stop;
  bad = false;
  flex = flexible;
}

export function setFlex(f: bool): void {
  flex = f;
}

function need(n: usize): bool {
  if (bad || end - pos < n) {
    bad = true;
    return false;
  }
  return true;
}

export function int8(): i32 {
  if (!need(1)) return 0;
  const v = <i32>load<i8>(pos);
  pos += 1;
  return v;
}

export function int16(): i32 {
  if (!need(2)) return 0;
  const v = <i32><i16>bswap<u16>(load<u16>(pos));
  pos += 2;
  return v;
}

export function int32(): i32 {
  if (!need(4)) return 0;
  const v = <i32>bswap<u32>(load<u32>(pos));
  pos += 4;
  return v;
}

export function skip(n: usize): void {
  if (need(n)) pos += n;
}

export function uvarint(): u32 {
  let v: u32 = 0;
  for (let shift: u32 = 0; shift < 35; shift += 7) {
    if (!need(1)) return 0;
    const b = <u32>load<u8>(pos);
    pos += 1;
    v |= (b & 0x7f) << shift;
    if ((b & 0x80) == 0) return v;
  }
  bad = true;
  return 0;
}

// String reads leave the bytes in place: strPtr/strLen describe the last one (strLen -1 = null).
export let strPtr: usize = 0;
export let strLen: i32 = 0;

/** A (nullable) string or bytes field; compact in flexible versions. */
function lengthPrefixed(bytes: bool): void {
  let n: i64;
  if (flex) n = <i64>uvarint() - 1;
  else n = bytes ? <i64>int32() : <i64>int16();
  if (bad) return;
  if (n < -1) {
    bad = true;
    return;
  }
  strPtr = pos;
  strLen = <i32>n;
  if (n > 0) skip(<usize>n);
}

export function str(): void {
  lengthPrefixed(false);
}

export function bytes(): void {
  lengthPrefixed(true);
}

/**
 * An array's element count (-1 for null). `minElem` is the fewest bytes one element can take:
 * a count the remaining bytes cannot hold is malformed, so no count (2^29 or more) drives a loop.
 */
export function array(minElem: usize): i32 {
  let n: i64;
  if (flex) n = <i64>uvarint() - 1;
  else n = <i64>int32();
  if (bad) return 0;
  if (n < -1 || (n > 0 && <u64>n * <u64>minElem > <u64>(end - pos))) {
    bad = true;
    return 0;
  }
  return <i32>n;
}

/** Tagged fields (flexible versions only): count, then tag, size and data each. */
export function tags(): void {
  if (!flex) return;
  const n = uvarint();
  if (<usize>n > end - pos) {
    bad = true;
    return;
  }
  for (let i: u32 = 0; i < n && !bad; i++) {
    uvarint();
    const size = uvarint();
    skip(<usize>size);
  }
}
