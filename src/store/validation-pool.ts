/**
 * Parsing and validating policy text off the event loop. A reload of many large files parsed
 * on the main thread held every xDS stream and the admin endpoint for seconds (10,000 documents:
 * 8.8 s); here each object's text is parsed and validated (YAML, CRD schema, semantic checks and
 * RE2, through the same `loadText` as `policy check`) by one of a few worker threads, and only
 * plain data comes back (structured clone), so diagnostics are exactly the in-process ones.
 *
 * A worker that crashes, runs out of heap or takes longer than the timeout is terminated and
 * replaced: the object it held gets a verdict of `failed` with the reason, the store refuses the
 * batch, and the last good configuration keeps serving.
 */
import * as os from 'os';
import * as path from 'path';
import { Worker } from 'worker_threads';
import type { LoadOptions, LoadResult } from '../policy/loader';

export type ValidationJob = { kind: 'load'; file: string; text: string; options: LoadOptions } | { kind: 'count'; text: string };

export type ValidationRequest = ValidationJob & { id: number };

export type ValidationReply =
  | { id: number; kind: 'load'; result: LoadResult }
  | { id: number; kind: 'count'; count: number | undefined }
  /** The loader threw: a bug, reported as the object's failure rather than taking the worker down. */
  | { id: number; kind: 'error'; message: string };

/** What a job came to: its answer, or why there is none (the worker failed, not the text). */
export type Validated<T> = { ok: true; value: T } | { ok: false; reason: string };

export interface ValidationPoolOptions {
  /** Worker threads at most (default: one core is left to the event loop, and at most 2 are used). */
  threads?: number;
  /** One object's validation that takes longer is abandoned and its worker replaced (default 60 s). */
  timeoutMs?: number;
  /** Heap limit of each worker: a text that needs more fails alone, never the server (default 1024 MiB). */
  heapMb?: number;
  /** An idle worker beyond the first exits after this long, giving its heap back (default 30 s). */
  idleMs?: number;
}

interface Pending {
  job: ValidationJob;
  resolve: (outcome: Validated<ValidationReply>) => void;
}

class ValidationThread {
  readonly worker: Worker;
  current?: { id: number; pending: Pending; timer: NodeJS.Timeout };
  idleTimer?: NodeJS.Timeout;
  /** Why the worker is going away, for the job it held. */
  failure?: string;

  constructor(heapMb: number) {
    this.worker = new Worker(path.join(__dirname, 'validation-worker.js'), {
      resourceLimits: { maxOldGenerationSizeMb: heapMb, maxYoungGenerationSizeMb: 32 },
    });
  }
}

export class ValidationPool {
  private readonly threads = new Set<ValidationThread>();
  private readonly queue: Pending[] = [];
  private readonly maxThreads: number;
  private readonly timeoutMs: number;
  private readonly heapMb: number;
  private readonly idleMs: number;
  private nextId = 1;
  private started = 0;

  constructor(options: ValidationPoolOptions = {}) {
    this.maxThreads = Math.max(1, options.threads ?? Math.min(2, os.availableParallelism() - 1));
    this.timeoutMs = options.timeoutMs ?? 60_000;
    this.heapMb = options.heapMb ?? 1024;
    this.idleMs = options.idleMs ?? 30_000;
  }

  /** `loadText(file, text)` in a worker. */
  async load(file: string, text: string, options: LoadOptions): Promise<Validated<LoadResult>> {
    const r = await this.run({ kind: 'load', file, text, options });
    if (!r.ok) return r;
    return r.value.kind === 'load' ? { ok: true, value: r.value.result } : { ok: false, reason: replyProblem(r.value) };
  }

  /** `countDocuments(text)` in a worker. */
  async countDocuments(text: string): Promise<Validated<number | undefined>> {
    const r = await this.run({ kind: 'count', text });
    if (!r.ok) return r;
    return r.value.kind === 'count' ? { ok: true, value: r.value.count } : { ok: false, reason: replyProblem(r.value) };
  }

  /** How many workers this pool has started (for tests of the replacement). */
  get workersStarted(): number {
    return this.started;
  }

  /** Ends every worker; queued and running jobs fail. */
  close(): void {
    for (const t of [...this.threads]) this.retire(t, 'the validation pool was closed');
    for (const p of this.queue.splice(0)) p.resolve({ ok: false, reason: 'the validation pool was closed' });
  }

  private run(job: ValidationJob): Promise<Validated<ValidationReply>> {
    return new Promise((resolve) => {
      this.queue.push({ job, resolve });
      this.dispatch();
    });
  }

  private dispatch(): void {
    while (this.queue.length > 0) {
      const thread = [...this.threads].find((t) => !t.current && !t.failure) ?? (this.threads.size < this.maxThreads ? this.spawn() : undefined);
      if (!thread) return;
      const pending = this.queue.shift() as Pending;
      const id = this.nextId++;
      if (thread.idleTimer) clearTimeout(thread.idleTimer);
      thread.idleTimer = undefined;
      const timer = setTimeout(() => this.retire(thread, `validation did not finish within ${this.timeoutMs} ms`), this.timeoutMs);
      thread.current = { id, pending, timer };
      // A job in flight keeps the process alive; an idle worker must not (a finished CLI exits).
      thread.worker.ref();
      thread.worker.postMessage({ ...pending.job, id } satisfies ValidationRequest);
    }
  }

  private spawn(): ValidationThread {
    const thread = new ValidationThread(this.heapMb);
    this.started++;
    this.threads.add(thread);
    thread.worker.on('message', (reply: ValidationReply) => this.finish(thread, reply));
    thread.worker.on('error', (err: Error & { code?: string }) => {
      thread.failure ??=
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `the validator ran out of memory (its heap is limited to ${this.heapMb} MiB)`
          : `the validator failed: ${err.message.split('\n')[0].slice(0, 200)}`;
    });
    thread.worker.on('exit', (code) => {
      this.retire(thread, thread.failure ?? `the validator thread exited (code ${code})`);
    });
    return thread;
  }

  private finish(thread: ValidationThread, reply: ValidationReply): void {
    const current = thread.current;
    if (!current || current.id !== reply.id) return;
    clearTimeout(current.timer);
    thread.current = undefined;
    current.pending.resolve({ ok: true, value: reply });
    if (this.queue.length > 0) this.dispatch();
    if (!thread.current) {
      thread.worker.unref();
      // One worker stays: starting one takes seconds on a loaded machine, and a reload should not wait for it.
      thread.idleTimer = setTimeout(() => this.threads.size > 1 && this.retire(thread, 'idle'), this.idleMs);
      thread.idleTimer.unref();
    }
  }

  /** Ends a worker; the job it held, if any, fails with `reason`. Later jobs go to a new one. */
  private retire(thread: ValidationThread, reason: string): void {
    if (!this.threads.delete(thread)) return;
    thread.failure ??= reason;
    if (thread.idleTimer) clearTimeout(thread.idleTimer);
    const current = thread.current;
    thread.current = undefined;
    if (current) {
      clearTimeout(current.timer);
      current.pending.resolve({ ok: false, reason });
    }
    thread.worker.removeAllListeners('message');
    void thread.worker.terminate();
    this.dispatch();
  }
}

function replyProblem(reply: ValidationReply): string {
  return reply.kind === 'error' ? `the validator failed: ${reply.message}` : `the validator answered a ${reply.kind} job`;
}

let shared: ValidationPool | undefined;

/** The process's pool with the default options, which every store shares unless given another. */
export function sharedValidationPool(): ValidationPool {
  return (shared ??= new ValidationPool());
}
