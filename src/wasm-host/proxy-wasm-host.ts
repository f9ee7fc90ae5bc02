/**
 * A proxy-wasm (ABI 0.2.1) host for network filters: the subset of the ABI Envoy gives a
 * network filter, with Envoy's buffer and stream semantics. It exists to run and test the
 * filters this repository builds without Envoy. It is a test host, not a data plane.
 *
 * Semantics copied from Envoy (source/extensions/common/wasm/context.cc):
 * - `proxy_set_buffer_bytes(start = 0, length = n)` drains n bytes from the front and prepends
 *   the data; `start >= size` appends; anything else is BadArgument.
 * - a data callback returning Continue passes the whole buffer on (it is drained); returning
 *   StopIteration keeps it buffered, and the next callback is presented the larger buffer.
 * - `proxy_close_stream` closes the connection.
 * - a trap fails the VM: with fail_open false (the only mode here) its connections close,
 *   and so does every later one.
 */
import * as fs from 'fs';

export enum WasmResult {
  Ok = 0,
  NotFound = 1,
  BadArgument = 2,
  InvalidMemoryAccess = 5,
  Unimplemented = 12,
}

export enum BufferType {
  HttpRequestBody = 0,
  HttpResponseBody = 1,
  DownstreamData = 2,
  UpstreamData = 3,
  HttpCallResponseBody = 4,
  GrpcReceiveBuffer = 5,
  VmConfiguration = 6,
  PluginConfiguration = 7,
}

export enum FilterStatus {
  Continue = 0,
  StopIteration = 1,
}

/** What Envoy exports to a network filter module (module "env"); a module importing anything else is refused. */
export const NETWORK_FILTER_IMPORTS: readonly string[] = [
  'proxy_log',
  'proxy_get_log_level',
  'proxy_get_buffer_bytes',
  'proxy_set_buffer_bytes',
  'proxy_get_buffer_status',
  'proxy_get_property',
  'proxy_set_property',
  'proxy_continue_stream',
  'proxy_close_stream',
  'proxy_get_current_time_nanoseconds',
  'proxy_set_tick_period_milliseconds',
  'proxy_define_metric',
  'proxy_increment_metric',
  'proxy_record_metric',
  'proxy_get_metric',
  'proxy_done',
  'proxy_set_effective_context',
];

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'critical';
const LEVELS: readonly LogLevel[] = ['trace', 'debug', 'info', 'warn', 'error', 'critical'];

export interface HostOptions {
  log?: (level: LogLevel, message: string) => void;
  /** What `proxy_get_log_level` answers (Envoy: the `wasm` logger's level). Default info. */
  logLevel?: LogLevel;
}

/** Connection properties a filter may read (`source.address`, `destination.address`, ...). */
export type StreamProperties = Readonly<Record<string, string | undefined>>;

interface FilterExports {
  memory: WebAssembly.Memory;
  proxy_on_memory_allocate(size: number): number;
  proxy_on_context_create(id: number, parent: number): void;
  proxy_on_vm_start(root: number, size: number): number;
  proxy_on_configure(root: number, size: number): number;
  proxy_on_new_connection(id: number): number;
  proxy_on_downstream_data(id: number, size: number, eos: number): number;
  proxy_on_upstream_data(id: number, size: number, eos: number): number;
  proxy_on_downstream_connection_close(id: number, peer: number): void;
  proxy_on_upstream_connection_close(id: number, peer: number): void;
  proxy_on_done(id: number): number;
  proxy_on_delete(id: number): void;
}

const REQUIRED_EXPORTS = [
  'memory',
  'proxy_on_memory_allocate',
  'proxy_on_context_create',
  'proxy_on_vm_start',
  'proxy_on_configure',
  'proxy_on_new_connection',
  'proxy_on_downstream_data',
  'proxy_on_upstream_data',
  'proxy_on_downstream_connection_close',
  'proxy_on_upstream_connection_close',
  'proxy_on_done',
  'proxy_on_delete',
] as const;

/** The filter's counters (proxy_define_metric), by name. */
export type Counters = Map<string, number>;

/**
 * One VM: a module instance with its root contexts (one per configuration it was given) and
 * its connections. The VM is shared, as Envoy shares one per worker between the filter
 * configurations with the same vm_id.
 */
export class ProxyWasmVm {
  // Counter values by slot; metric ids (1, 2, ...) map to slots, one slot per name.
  private readonly slotNames: string[] = [];
  private readonly slotValues: number[] = [];
  private readonly slotOfMetric: number[] = [-1];
  /** Set once the VM trapped: it serves nothing afterwards (fail closed). */
  failure: Error | undefined;
  /** Bytes of connection data the module has copied in (proxy_get_buffer_bytes): what reading costs it. */
  streamBytesRead = 0;
  private readonly exports: FilterExports;
  private nextContext = 1;
  private current: NetworkStream | undefined;
  private pluginConfig: Buffer = Buffer.alloc(0);
  private readonly streams = new Set<NetworkStream>();
  private readonly log: (level: LogLevel, message: string) => void;
  private readonly logLevel: number;

