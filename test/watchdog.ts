/**
 * Keeps `make test` from hanging. mocha's timeouts are timers, so they never fire while the
 * event loop is blocked (a spinning mkdirSync, an execFileSync child that never exits), and
 * nothing bounds a whole file. A worker thread watches a heartbeat the main thread beats and
 * how long the current file has been running; past either limit it prints where the run was,
 * what child processes were still running, kills them and the test process, so the run fails
 * with a message naming the culprit.
 */
import { execFileSync } from 'child_process';
import { writeSync } from 'fs';
import { isMainThread, parentPort, Worker, workerData } from 'worker_threads';

const LABEL_BYTES = 2048;
// Int32 slots: heartbeat, file start (s since epoch), label length; then the label's bytes.
const HEADER = 3;

interface WatchdogLimits {
  /** Seconds the event loop may stay blocked. */
  stallSeconds: number;
  /** Seconds one test file (top-level suite) may run. */
  fileSeconds: number;
}

function limitFromEnv(name: string, fallback: number): number {
  const v = Number(process.env[name]);
  return Number.isFinite(v) && v > 0 ? v : fallback;
}

export const DEFAULT_LIMITS: WatchdogLimits = {
  stallSeconds: limitFromEnv('MESHACCEL_TEST_STALL_S', 120),
  fileSeconds: limitFromEnv('MESHACCEL_TEST_FILE_S', 900),
};

export class Watchdog {
  private readonly shared = new SharedArrayBuffer(HEADER * 4 + LABEL_BYTES);
  private readonly slots = new Int32Array(this.shared, 0, HEADER);
  private readonly label = new Uint8Array(this.shared, HEADER * 4);
  private readonly worker: Worker;
  private readonly beat: NodeJS.Timeout;

  constructor(limits: WatchdogLimits = DEFAULT_LIMITS) {
    this.worker = new Worker(__filename, { workerData: { shared: this.shared, limits, pid: process.pid } });
    this.worker.unref();
    this.beat = setInterval(() => Atomics.add(this.slots, 0, 1), 1000);
    this.beat.unref();
  }

  /** A new test file started. */
  fileStarted(name: string): void {
    Atomics.store(this.slots, 1, Math.floor(Date.now() / 1000));
    this.at(name);
  }

  /** What is running now (a test or a hook), for the report. */
  at(where: string): void {
    const bytes = Buffer.from(where, 'utf8').subarray(0, LABEL_BYTES);
    this.label.set(bytes);
    Atomics.store(this.slots, 2, bytes.length);
  }

  stop(): void {
    clearInterval(this.beat);
    void this.worker.terminate();
  }
}

function descendants(pid: number): string {
  let table: string;
  try {
    table = execFileSync('ps', ['-eo', 'pid=,ppid=,etime=,args='], { encoding: 'utf8', timeout: 5000 });
  } catch {
    return '  (ps failed)';
  }
  const rows = table
    .split('\n')
    .map((l) => l.trim().match(/^(\d+)\s+(\d+)\s+(\S+)\s+(.*)$/))
    .filter((m): m is RegExpMatchArray => m !== null);
  const children = new Map<number, RegExpMatchArray[]>();
  for (const r of rows) if (!r[4].startsWith('ps -eo ')) children.set(Number(r[2]), [...(children.get(Number(r[2])) ?? []), r]);
  const out: string[] = [];
  const walk = (p: number, depth: number): void => {
    for (const r of children.get(p) ?? []) {
      out.push(`  ${'  '.repeat(depth)}${r[1]} (running ${r[3]}) ${r[4].slice(0, 300)}`);
      walk(Number(r[1]), depth + 1);
    }
  };
  walk(pid, 0);
  return out.length ? out.join('\n') : '  (none)';
}

function killTree(pid: number): void {
  try {
    const table = execFileSync('ps', ['-eo', 'pid=,ppid='], { encoding: 'utf8', timeout: 5000 });
    const pairs = table
      .split('\n')
      .map((l) => l.trim().split(/\s+/).map(Number))
      .filter((p) => p.length === 2);
    const victims: number[] = [];
    const collect = (p: number): void => {
      for (const [child, parent] of pairs) {
        if (parent !== p) continue;
        collect(child);
        victims.push(child);
      }
    };
    collect(pid);
    for (const v of victims) {
      try {
        process.kill(v, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  } catch {
    // best effort: the test process itself is killed next
  }
}

function watch(data: { shared: SharedArrayBuffer; limits: WatchdogLimits; pid: number }): void {
  const slots = new Int32Array(data.shared, 0, HEADER);
  const label = new Uint8Array(data.shared, HEADER * 4);
  let lastBeat = Atomics.load(slots, 0);
  let lastChange = Date.now();
  const where = (): string => Buffer.from(label.subarray(0, Atomics.load(slots, 2))).toString('utf8') || '(before the first test)';
  const fail = (why: string): void => {
    const report =
      `\nwatchdog: ${why}\n  in: ${where()}\n  child processes still running:\n${descendants(data.pid)}\n` + 'watchdog: killing them and the test run\n';
    // A worker's process.stderr goes through the main thread, which may be the one that is stuck.
    writeSync(2, report);
    killTree(data.pid);
    process.kill(data.pid, 'SIGKILL');
  };
  setInterval(() => {
    const beat = Atomics.load(slots, 0);
    const now = Date.now();
    if (beat !== lastBeat) {
      lastBeat = beat;
      lastChange = now;
    } else if (now - lastChange > data.limits.stallSeconds * 1000) {
      return fail(
        `the test process's event loop has been blocked for ${data.limits.stallSeconds} s (a synchronous call that never returns), so mocha's timeouts cannot fire`,
      );
    }
    const fileStart = Atomics.load(slots, 1);
    if (fileStart > 0 && now / 1000 - fileStart > data.limits.fileSeconds) {
      fail(`one test file has run for more than ${data.limits.fileSeconds} s (MESHACCEL_TEST_FILE_S)`);
    }
  }, 1000);
  parentPort?.on('close', () => process.exit(0));
}

if (!isMainThread && workerData?.shared) watch(workerData);
