// Topic id -> name (KIP-516), learned from the Metadata responses (v10+) that pass from the
// broker to the client. Requests that name topics by id only (Fetch v13+, ...) are judged by the
// learned name; an id no response has named stays unknown (denied where a topic rule applies).
// The map is per VM (a worker in Envoy) and per port configuration name, so a port's ids never
// name another port's topics. It is bounded: past the limit it starts over (ids are then
// unknown until the next Metadata response names them again, which fails closed).
import * as r from "./reader";

const LIMIT: i32 = 65536;
let total: i32 = 0;

class Learned {
  lo: u64 = 0;
  name: ArrayBuffer = new ArrayBuffer(0);
  next: Learned | null = null;
}

/** One port's ids, keyed by their first 8 bytes (chained on the rare equal first half). */
export class Scope {
  byHi: Map<u64, Learned> = new Map<u64, Learned>();
}

const scopes = new Map<string, Scope>();

/** The ids learned on the port configuration `name` (a connection keeps it: no lookup by name per request). */
export function scopeOf(name: string): Scope {
  if (scopes.has(name)) return scopes.get(name);
  const s = new Scope();
  scopes.set(name, s);
  return s;
}

function learn(scope: Scope, id: usize, name: usize, len: i32): void {
  if (len <= 0) return;
  const hi = load<u64>(id);
  const lo = load<u64>(id + 8);
  if (hi == 0 && lo == 0) return; // Uuid.ZERO_UUID: no id
  if (total >= LIMIT) {
    const all = scopes.values();
    for (let i = 0; i < all.length; i++) all[i].byHi.clear();
    total = 0;
  }
  const b = new ArrayBuffer(len);
  memory.copy(changetype<usize>(b), name, <usize>len);
  const first: Learned | null = scope.byHi.has(hi) ? scope.byHi.get(hi) : null;
  let same = first;
  while (same !== null) {
    if (same.lo == lo) {
      same.name = b;
      return;
    }
    same = same.next;
  }
  const e = new Learned();
  e.lo = lo;
  e.name = b;
  e.next = first;
  scope.byHi.set(hi, e);
  total++;
}

/** The learned name of the 16-byte id at `id`, or null. */
export function nameOf(scope: Scope, id: usize): ArrayBuffer | null {
  const hi = load<u64>(id);
  if (!scope.byHi.has(hi)) return null;
  const lo = load<u64>(id + 8);
  let e: Learned | null = scope.byHi.get(hi);
  while (e !== null) {
    if (e.lo == lo) return e.name;
    e = e.next;
  }
  return null;
}

export function known(): i32 {
  return total;
}

/**
 * Reads the Metadata response frame at [ptr, ptr+n) (length prefix included) of `version`
 * (10+) and learns its topics' ids. False when it is not a well-formed Metadata response.
 */
export function learnFromMetadata(scope: Scope, ptr: usize, n: usize, version: i32): bool {
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
    const idAt = r.uuid();
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