  private constructor(module: WebAssembly.Module, options: HostOptions) {
    this.logLevel = LEVELS.indexOf(options.logLevel ?? 'info');
    this.log =
      options.log ??
      ((level, message) => {
        if (level !== 'trace' && level !== 'debug') process.stderr.write(`[wasm ${level}] ${message}\n`);
      });
    const missing = WebAssembly.Module.imports(module).filter((i) => i.module !== 'env' || !NETWORK_FILTER_IMPORTS.includes(i.name));
    if (missing.length)
      throw new Error(`the module imports what Envoy does not provide to network filters: ${missing.map((i) => `${i.module}.${i.name}`).join(', ')}`);
    const names = new Set(WebAssembly.Module.exports(module).map((e) => e.name));
    const absent = REQUIRED_EXPORTS.filter((n) => !names.has(n));
    if (absent.length) throw new Error(`the module is not a proxy-wasm network filter: it does not export ${absent.join(', ')}`);
    if (!names.has('proxy_abi_version_0_2_1')) throw new Error('the module does not declare proxy-wasm ABI 0.2.1 (export proxy_abi_version_0_2_1)');
    const instance = new WebAssembly.Instance(module, { env: this.imports() });
    this.exports = instance.exports as unknown as FilterExports;
  }

  static fromBytes(bytes: Uint8Array, options: HostOptions = {}): ProxyWasmVm {
    return new ProxyWasmVm(new WebAssembly.Module(bytes), options);
  }

  /** A VM of an already compiled module (compiling is the costly part; instances are cheap). */
  static fromModule(module: WebAssembly.Module, options: HostOptions = {}): ProxyWasmVm {
    return new ProxyWasmVm(module, options);
  }

  static fromFile(path: string, options: HostOptions = {}): ProxyWasmVm {
    return ProxyWasmVm.fromBytes(fs.readFileSync(path), options);
  }

  /**
   * A new root context with this plugin configuration (as Envoy makes for a new ECDS
   * PluginConfig). Returns its id, or undefined when the filter refused the configuration;
   * the previous root contexts keep serving then.
   */
  configure(config: Uint8Array): number | undefined {
    this.guard();
    const root = this.nextContext++;
    this.pluginConfig = Buffer.from(config);
    try {
      return this.call(undefined, () => {
        this.exports.proxy_on_context_create(root, 0);
        if (!this.exports.proxy_on_vm_start(root, 0)) return undefined;
        return this.exports.proxy_on_configure(root, this.pluginConfig.length) ? root : undefined;
      });
    } finally {
      this.pluginConfig = Buffer.alloc(0);
    }
  }

  /** A connection on a root context: the filter's `proxy_on_new_connection` has run when this returns. */
  newConnection(root: number, properties: StreamProperties, onClose: () => void): NetworkStream {
    const id = this.nextContext++;
    const stream = new NetworkStream(this, id, properties, onClose);
    this.streams.add(stream);
    if (this.failure) {
      stream.fail();
      return stream;
    }
    this.call(stream, () => {
      this.exports.proxy_on_context_create(id, root);
      this.exports.proxy_on_new_connection(id);
    });
    return stream;
  }

  /** The counters by name (a snapshot). */
  get counters(): Counters {
    return new Map(this.slotNames.map((name, i) => [name, this.slotValues[i]]));
  }

  counter(name: string): number {
    const slot = this.slotNames.indexOf(name);
    return slot < 0 ? 0 : this.slotValues[slot];
  }

  private slot(name: string): number {
    let slot = this.slotNames.indexOf(name);
    if (slot < 0) {
      slot = this.slotNames.push(name) - 1;
      this.slotValues.push(0);
    }
    return slot;
  }

  /** @internal a data callback (the hot path: no closure per call). */
  dispatchData(stream: NetworkStream, downstream: boolean, size: number, eos: boolean): number | undefined {
    if (this.failure) {
      stream.fail();
      return undefined;
    }
    const previous = this.current;
    this.current = stream;
    try {
      return downstream
        ? this.exports.proxy_on_downstream_data(stream.id, size, eos ? 1 : 0)
        : this.exports.proxy_on_upstream_data(stream.id, size, eos ? 1 : 0);
    } catch (err) {
      this.fail(err);
      return undefined;
    } finally {
      this.current = previous;
    }
  }

