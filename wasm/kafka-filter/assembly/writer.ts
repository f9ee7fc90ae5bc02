// Big-endian Kafka encoding into one growable buffer; compact forms in flexible versions.

export let buf: usize = heap.alloc(4096);
let cap: usize = 4096;
export let len: usize = 0;
let flex: bool = false;

export function start(flexible: bool): void {
  len = 0;
  flex = flexible;
}

export function setFlex(f: bool): void {
  flex = f;
}

function room(n: usize): void {
  if (len + n <= cap) return;
  let c = cap * 2;
  while (c < len + n) c *= 2;
  buf = heap.realloc(buf, c);
  cap = c;
}

export function int8(v: i32): void { room(1); store<u8>(buf + len, <u8>v); len += 1; }
export function int16(v: i32): void { room(2); store<u16>(buf + len, bswap<u16>(<u16>v)); len += 2; }
export function int32(v: i32): void { room(4); store<u32>(buf + len, bswap<u32>(<u32>v)); len += 4; }
export function int64(v: i64): void { room(8); store<u64>(buf + len, bswap<u64>(<u64>v)); len += 8; }
export function raw(ptr: usize, n: usize): void { room(n); memory.copy(buf + len, ptr, n); len += n; }

export function uvarint(v: u32): void {
  while (v >= 0x80) {
    int8(<i32>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  int8(<i32>v);
}

/** An array's element count; -1 writes null. */
export function array(n: i32): void {
  if (flex) uvarint(<u32>(n + 1));
  else int32(n);
}

/** A string (or null with len -1). */
export function str(ptr: usize, n: i32): void {
  if (flex) uvarint(<u32>(n + 1));
  else int16(n);
  if (n > 0) raw(ptr, <usize>n);
}

export function emptyStr(): void { str(0, 0); }
export function nullStr(): void { str(0, -1); }

/** Empty bytes (not null). */
export function emptyBytes(): void {
  if (flex) uvarint(1);
  else int32(0);
}

export function tags(): void {
  if (flex) uvarint(0);
}

/** Patches the frame's length prefix (the first 4 bytes) once everything is written. */
export function finishFrame(): void {
  store<u32>(buf, bswap<u32>(<u32>(len - 4)));
}
