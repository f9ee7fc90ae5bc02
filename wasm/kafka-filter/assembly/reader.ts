// A bounds-checked cursor over one Kafka frame. Every read checks the end; a failed read sets
// `bad` and returns 0, so parsers check once per structure instead of per field.
// The frame is either all in linear memory (`reset`: positions are addresses) or in the host's
// buffer (`resetWindowed`: positions are buffer offsets), read through windows that are fetched
// only where a field is read, so the bytes a parser skips (records) are never copied in.
import * as abi from "./abi";

export let pos: usize = 0;
export let end: usize = 0;
export let bad: bool = false;
/** The request (or response) uses a flexible version: compact strings/arrays and tagged fields. */
export let flex: bool = false;
// Bytes at positions below winEnd (from the window's start on) are in memory at base + position.
let base: usize = 0;
let winEnd: usize = 0;
/** The host buffer windows come from; -1: the frame is all in memory. */
let source: i32 = -1;
/** Windows fetched within the current frame: what was read from them stays valid until releaseWindows. */
const fetched = new Array<usize>();
const REFILL: usize = 512;

export function reset(start: usize, stop: usize, flexible: bool): void {
  pos = start;
  end = stop;
  base = 0;
  winEnd = stop;
  source = -1;
  bad = false;
  flex = flexible;
}

/**
 * A frame at offsets [start, stop) of host buffer `buffer`, whose bytes from `winStart` to
 * `winStop` are in memory at `mem`.
 */
export function resetWindowed(start: usize, stop: usize, buffer: i32, winStart: usize, winStop: usize, mem: usize): void {
  pos = start;
  end = stop;
  base = mem - winStart;
  winEnd = winStop;
  source = buffer;
  bad = false;
  flex = false;
}

export function setFlex(f: bool): void {
  flex = f;
}

export function releaseWindows(): void {
  for (let i = 0; i < fetched.length; i++) heap.free(fetched[i]);
  fetched.length = 0;
}

function refill(n: usize): bool {
  if (source < 0) {
    bad = true;
    return false;
  }
  const want = min<usize>(end - pos, max<usize>(n, REFILL));
  const mem = abi.getBuffer(source, pos, want);
  if (mem == 0 || abi.lastBufferLength() < n) {
    if (mem != 0) heap.free(mem);
    bad = true;
    return false;
  }
  fetched.push(mem);
  base = mem - pos;
  winEnd = pos + abi.lastBufferLength();
  return true;
}

function need(n: usize): bool {
  if (bad || end - pos < n) {
    bad = true;
    return false;
  }
  return pos + n <= winEnd || refill(n);
}

/** The memory address of the current position (valid for bytes `need` has mapped). */
@inline function at(): usize {
  return base + pos;
}

export function int8(): i32 {
  if (!need(1)) return 0;
  const v = <i32>load<i8>(at());
  pos += 1;
  return v;
}

export function int16(): i32 {
  if (!need(2)) return 0;
  const v = <i32><i16>bswap<u16>(load<u16>(at()));
  pos += 2;
  return v;
}

export function int32(): i32 {
  if (!need(4)) return 0;
  const v = <i32>bswap<u32>(load<u32>(at()));
  pos += 4;
  return v;
}

/** Skips n bytes without reading (or fetching) them. */
export function skip(n: usize): void {
  if (bad || end - pos < n) bad = true;
  else pos += n;
}

/** A 16-byte id (a Uuid) in place: its address, valid until the frame's windows are released. */
export function uuid(): usize {
  if (!need(16)) return 0;
  const q = at();
  pos += 16;
  return q;
}

export function uvarint(): u32 {
  let v: u32 = 0;
  for (let shift: u32 = 0; shift < 35; shift += 7) {
    if (!need(1)) return 0;
    const b = <u32>load<u8>(at());
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
  strLen = <i32>n;
  if (bytes) {
    // Content not read: record batches are skipped without being fetched.
    strPtr = 0;
    if (n > 0) skip(<usize>n);
    return;
  }
  if (n > 0 && !need(<usize>n)) return;
  strPtr = at();
  if (n > 0) pos += <usize>n;
}

/** A (nullable) string, in place: strPtr/strLen. */
export function str(): void {
  lengthPrefixed(false);
}

/** A (nullable) bytes field, skipped: only strLen is set. */
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
