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
  patterns: string[];
}

export interface Re2Verdict {
  /** `failed`: the wasm module aborted (out of memory) or did not answer — no verdict on the pattern. */
  verdict: 'valid' | 'invalid' | 'failed';
  reason?: string;
}

export interface Re2Reply {
  id: number;
  /** One per pattern, in order; shorter than the request if a compile aborted (the last one failed). */
  verdicts: Re2Verdict[];
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
 * reload of `serve`): the main thread posts a batch of patterns and blocks on Atomics.wait until
 * the worker has queued its reply, then takes it with receiveMessageOnPort.
 */
const RECYCLE_AFTER_COMPILES = 10_000;
const RECYCLE_AFTER_BYTES = 1.5 * 1024 * 1024;
/**
 * Patterns per round trip. Slow valid patterns take up to about 150 ms each (large Unicode
 * classes repeated), so a batch stays well inside the timeout; the thread wake-ups of one round
 * trip per pattern cost as much as the compiles themselves.
 */
const BATCH = 64;
/** Bounds a stuck or dying worker (including its start-up) per batch. */
const BATCH_TIMEOUT_MS = 15_000;
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
    // A worker that dies shows up as a timed-out batch; its error event must not crash the process.
    this.worker.on('error', () => undefined);
    this.worker.unref();
    this.port.unref();
  }

  /** Verdicts for a prefix of `patterns`: all of them, or up to and including the first failure. */
  compile(patterns: string[]): Re2Verdict[] {
    const id = this.nextId++;
    Atomics.store(this.done, 0, 0);
    this.port.postMessage({ id, patterns } satisfies Re2Request);
    const waited = Atomics.wait(this.done, 0, 0, BATCH_TIMEOUT_MS);
    const reply = receiveMessageOnPort(this.port)?.message as Re2Reply | undefined;
    if (waited === 'timed-out' || !reply || reply.id !== id) {
      return [{ verdict: 'failed', reason: `no answer from the RE2 validator within ${BATCH_TIMEOUT_MS} ms` }];
    }
    for (const p of patterns.slice(0, reply.verdicts.length)) {
      this.compiles++;
      this.bytes += p.length;
    }
    return reply.verdicts;
  }

  /** How many of `patterns` (from `from`) fit in what is left of this worker's budget, at most BATCH. */
  room(patterns: readonly string[], from: number): number {
    let n = 0;
    let bytes = this.bytes;
    while (from + n < patterns.length && n < BATCH && this.compiles + n < RECYCLE_AFTER_COMPILES && bytes < RECYCLE_AFTER_BYTES) {
      bytes += patterns[from + n].length;
      n++;
    }
    return n;
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

function worker(): Re2Worker {
  if (!current) {
    current = new Re2Worker();
    workersStarted++;
  }
  return current;
}

/** A verdict per pattern, in order, from as many workers as the budget and aborts take. */
function compileInWorkers(patterns: readonly string[]): Re2Verdict[] {
  const out: Re2Verdict[] = [];
  while (out.length < patterns.length) {
    let w = worker();
    let n = w.room(patterns, out.length);
    if (n === 0) {
      retire();
      w = worker();
      n = w.room(patterns, out.length);
    }
    const onEmptyHeap = w.compiles === 0;
    const verdicts = w.compile(patterns.slice(out.length, out.length + n));
    const last = verdicts[verdicts.length - 1];
    if (last.verdict !== 'failed') {
      out.push(...verdicts);
      continue;
    }
    retire();
    out.push(...verdicts.slice(0, -1));
    // An abort after other compiles may be the accumulated heap's fault rather than this
    // pattern's: it is asked again, alone, of an empty heap.
    out.push(onEmptyHeap && verdicts.length === 1 ? last : worker().compile([patterns[out.length]])[0]);
    if (out[out.length - 1].verdict === 'failed') retire();
  }
  if (idleTimer) clearTimeout(idleTimer);
  idleTimer = setTimeout(retire, IDLE_MS).unref();
  return out;
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

function remember(pattern: string, problem: string | undefined): void {
  if (memo.size >= MEMO_LIMIT) {
    const oldest = memo.keys().next();
    if (!oldest.done) memo.delete(oldest.value);
  }
  memo.set(pattern, problem);
}

const OUT_OF_MEMORY = 'too large to compile (RE2 ran out of memory on this pattern alone); use fewer or smaller repetitions, especially of Unicode classes';

/**
 * For each pattern, undefined when it is valid RE2, else RE2's own explanation (or why it could
 * not be compiled). One call checks many patterns in few round trips to the worker.
 */
export function re2SyntaxErrors(patterns: readonly string[]): (string | undefined)[] {
  const out = new Array<string | undefined>(patterns.length);
  const todo = new Map<string, number[]>();
  patterns.forEach((pattern, i) => {
    if (memo.has(pattern)) {
      const known = memo.get(pattern);
      // Re-inserted so the least recently checked pattern is the one evicted.
      memo.delete(pattern);
      memo.set(pattern, known);
      out[i] = known;
    } else if (regexTooLong(pattern)) out[i] = `longer than ${MAX_REGEX_LENGTH} characters`;
    else todo.set(pattern, [...(todo.get(pattern) ?? []), i]);
  });
  if (todo.size === 0) return out;
  const unique = [...todo.keys()];
  compileInWorkers(unique).forEach((v, k) => {
    let problem: string | undefined;
    if (v.verdict === 'invalid') problem = v.reason;
    else if (v.verdict === 'failed') {
      // Out of memory on an empty heap is the pattern's own doing, hence a verdict worth keeping;
      // a timeout may be a loaded machine's, so it is not remembered as the pattern's.
      problem = /OOM|enlarge memory/.test(v.reason ?? '') ? OUT_OF_MEMORY : `not checked: ${v.reason ?? 'the RE2 validator failed'}`;
    }
    if (v.verdict !== 'failed' || problem === OUT_OF_MEMORY) remember(unique[k], problem);
    for (const i of todo.get(unique[k]) ?? []) out[i] = problem;
  });
  return out;
}

/** Undefined when `pattern` is valid RE2, else RE2's own explanation (or why it could not be compiled). */
export function re2SyntaxError(pattern: string): string | undefined {
  return re2SyntaxErrors([pattern])[0];
}
