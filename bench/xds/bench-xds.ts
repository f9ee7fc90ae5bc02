import { execFileSync, fork, type ChildProcess } from 'child_process';
import * as path from 'path';
import { SnapshotCache } from '../../src/xds/cache';
import { startXdsServer } from '../../src/xds/server';
import { benchSnapshot, NAMED_SUBSCRIPTIONS } from './resources';

/**
 * bench-xds: N concurrent ADS streams (one connection each, ~50 resources over 5 types) get a
 * new snapshot; we report the time until every stream has ACKed every type, the server's CPU
 * for that push, and the server's RSS per idle stream. Target: 1,000 streams ACKed within 1 s,
 * under 50 KiB RSS per idle stream.
 */
const STREAMS = Number(process.env.STREAMS ?? 1000);
const ROUNDS = Number(process.env.ROUNDS ?? 5);
const TYPES = Object.keys(NAMED_SUBSCRIPTIONS).length;

function gc(): void {
  (globalThis as { gc?: () => void }).gc?.();
}

function rssMiB(): number {
  return process.memoryUsage().rss / 1048576;
}

async function main(): Promise<void> {
  if (process.env.MEMORY_ONLY) return idleMemory();
  const cache = new SnapshotCache({ nodeHash: () => 'sidecars' });
  let generation = 0;
  cache.setSnapshot('sidecars', benchSnapshot(generation));
  const xds = await startXdsServer({ source: cache, port: 0, host: '127.0.0.1' });

  let acks = 0;
  xds.controlPlane.status.on('ack', () => acks++);
  benchSnapshot(1); // warm code paths and the proto root before measuring memory
  gc();
  await new Promise((r) => setTimeout(r, 200));
  gc();
  const baseRss = rssMiB();
  const baseHeap = process.memoryUsage().heapUsed / 1048576;
  const baseHeapTotal = process.memoryUsage().heapTotal / 1048576;

  let clientCpuMs = 0;
  const children: ChildProcess[] = [];
  /** Opens `count` streams from a new client process and waits until all ACKed every type. */
  async function connectWave(count: number, offset: number): Promise<number> {
    const child = fork(path.join(__dirname, 'clients.js'), [String(xds.port), String(count), String(offset)], { stdio: 'inherit' });
    children.push(child);
    // The server runs on CPU 0 (see the Makefile); the clients get the other core to themselves.
    try {
      execFileSync('taskset', ['-pc', process.env.CLIENT_CPU ?? '1', String(child.pid)], { stdio: 'ignore' });
    } catch {
      console.warn('bench-xds: taskset unavailable, clients not pinned');
    }
    if (children.length === 1) child.on('message', (m: { cpu: NodeJS.CpuUsage }) => (clientCpuMs = (m.cpu.user + m.cpu.system) / 1000));
    const target = acks + count * TYPES;
    const t0 = Date.now();
    while (acks < target) {
      if (Date.now() - t0 > 120_000) throw new Error(`only ${acks} of ${target} initial ACKs after 120 s`);
      await new Promise((r) => setTimeout(r, 50));
    }
    return Date.now() - t0;
  }
  async function settledMemory(): Promise<{ rss: number; heap: number; heapTotal: number }> {
    await new Promise((r) => setTimeout(r, 1000));
    gc();
    await new Promise((r) => setTimeout(r, 300));
    gc();
    const m = process.memoryUsage();
    return { rss: m.rss / 1048576, heap: m.heapUsed / 1048576, heapTotal: m.heapTotal / 1048576 };
  }

  const connectMs = await connectWave(STREAMS, 0);
  const idle = await settledMemory();
  const idleRss = idle.rss;
  const idleHeap = idle.heap;
  const idleHeapTotal = idle.heapTotal;

  const results: Array<{ ms: number; cpuMs: number; encodeMs: number; clientCpuMs: number }> = [];
  for (let round = 0; round < ROUNDS; round++) {
    const snap = benchSnapshot(++generation); // built (and encoded) before the clock starts
    const target = acks + STREAMS * TYPES;
    const clientCpu0 = clientCpuMs;
    const cpu0 = process.cpuUsage();
    const start = process.hrtime.bigint();
    cache.setSnapshot('sidecars', snap);
    const pushed = process.hrtime.bigint();
    while (acks < target) await new Promise((r) => setImmediate(r));
    const end = process.hrtime.bigint();
    const cpu = process.cpuUsage(cpu0);
    await new Promise((r) => setTimeout(r, 500)); // let the clients report their CPU
    results.push({
      ms: Number(end - start) / 1e6,
      cpuMs: (cpu.user + cpu.system) / 1000,
      encodeMs: Number(pushed - start) / 1e6,
      clientCpuMs: clientCpuMs - clientCpu0,
    });
  }
  // Marginal cost: a second wave of streams on a server already sized for the first, so fixed
  // costs (V8's young generation growing under the connect burst, code, caches) drop out.
  const extra = Math.max(1, Math.floor(STREAMS / 2));
  await connectWave(extra, STREAMS);
  const more = await settledMemory();
  for (const c of children) c.kill();
  await xds.close();

  const sorted = [...results].sort((a, b) => a.ms - b.ms);
  const median = sorted[Math.floor(sorted.length / 2)];
  const perStreamKiB = ((idleRss - baseRss) * 1024) / STREAMS;
  console.log(`bench-xds: ${STREAMS} ADS SotW streams, one connection each, ${TYPES} types x 10 resources, server pinned apart from clients`);
  console.log(`  initial connect + first config ACKed by all: ${connectMs} ms`);
  for (const [i, r] of results.entries())
    console.log(
      `  round ${i + 1}: all ${STREAMS * TYPES} ACKs in ${r.ms.toFixed(1)} ms (fan-out ${r.encodeMs.toFixed(1)} ms, server CPU ${r.cpuMs.toFixed(0)} ms, clients' CPU ${r.clientCpuMs.toFixed(0)} ms)`,
    );
  console.log(`  median: ${median.ms.toFixed(1)} ms to full ACK (target < 1000 ms): ${median.ms < 1000 ? 'MET' : 'NOT MET'}`);
  console.log(
    `  server RSS: ${baseRss.toFixed(1)} MiB before, ${idleRss.toFixed(1)} MiB with ${STREAMS} idle streams; heap used ${baseHeap.toFixed(1)} -> ${idleHeap.toFixed(1)} MiB, committed ${baseHeapTotal.toFixed(1)} -> ${idleHeapTotal.toFixed(1)} MiB`,
  );
  const marginalKiB = ((more.rss - idleRss) * 1024) / extra;
  // RSS = V8's committed heap + native memory. Committed-but-unused heap is sizing policy, not a
  // per-stream cost, so the per-stream figure that is stable across runs is heap used + native.
  const heapUsedKiB = ((idleHeap - baseHeap) * 1024) / STREAMS;
  const nativeKiB = ((idleRss - idleHeapTotal - (baseRss - baseHeapTotal)) * 1024) / STREAMS;
  console.log(
    `  RSS per idle stream, averaged over all ${STREAMS}: ${perStreamKiB.toFixed(1)} KiB (includes V8 young-generation growth during the connect burst)`,
  );
  console.log(`  RSS per idle stream, marginal (${extra} more streams): ${marginalKiB.toFixed(1)} KiB`);
  console.log(
    `  in this process: JS heap used ${heapUsedKiB.toFixed(1)} KiB + native ${nativeKiB.toFixed(1)} KiB = ${(heapUsedKiB + nativeKiB).toFixed(1)} KiB per idle stream (one run; see below)`,
  );
  await idleMemory();
}

