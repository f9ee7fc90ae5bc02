/**
 * Envoy matches `safe_regex` with Google RE2, whose syntax is not ECMAScript's: no lookaround,
 * no backreferences, different escapes. Validating with RE2 itself (compiled to wasm) is the only
 * way to be sure Envoy will accept what `policy check` accepted.
 */
import * as path from 'path';
import { MessageChannel, receiveMessageOnPort, Worker, type MessagePort } from 'worker_threads';

/**
 * Longest regex a policy may hold (the CRD schema's maxLength on method, path and host). Envoy
 * refuses RE2 programs above a small size by default anyway; the cap keeps a megabyte pattern from
 * ever reaching the compiler, whose heap it would exhaust.
 */
export const MAX_REGEX_LENGTH = 1024;

/** Over the cap as the schema counts (code points, as Kubernetes and ajv do, not UTF-16 units). */
export function regexTooLong(pattern: string): boolean {
  if (pattern.length <= MAX_REGEX_LENGTH) return false;
  let points = 0;
  for (const _ of pattern) if (++points > MAX_REGEX_LENGTH) return true;
  return false;
}

export interface Re2Request {
  id: number;
  pattern: string;
}

export interface Re2Reply {
  id: number;
  /** `failed`: the wasm module aborted (out of memory) or did not answer — no verdict on the pattern. */
  verdict: 'valid' | 'invalid' | 'failed';
  reason?: string;
}

/*
 * re2-wasm's heap is a fixed 16 MB that the JS garbage collector never reclaims: a compile that
 * fails leaks its group-name map (measured: about 300 bytes plus 4.5 per pattern character, so
 * 53,000 short invalid patterns fill it; 340,000 valid ones do too), some short patterns fill it
 * at once (`\pL{1000}`), and after the first out-of-memory abort the module answers every compile
 * with that abort. So compiles run in a worker thread that is replaced before its heap can fill
 * (after RECYCLE_AFTER_COMPILES compiles or RECYCLE_AFTER_BYTES pattern characters: at most about
 * 10 MB leaked) and after any abort; a pattern that aborted in a used worker is retried once in a
 * fresh one, so only a pattern that alone exhausts an empty heap is reported.
 *
 * Validation stays synchronous for its callers (the loader, hence `policy check` and every
 * reload of `serve`): the main thread posts the pattern and blocks on Atomics.wait until the
 * worker has queued its reply, then takes it with receiveMessageOnPort.
 */
const RECYCLE_AFTER_COMPILES = 10_000;
const RECYCLE_AFTER_BYTES = 1.5 * 1024 * 1024;
/** A compile of a capped pattern takes milliseconds; this bounds a stuck or dying worker (including its start-up). */
const COMPILE_TIMEOUT_MS = 10_000;
/** An idle worker's 16 MB heap and isolate are given back after this long. */
const IDLE_MS = 30_000;

class Re2Worker {
  private readonly worker: Worker;
  private readonly port: MessagePort;
  private readonly done = new Int32Array(new SharedArrayBuffer(4));
  private nextId = 1;
  compiles = 0;
  bytes = 0;

  constructor() {
    const { port1, port2 } = new MessageChannel();
    this.port = port1;
    this.worker = new Worker(path.join(__dirname, 're2-worker.js'), {
      workerData: { port: port2, signal: this.done.buffer },
      transferList: [port2],
      // The worker silences its own console (an abort's noise); piping its output here instead
      // would keep a finished CLI process alive.
      resourceLimits: { maxOldGenerationSizeMb: 64, maxYoungGenerationSizeMb: 16 },
    });
    // A worker that dies shows up as a timed-out compile; its error event must not crash the process.
    this.worker.on('error', () => undefined);
    this.worker.unref();
    this.port.unref();
  }

  compile(pattern: string): Re2Reply {
    const id = this.nextId++;
    this.compiles++;
    this.bytes += pattern.length;
    Atomics.store(this.done, 0, 0);
    this.port.postMessage({ id, pattern } satisfies Re2Request);
    const waited = Atomics.wait(this.done, 0, 0, COMPILE_TIMEOUT_MS);
    const reply = receiveMessageOnPort(this.port)?.message as Re2Reply | undefined;
    if (waited === 'timed-out' || !reply || reply.id !== id) {
      return { id, verdict: 'failed', reason: `no answer from the RE2 validator within ${COMPILE_TIMEOUT_MS} ms` };
    }
    return reply;
  }

  worn(): boolean {
    return this.compiles >= RECYCLE_AFTER_COMPILES || this.bytes >= RECYCLE_AFTER_BYTES;
  }

  close(): void {
    this.port.close();
    void this.worker.terminate();
  }
}

let current: Re2Worker | undefined;
let idleTimer: NodeJS.Timeout | undefined;
let workersStarted = 0;

function retire(): void {
  current?.close();
  current = undefined;
}

function compileOnce(pattern: string, fresh: boolean): { reply: Re2Reply; onEmptyHeap: boolean } {
  if (fresh || current?.worn()) retire();
  if (!current) {
    current = new Re2Worker();
    workersStarted++;
  }
  const onEmptyHeap = current.compiles === 0;
  const reply = current.compile(pattern);
  if (reply.verdict === 'failed') retire();
  return { reply, onEmptyHeap };
}

function compileInWorker(pattern: string): Re2Reply {
  const first = compileOnce(pattern, false);
  // An abort in a used worker may be the accumulated heap's fault rather than this pattern's.
  const reply = first.reply.verdict === 'failed' && !first.onEmptyHeap ? compileOnce(pattern, true).reply : first.reply;
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(retire, IDLE_MS).unref();
  return reply;
}

/** How many validator workers this process has started (for tests of the recycling). */
export function re2WorkersStarted(): number {
  return workersStarted;
}

/*
 * Verdicts are memoised per pattern: a `serve` re-checking every file on each reload then sends
 * only patterns it has not seen. The bound keeps a stream of ever-new patterns from growing the
 * memo without limit (at most MEMO_LIMIT × MAX_REGEX_LENGTH characters, as longer patterns are
 * refused by the schema and never checked here).
 */
const MEMO_LIMIT = 4096;
const memo = new Map<string, string | undefined>();

/** Undefined when `pattern` is valid RE2, else RE2's own explanation (or why it could not be compiled). */
export function re2SyntaxError(pattern: string): string | undefined {
  if (memo.has(pattern)) {
    const known = memo.get(pattern);
    // Re-inserted so the least recently checked pattern is the one evicted.
    memo.delete(pattern);
    memo.set(pattern, known);
    return known;
  }
  if (regexTooLong(pattern)) return `longer than ${MAX_REGEX_LENGTH} characters`;
  const reply = compileInWorker(pattern);
  let problem: string | undefined;
  if (reply.verdict === 'invalid') problem = reply.reason;
  else if (reply.verdict === 'failed') {
    // Out of memory on an empty heap is the pattern's own doing, hence a verdict worth keeping;
    // a timeout may be a loaded machine's, so it is not remembered as the pattern's.
    if (!/OOM|enlarge memory/.test(reply.reason ?? '')) return `not checked: ${reply.reason ?? 'the RE2 validator failed'}`;
    problem = 'too large to compile (RE2 ran out of memory on this pattern alone); use fewer or smaller repetitions, especially of Unicode classes';
  }
  if (memo.size >= MEMO_LIMIT) {
    const oldest = memo.keys().next();
    if (!oldest.done) memo.delete(oldest.value);
  }
  memo.set(pattern, problem);
  return problem;
}
