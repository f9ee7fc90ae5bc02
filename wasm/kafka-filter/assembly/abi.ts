// proxy-wasm ABI 0.2.1 imports, exactly the subset Envoy provides to network filters. Nothing
// else may be imported: Envoy refuses a module whose imports it cannot resolve.

@external("env", "proxy_log")
declare function proxy_log(level: i32, ptr: usize, len: usize): i32;
@external("env", "proxy_get_buffer_bytes")
declare function proxy_get_buffer_bytes(type: i32, start: usize, len: usize, retPtr: usize, retLen: usize): i32;
@external("env", "proxy_set_buffer_bytes")
declare function proxy_set_buffer_bytes(type: i32, start: usize, len: usize, ptr: usize, size: usize): i32;
@external("env", "proxy_get_property")
declare function proxy_get_property(pathPtr: usize, pathLen: usize, retPtr: usize, retLen: usize): i32;
@external("env", "proxy_get_log_level")
declare function proxy_get_log_level(retLevel: usize): i32;
@external("env", "proxy_close_stream")
declare function proxy_close_stream(streamType: i32): i32;
@external("env", "proxy_define_metric")
declare function proxy_define_metric(type: i32, namePtr: usize, nameLen: usize, retId: usize): i32;
@external("env", "proxy_increment_metric")
declare function proxy_increment_metric(id: u32, delta: i64): i32;

export const BUFFER_DOWNSTREAM: i32 = 2;
export const BUFFER_UPSTREAM: i32 = 3;
export const BUFFER_VM_CONFIGURATION: i32 = 6;
export const BUFFER_PLUGIN_CONFIGURATION: i32 = 7;
export const STREAM_DOWNSTREAM: i32 = 2;

export const LOG_DEBUG: i32 = 1;
export const LOG_INFO: i32 = 2;
export const LOG_WARN: i32 = 3;
export const LOG_ERROR: i32 = 4;

const retPtr = memory.data(8);
const retLen = memory.data(8);

export function log(level: i32, msg: string): void {
  const buf = String.UTF8.encode(msg);
  proxy_log(level, changetype<usize>(buf), <usize>buf.byteLength);
}

/** The host's log level for this module (Envoy: the `wasm` logger's); info when it does not say. */
export function logLevel(): i32 {
  store<u32>(retPtr, <u32>LOG_INFO);
  if (proxy_get_log_level(retPtr) != 0) return LOG_INFO;
  return <i32>load<u32>(retPtr);
}

/** Window reads land here (see allocate): a callback that only reads needs no heap allocation. */
export const SCRATCH_BYTES: usize = 2048;
const scratch: usize = heap.alloc(SCRATCH_BYTES);
let scratchArmed = false;

/** What the host's copies into this module's memory get (proxy_on_memory_allocate, malloc). */
export function allocate(size: usize): usize {
  if (scratchArmed && size <= SCRATCH_BYTES) {
    scratchArmed = false;
    return scratch;
  }
  return heap.alloc(size == 0 ? 1 : size);
}

/**
 * Bytes [start, start+len) of a buffer (len at most SCRATCH_BYTES) in the scratch window, which
 * the next such read overwrites (not to be freed); 0 when none.
 */
export function getBufferScratch(type: i32, start: usize, len: usize): usize {
  scratchArmed = true;
  const ptr = getBuffer(type, start, len);
  scratchArmed = false;
  if (ptr != 0 && ptr != scratch) {
    heap.free(ptr);
    return 0;
  }
  return ptr;
}

/** Bytes [start, start+len) of a buffer, in memory the caller frees with heap.free; 0 when none. */
export function getBuffer(type: i32, start: usize, len: usize): usize {
  store<usize>(retPtr, 0);
  store<usize>(retLen, 0);
  if (proxy_get_buffer_bytes(type, start, len, retPtr, retLen) != 0) return 0;
  return load<usize>(retPtr);
}

export function lastBufferLength(): usize {
  return load<usize>(retLen);
}

/** Envoy's semantics: start 0 drains `len` bytes from the front, then prepends; start >= size appends. */
export function setBuffer(type: i32, start: usize, len: usize, ptr: usize, size: usize): bool {
  return proxy_set_buffer_bytes(type, start, len, ptr, size) == 0;
}

/** A property such as `source.address` (path segments joined by NUL), or null when absent. */
export function getProperty(path: string): string | null {
  const p = String.UTF8.encode(path.replaceAll(".", "\0"));
  store<usize>(retPtr, 0);
  store<usize>(retLen, 0);
  if (proxy_get_property(changetype<usize>(p), <usize>p.byteLength, retPtr, retLen) != 0) return null;
  const ptr = load<usize>(retPtr);
  const len = load<usize>(retLen);
  if (ptr == 0) return null;
  const s = String.UTF8.decodeUnsafe(ptr, len);
  heap.free(ptr);
  return s;
}

export function closeDownstream(): void {
  proxy_close_stream(STREAM_DOWNSTREAM);
}

const METRIC_COUNTER: i32 = 0;

export function defineCounter(name: string): u32 {
  const n = String.UTF8.encode(name);
  store<u32>(retPtr, 0);
  if (proxy_define_metric(METRIC_COUNTER, changetype<usize>(n), <usize>n.byteLength, retPtr) != 0) return 0xffffffff;
  return load<u32>(retPtr);
}

export function incrementCounter(id: u32): void {
  if (id != 0xffffffff) proxy_increment_metric(id, 1);
}

export function addToCounter(id: u32, n: i64): void {
  if (id != 0xffffffff && n != 0) proxy_increment_metric(id, n);
}

/** AssemblyScript's abort, routed to proxy_log: the module must not import `env.abort`. */
export function abortHandler(message: string | null, file: string | null, line: u32, column: u32): void {
  log(LOG_ERROR, "kafka filter aborted: " + (message ? message : "") + " at " + (file ? file : "") + ":" + line.toString() + ":" + column.toString());
  unreachable();
}