interface MemorySample {
  heapKiB: number;
  nativeKiB: number;
  rssKiB: number;
}

/** One fresh server process of the build at `root` with STREAMS idle streams: per-stream memory. */
async function idleRun(root: string, streams: number): Promise<MemorySample> {
  const server = fork(path.join(__dirname, 'idle-server.js'), [root, String(streams), String(TYPES)], { execArgv: ['--expose-gc'], stdio: 'inherit' });
  pin(server, process.env.SERVER_CPU ?? '0');
  const messages: Array<Record<string, unknown>> = [];
  let wake: () => void = () => undefined;
  server.on('message', (m: Record<string, unknown>) => {
    messages.push(m);
    wake();
  });
  const next = async (): Promise<Record<string, unknown>> => {
    while (messages.length === 0) await new Promise<void>((r) => (wake = r));
    return messages.shift() as Record<string, unknown>;
  };
  const { port } = (await next()) as { port: number };
  const clients = fork(path.join(__dirname, 'clients.js'), [String(port), String(streams), '0'], { stdio: 'inherit' });
  pin(clients, process.env.CLIENT_CPU ?? '1');
  const { before, idle } = (await next()) as { before: { rss: number; heapUsed: number; heapTotal: number }; idle: typeof before };
  clients.kill();
  server.kill();
  const kib = (bytes: number): number => bytes / 1024 / streams;
  return {
    heapKiB: kib(idle.heapUsed - before.heapUsed),
    // RSS less V8's committed heap: committed-but-unused heap is sizing policy, not per stream.
    nativeKiB: kib(idle.rss - idle.heapTotal - (before.rss - before.heapTotal)),
    rssKiB: kib(idle.rss - before.rss),
  };
}