  /** @internal */
  forget(stream: NetworkStream): void {
    if (!this.streams.delete(stream) || this.failure) return;
    this.call(stream, () => {
      this.exports.proxy_on_downstream_connection_close(stream.id, 0);
      this.exports.proxy_on_done(stream.id);
      this.exports.proxy_on_delete(stream.id);
    });
  }

  private guard(): void {
    if (this.failure) throw new Error(`the Wasm VM failed earlier: ${this.failure.message}`);
  }

  private call<T>(stream: NetworkStream | undefined, fn: () => T): T | undefined {
    if (this.failure) {
      stream?.fail();
      return undefined;
    }
    const previous = this.current;
    this.current = stream;
    try {
      return fn();
    } catch (err) {
      this.fail(err);
      return undefined;
    } finally {
      this.current = previous;
    }
  }

  private fail(err: unknown): void {
    this.failure = err instanceof Error ? err : new Error(String(err));
    this.slotValues[this.slot('wasm.vm_failures')]++;
    this.log('critical', `Wasm VM failed: ${this.failure.message}; closing its connections (fail_open: false)`);
    for (const s of this.streams) s.fail();
  }

  // Views are rebuilt only when the memory grew (its ArrayBuffer is replaced then).
  private viewsOf: ArrayBuffer | undefined;
  private u8 = new Uint8Array(0);
  private dv = new DataView(new ArrayBuffer(0));

  private refreshViews(): void {
    // Growing the memory detaches its old ArrayBuffer: a view of length 0 is stale (or new).
    if (this.u8.length !== 0) return;
    const b = this.exports.memory.buffer;
    if (b === this.viewsOf) return;
    this.viewsOf = b;
    this.u8 = new Uint8Array(b);
    this.dv = new DataView(b);
  }

  private bytes(): Uint8Array {
    this.refreshViews();
    return this.u8;
  }

  private view(): DataView {
    this.refreshViews();
    return this.dv;
  }

  private read(ptr: number, len: number): Buffer {
    const mem = this.bytes();
    if (ptr < 0 || len < 0 || ptr + len > mem.length) throw new RangeError('memory access out of bounds');
    return Buffer.from(mem.subarray(ptr, ptr + len));
  }

  private buffer(type: number): Buffer | undefined {
    if (type === BufferType.PluginConfiguration) return this.pluginConfig;
    if (type === BufferType.VmConfiguration) return Buffer.alloc(0);
    const s = this.current;
    if (!s) return undefined;
    if (type === BufferType.DownstreamData) return s.downstreamBuffer;
    if (type === BufferType.UpstreamData) return s.upstreamBuffer;
    return undefined;
  }

  private setBuffer(type: number, b: Buffer): boolean {
    const s = this.current;
    if (!s) return false;
    if (type === BufferType.DownstreamData) s.downstreamBuffer = b;
    else if (type === BufferType.UpstreamData) s.upstreamBuffer = b;
    else return false;
    return true;
  }

