// Topic id -> name (KIP-516), learned from the Metadata responses (v10+) that pass from the
// broker to the client. Requests that name topics by id only (Fetch v13+, ...) are judged by the
// learned name; an id no response has named stays unknown (denied where a topic rule applies).
// The map is per VM (a worker in Envoy) and per port configuration name, so a port's ids never
// name another port's topics. It is bounded: past the limit it starts over (ids are then
// unknown until the next Metadata response names them again, which fails closed).
import * as r from "./reader";

const LIMIT: i32 = 65536;
const names = new Map<string, ArrayBuffer>();

function key(scope: string, id: usize): string {
  let s = scope + "/";
  for (let i: usize = 0; i < 16; i++) {
    const b = <u32>load<u8>(id + i);
    s += String.fromCharCode(b < 0x80 ? b + 0x100 : b);
  }
  return s;
}

function learn(scope: string, id: usize, name: usize, len: i32): void {
  if (len <= 0) return;
  let zero = true;
  for (let i: usize = 0; i < 16; i++) if (load<u8>(id + i) != 0) zero = false;
  if (zero) return; // Uuid.ZERO_UUID: no id
  if (names.size >= LIMIT) names.clear();
  const b = new ArrayBuffer(len);
  memory.copy(changetype<usize>(b), name, <usize>len);
  names.set(key(scope, id), b);
}

/** The learned name of the 16-byte id at `id`, or null. */
export function nameOf(scope: string, id: usize): ArrayBuffer | null {
  const k = key(scope, id);
  return names.has(k) ? names.get(k) : null;
}

export function known(): i32 {
  return names.size;
}

/**
 * Reads the Metadata response frame at [ptr, ptr+n) (length prefix included) of `version`
 * (10+) and learns its topics' ids. False when it is not a well-formed Metadata response.
 */
export function learnFromMetadata(scope: string, ptr: usize, n: usize, version: i32): bool {
  r.reset(ptr + 8, ptr + n, true); // Metadata v9+ is flexible
  r.tags();
  r.int32(); // throttle_time_ms
  const nb = r.array(1);
  for (let i = 0; i < nb && !r.bad; i++) {
    r.int32();
    r.str();
    r.int32();
    r.str();
    r.tags();
  }
  r.str(); // cluster_id
  r.int32(); // controller_id
  const nt = r.array(1);
  for (let t = 0; t < nt && !r.bad; t++) {
    const code = r.int16();
    r.str();
    const namePtr = r.strPtr;
    const nameLen = r.strLen;
    const idAt = r.pos;
    r.skip(16);
    r.int8(); // is_internal
    const np = r.array(1);
    for (let j = 0; j < np && !r.bad; j++) {
      r.int16();
      r.int32();
      r.int32();
      r.int32(); // leader_epoch (v7+)
      for (let a = 0; a < 3 && !r.bad; a++) {
        const nr = r.array(4);
        r.skip(<usize>(nr < 0 ? 0 : nr) * 4);
      }
      r.tags();
    }
    r.int32(); // topic_authorized_operations
    r.tags();
    if (!r.bad && code == 0) learn(scope, idAt, namePtr, nameLen);
  }
  return !r.bad;
}