function pin(child: ChildProcess, cpu: string): void {
  try {
    execFileSync('taskset', ['-pc', cpu, String(child.pid)], { stdio: 'ignore' });
  } catch {
    // Unpinned: the figures are noisier, not wrong.
  }
}

function median(values: number[]): number {
  const s = [...values].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/**
 * Memory per idle stream, measured robustly: MEMORY_RUNS fresh server processes per build
 * (this tree, and BASELINE_DIST's when given, alternating so both see the same machine), each
 * with MEMORY_STREAMS streams; the median of each figure, and a verdict on this tree's JS heap
 * plus native memory.
 */
async function idleMemory(): Promise<void> {
  const runs = Number(process.env.MEMORY_RUNS ?? 5);
  const streams = Number(process.env.MEMORY_STREAMS ?? STREAMS);
  const builds: Array<[string, string]> = [['this tree', path.join(__dirname, '../..')]];
  if (process.env.BASELINE_DIST) builds.push([`baseline ${process.env.BASELINE_DIST}`, path.resolve(process.env.BASELINE_DIST)]);
  const samples = new Map<string, MemorySample[]>(builds.map(([name]) => [name, []]));
  for (let run = 0; run < runs; run++) for (const [name, root] of builds) samples.get(name)?.push(await idleRun(root, streams));
  console.log(`memory per idle stream: ${runs} fresh server processes per build, ${streams} streams each, medians (range)`);
  const medians = new Map<string, number>();
  for (const [name] of builds) {
    const s = samples.get(name) ?? [];
    const fig = (pick: (m: MemorySample) => number): string => {
      const v = s.map(pick);
      return `${median(v).toFixed(1)} KiB (${Math.min(...v).toFixed(1)}-${Math.max(...v).toFixed(1)})`;
    };
    const total = median(s.map((m) => m.heapKiB + m.nativeKiB));
    medians.set(name, total);
    console.log(
      `  ${name}: JS heap ${fig((m) => m.heapKiB)}, native ${fig((m) => m.nativeKiB)}, RSS ${fig((m) => m.rssKiB)}; heap + native ${fig((m) => m.heapKiB + m.nativeKiB)}`,
    );
  }
  const mine = medians.get('this tree') ?? NaN;
  const base = builds[1] ? medians.get(builds[1][0]) : undefined;
  console.log(
    `  memory per idle stream (JS heap + native, median): ${mine.toFixed(1)} KiB${base === undefined ? '' : ` vs ${base.toFixed(1)} KiB baseline`} (target < 50 KiB): ${mine < 50 ? 'MET' : 'MISSED'}`,
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