  private imports(): Record<string, (...args: never[]) => number | bigint | void> {
    // Bytes [start, end) of `data` into memory the module allocates (a range is viewed, not copied twice).
    const writeOut = (data: Uint8Array, retPtr: number, retLen: number, start = 0, end = data.length): number => {
      const n = end - start;
      const ptr = n === 0 ? 0 : this.exports.proxy_on_memory_allocate(n);
      if (n) this.bytes().set(start === 0 && end === data.length ? data : new Uint8Array(data.buffer, data.byteOffset + start, n), ptr);
      const v = this.view();
      v.setUint32(retPtr, ptr, true);
      v.setUint32(retLen, n, true);
      return WasmResult.Ok;
    };
    return {
      proxy_log: (level: number, ptr: number, len: number) => {
        this.log(LEVELS[level] ?? 'info', this.read(ptr, len).toString('utf8'));
        return WasmResult.Ok;
      },
      proxy_get_log_level: (retPtr: number) => {
        this.view().setUint32(retPtr, this.logLevel, true);
        return WasmResult.Ok;
      },
      proxy_get_buffer_bytes: (type: number, start: number, length: number, retPtr: number, retLen: number) => {
        const b = this.buffer(type);
        if (!b) return WasmResult.NotFound;
        if (start > b.length) return WasmResult.BadArgument;
        const end = Math.min(b.length, start + length);
        if (type === BufferType.DownstreamData || type === BufferType.UpstreamData) this.streamBytesRead += end - start;
        return writeOut(b, retPtr, retLen, start, end);
      },
      proxy_get_buffer_status: (type: number, retLen: number, retFlags: number) => {
        const b = this.buffer(type);
        if (!b) return WasmResult.NotFound;
        this.view().setUint32(retLen, b.length, true);
        this.view().setUint32(retFlags, 0, true);
        return WasmResult.Ok;
      },
      proxy_set_buffer_bytes: (type: number, start: number, length: number, ptr: number, size: number) => {
        const b = this.buffer(type);
        if (!b || (type !== BufferType.DownstreamData && type !== BufferType.UpstreamData)) return WasmResult.NotFound;
        const data = this.read(ptr, size);
        if (start === 0) this.setBuffer(type, Buffer.concat([data, b.subarray(Math.min(length, b.length))]));
        else if (start >= b.length) this.setBuffer(type, Buffer.concat([b, data]));
        else return WasmResult.BadArgument;
        return WasmResult.Ok;
      },
      proxy_get_property: (pathPtr: number, pathLen: number, retPtr: number, retLen: number) => {
        const path = this.read(pathPtr, pathLen).toString('utf8').split('\0').join('.');
        const value = this.current?.properties[path];
        if (value === undefined) return WasmResult.NotFound;
        return writeOut(Buffer.from(value, 'utf8'), retPtr, retLen);
      },
      proxy_set_property: () => WasmResult.Ok,
      proxy_continue_stream: () => WasmResult.Ok,
      proxy_close_stream: () => {
        this.current?.requestClose();
        return WasmResult.Ok;
      },
      proxy_get_current_time_nanoseconds: (retPtr: number) => {
        this.view().setBigUint64(retPtr, process.hrtime.bigint(), true);
        return WasmResult.Ok;
      },
      proxy_set_tick_period_milliseconds: () => WasmResult.Ok,
      proxy_define_metric: (_type: number, namePtr: number, nameLen: number, retId: number) => {
        const id = this.slotOfMetric.push(this.slot(this.read(namePtr, nameLen).toString('utf8'))) - 1;
        this.view().setUint32(retId, id, true);
        return WasmResult.Ok;
      },
      proxy_increment_metric: (id: number, delta: bigint) => {
        const slot = this.slotOfMetric[id];
        if (slot === undefined || slot < 0) return WasmResult.NotFound;
        this.slotValues[slot] += Number(delta);
        return WasmResult.Ok;
      },
      proxy_record_metric: (id: number, value: bigint) => {
        const slot = this.slotOfMetric[id];
        if (slot === undefined || slot < 0) return WasmResult.NotFound;
        this.slotValues[slot] = Number(value);
        return WasmResult.Ok;
      },
      proxy_get_metric: (id: number, retPtr: number) => {
        const slot = this.slotOfMetric[id];
        if (slot === undefined || slot < 0) return WasmResult.NotFound;
        this.view().setBigUint64(retPtr, BigInt(this.slotValues[slot]), true);
        return WasmResult.Ok;
      },
      proxy_done: () => WasmResult.Ok,
      proxy_set_effective_context: () => WasmResult.Ok,
    };
  }
}

const EMPTY = Buffer.alloc(0);

/**
 * One connection through the filter. Feed it what each side sent; it returns what passes on
 * to the other side (empty while the filter holds data back).
 */
export class NetworkStream {
  downstreamBuffer: Buffer = EMPTY;
  upstreamBuffer: Buffer = EMPTY;
  closed = false;

  constructor(
    private readonly vm: ProxyWasmVm,
    readonly id: number,
    readonly properties: StreamProperties,
    private readonly onClose: () => void,
  ) {}

  /** Bytes from the client; returns the bytes to send upstream. */
  downstream(chunk: Buffer, endOfStream = false): Buffer {
    return this.data(chunk, endOfStream, true);
  }

  /** Bytes from the upstream; returns the bytes to send to the client. */
  upstream(chunk: Buffer, endOfStream = false): Buffer {
    return this.data(chunk, endOfStream, false);
  }

  private data(chunk: Buffer, eos: boolean, down: boolean): Buffer {
    if (this.closed) return EMPTY;
    if (down) this.downstreamBuffer = this.downstreamBuffer.length ? Buffer.concat([this.downstreamBuffer, chunk]) : chunk;
    else this.upstreamBuffer = this.upstreamBuffer.length ? Buffer.concat([this.upstreamBuffer, chunk]) : chunk;
    const size = down ? this.downstreamBuffer.length : this.upstreamBuffer.length;
    const status = this.vm.dispatchData(this, down, size, eos);
    if (this.closed || status === undefined || status !== FilterStatus.Continue) return EMPTY;
    const out = down ? this.downstreamBuffer : this.upstreamBuffer;
    if (down) this.downstreamBuffer = EMPTY;
    else this.upstreamBuffer = EMPTY;
    return out;
  }

  /** The connection ended (either side): the filter's context is finished and deleted. */
  finish(): void {
    if (!this.closed) this.closed = true;
    this.vm.forget(this);
  }

  /** @internal the filter asked to close the connection. */
  requestClose(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }

  /** @internal the VM failed: fail closed. */
  fail(): void {
    this.requestClose();
  }
}
