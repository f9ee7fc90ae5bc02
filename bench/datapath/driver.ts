/**
 * `make bench-datapath`: plain loopback against redirected loopback, side by side in one run.
 * Network namespaces, each with its own cgroup: "plain" (no programs), "plain2" (no programs
 * either: the A/A control, whose ratio to plain is what the machine's noise alone produces),
 * "accel" (meshaccel's
 * datapath with its hand-off masks calibrated on this machine at attach, in a private pin dir),
 * "old" (the same programs with the thresholds forced to the pre-calibration defaults:
 * bulkSmallMax 16 KiB, bulkLargeMin 256 KiB, streak 16) and, when a reference object is given,
 * "ref" (the same sockops with the bench's minimal sk_msg program: key and redirect only, the
 * raw prototype the targets were first measured with). Every shape runs on every side, the
 * order rotating per repetition, and the table reports medians, the ratio side/plain, and the
 * share of the reference's gain each meshaccel side keeps; verdict lines close the run.
 * The machine is shared, so single figures are noisy; the side-by-side ratios are what to read.
 *
 *   node dist/bench/datapath/driver.js NETBENCH_BINARY [REFERENCE_SK_MSG_OBJECT]
 * The headline ratio is the median of the per-repetition ratios (each repetition runs the
 * sides back to back), which cancels the slow drift of the other load on the machine.
 *
 *   env: BENCH_SECONDS (per trial, default 1), BENCH_REPS (default 7), BENCH_ONLY (regex on row
 *   labels such as "bulk 4 KiB | C | 2 CPU"), BENCH_BULK_STREAK (the datapath's bulk hand-off
 *   window; 0 disables it), BENCH_OLD=0 (drop the old-thresholds side), BENCH_AA=0 (drop the A/A
 *   side), BENCH_ACCEL=defaults (accel side without calibration), BENCH_NICE (priority of every
 *   bench process, default -20: on a shared machine other load then takes less of the pinned
 *   CPUs; 0 runs them as the machine's other processes)
 */
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { ChildProcess, execFileSync, spawn } from 'child_process';
import { DatapathStatus, attach, detach, status } from '../../src/datapath/bpf/datapath';
import { calibLines, maskText, sourceText } from '../../src/datapath/bpf/thresholds';
import { cgroup2Root } from '../../src/datapath/bpf/cgroup';
import { defaultObjectPaths } from '../../src/datapath/bpf/preflight';
import { packageRoot } from '../../src/paths';

const NETBENCH = process.argv[2];
const REFERENCE = process.argv[3];
// 7 repetitions of 1 s rather than 5 of 1.5 s in the same time: on a shared machine the noise
// comes in bursts, and a median of more, shorter trials is disturbed less by one burst.
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
const REPS = Number(process.env.BENCH_REPS ?? 7);
const NICE = Number(process.env.BENCH_NICE ?? -20);
const ONLY = process.env.BENCH_ONLY ? new RegExp(process.env.BENCH_ONLY) : undefined;
const NODE_CLIENT = path.join(packageRoot(), 'dist/bench/datapath/node-client.js');
const RELAY = path.join(packageRoot(), 'dist/bench/datapath/relay.js');

type Side = 'plain' | 'plain2' | 'accel' | 'old' | 'ref';
const OLD = process.env.BENCH_OLD !== '0';
const AA = process.env.BENCH_AA !== '0';
/** The thresholds before calibration existed (#14), forced on the "old" side. */
const OLD_THRESHOLDS = { bulkSmallMax: 16384, bulkLargeMin: 262144, bulkStreak: 16 };
interface SideEnv {
  cgroup: string;
  netns: string;
}

const tag = `meshaccel-bench-${process.pid}`;
const cgRoot = cgroup2Root();
if (!cgRoot) throw new Error('no cgroup2 mount');
const SIDES: Side[] = ['plain', 'accel', ...(OLD ? (['old'] as const) : []), ...(REFERENCE ? (['ref'] as const) : []), ...(AA ? (['plain2'] as const) : [])];
const sideEnv = (side: Side): SideEnv => ({ cgroup: path.join(cgRoot, `${tag}-${side}`), netns: `mab-${process.pid}-${side}` });
const sides = Object.fromEntries(SIDES.map((side) => [side, sideEnv(side)])) as Record<Side, SideEnv>;
const pinDir = `/sys/fs/bpf/${tag}`;
const refPinDir = `/sys/fs/bpf/${tag}-ref`;
const oldPinDir = `/sys/fs/bpf/${tag}-old`;
const children: ChildProcess[] = [];

function launch(side: Side, cpus: string, argv: string[]): ChildProcess {
  const { cgroup, netns } = sides[side];
  const inner = ['ip', 'netns', 'exec', netns, 'nice', '-n', String(NICE), 'taskset', '-c', cpus, ...argv].map((a) => `'${a}'`).join(' ');
  const child = spawn('sh', ['-c', `echo $$ > '${cgroup}/cgroup.procs' && exec ${inner}`], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

function waitLine(child: ChildProcess, what: string): Promise<string> {
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => reject(new Error(`${what} exited ${code}: ${err.trim()}`)));
  });
}

async function runClient(side: Side, cpus: string, argv: string[]): Promise<Record<string, number>> {
  const child = launch(side, cpus, argv);
  const line = await waitLine(child, argv.join(' '));
  await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
  return JSON.parse(line) as Record<string, number>;
}

interface Row {
  name: string;
  client: 'C' | 'Node';
  cpus: 1 | 2;
  metric: 'req/s' | 'MB/s';
  /** argv for a side; the C server port depends on the CPU layout. */
  argv: (port: number) => string[];
  port: number;
  clientCpu: string;
}

const thresholdsRun: Partial<Record<Side, string[]>> = {};

/** The hand-off setting a side ran with, as `datapath status` states it. */
function thresholdLines(s: DatapathStatus): string[] {
  const t = s.thresholds;
  if (!t) return ['no configuration'];
  return [
    `hand-off window ${s.bulkStreak} sends; TCP with the reader on the writer's CPU: ${maskText(t.tcpSameCpuMask)}; on another CPU: ${maskText(t.tcpOtherCpuMask)}; reader CPU recorded: ${s.programs.readerCpu ? 'yes' : 'no'}`,
    `from ${sourceText(t)}`,
    ...calibLines(t.calib),
  ];
}

const loadNow = (): string => fs.readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  // Ports inside the namespaces: C servers for the one-CPU and two-CPU layouts, the app and
  // the relay of the mesh-shaped path.
  const [SRV_CPU0, SRV_CPU1, APP0, APP1, RELAY0, RELAY1] = [19001, 19002, 19003, 19004, 15001, 15002];
  for (const side of Object.values(sides)) {
    fs.mkdirSync(side.cgroup, { recursive: true });
    execFileSync('ip', ['netns', 'add', side.netns]);
    execFileSync('ip', ['-n', side.netns, 'link', 'set', 'lo', 'up']);
  }
  const streak = process.env.BENCH_BULK_STREAK;
  const calibrate = process.env.BENCH_ACCEL !== 'defaults';
  const a = attach({ cgroup: sides.accel.cgroup, pinDir, bulkStreak: streak === undefined ? undefined : Number(streak), calibrate });
  console.log(`meshaccel attached to ${a.cgroup} (pins ${pinDir})`);
  thresholdsRun.accel = thresholdLines(status({ pinDir, maxSockets: 0 }));
  for (const l of thresholdsRun.accel) console.log(`  ${l}`);
  if (OLD) {
    attach({ cgroup: sides.old.cgroup, pinDir: oldPinDir, ...OLD_THRESHOLDS });
    console.log(`meshaccel with the old thresholds attached to ${sides.old.cgroup}`);
    thresholdsRun.old = thresholdLines(status({ pinDir: oldPinDir, maxSockets: 0 }));
    for (const l of thresholdsRun.old) console.log(`  ${l}`);
  }
  if (REFERENCE) {
    attach({ cgroup: sides.ref.cgroup, pinDir: refPinDir, objects: { sockops: defaultObjectPaths().sockops, skMsg: REFERENCE } });
    console.log(`reference sk_msg ${REFERENCE} attached to ${sides.ref.cgroup}`);
  }

  const servers: [string, string[], string][] = [
    ['0', [NETBENCH, 'server', String(SRV_CPU0)], 'C server cpu0'],
    ['1', [NETBENCH, 'server', String(SRV_CPU1)], 'C server cpu1'],
    ['0', [NETBENCH, 'server', String(APP0)], 'app cpu0'],
    ['0', [NETBENCH, 'server', String(APP1)], 'app cpu0 (2-cpu mesh)'],
    ['0', [process.execPath, RELAY, String(RELAY0), String(APP0)], 'relay cpu0'],
    ['1', [process.execPath, RELAY, String(RELAY1), String(APP1)], 'relay cpu1'],
  ];
  for (const side of SIDES) {
    for (const [cpus, argv, what] of servers) await waitLine(launch(side, cpus, argv), `${side} ${what}`);
  }

  const rows: Row[] = [];
  for (const cpus of [1, 2] as const) {
    const port = cpus === 1 ? SRV_CPU0 : SRV_CPU1;
    for (const client of ['C', 'Node'] as const) {
      const cmd = (shape: string, size: number) => (p: number) =>
        client === 'C'
          ? [NETBENCH, shape, '127.0.0.1', String(p), String(size), String(SECONDS)]
          : [process.execPath, NODE_CLIENT, shape, '127.0.0.1', String(p), String(size), String(SECONDS)];
      rows.push({ name: 'rr 64 B', client, cpus, metric: 'req/s', argv: cmd('rr', 64), port, clientCpu: '0' });
      rows.push({ name: 'rr 4 KiB', client, cpus, metric: 'req/s', argv: cmd('rr', 4096), port, clientCpu: '0' });
      rows.push({ name: 'bulk 4 KiB', client, cpus, metric: 'MB/s', argv: cmd('bulk', 4096), port, clientCpu: '0' });
      rows.push({ name: 'bulk 64 KiB', client, cpus, metric: 'MB/s', argv: cmd('bulk', 65536), port, clientCpu: '0' });
      rows.push({ name: 'bulk 1 MiB', client, cpus, metric: 'MB/s', argv: cmd('bulk', 1 << 20), port, clientCpu: '0' });
    }
    const relay = cpus === 1 ? RELAY0 : RELAY1;
    for (const size of [64, 4096]) {
      rows.push({
        name: `mesh rr ${size === 64 ? '64 B' : '4 KiB'}`,
        client: 'C',
        cpus,
        metric: 'req/s',
        argv: (p) => [NETBENCH, 'rr', '127.0.0.1', String(p), String(size), String(SECONDS)],
        port: relay,
        clientCpu: '0',
      });
    }
  }

  interface Result {
    row: Row;
    values: Record<Side, number[]>;
    p99: Record<Side, number[]>;
    /** Bulk hand-offs during the shape's runs (one per connection handed to TCP). */
    handoffs: Partial<Record<Side, number>>;
  }
  const pinOf: Partial<Record<Side, string>> = { accel: pinDir, ...(OLD ? { old: oldPinDir } : {}) };
  const handoffCount = (side: Side): number => status({ pinDir: pinOf[side]!, maxSockets: 0 }).counters?.bulkHandoffs ?? 0;
  const meshSides = Object.keys(pinOf) as Side[];
  const loadStart = loadNow();
  const ratioOf = (r: Result, side: Side): number => median(r.values.plain.map((p, i) => r.values[side][i] / p));
  const results: Result[] = [];
  const started = Date.now();
  for (const row of rows) {
    const label = `${row.name} | ${row.client} | ${row.cpus} CPU`;
    if (ONLY && !ONLY.test(label)) continue;
    const empty = (): Record<Side, number[]> => Object.fromEntries(SIDES.map((side) => [side, []])) as unknown as Record<Side, number[]>;
    const r: Result = { row, values: empty(), p99: empty(), handoffs: {} };
    const handoffsBefore = meshSides.map(handoffCount);
    for (let rep = 0; rep < REPS; rep++) {
      const order = SIDES.map((_, i) => SIDES[(i + rep) % SIDES.length]);
      for (const side of order) {
        const out = await runClient(side, row.clientCpu, row.argv(row.port));
        r.values[side].push(row.metric === 'req/s' ? out.ops : out.MBps);
        if (out.p99us !== undefined) r.p99[side].push(out.p99us);
      }
    }
    meshSides.forEach((side, i) => (r.handoffs[side] = handoffCount(side) - handoffsBefore[i]));
    results.push(r);
    const ref = REFERENCE ? `  reference x${ratioOf(r, 'ref').toFixed(2)}` : '';
    const old = OLD ? `  old x${ratioOf(r, 'old').toFixed(2)}` : '';
    const aa = AA ? `  A/A x${ratioOf(r, 'plain2').toFixed(2)}` : '';
    process.stdout.write(
      `  ${label.padEnd(34)} plain ${median(r.values.plain).toFixed(0).padStart(8)}  accel ${median(r.values.accel).toFixed(0).padStart(8)} ${row.metric}  x${ratioOf(r, 'accel').toFixed(2)}${old}${ref}${aa}\n`,
    );
  }

  const st = status({ pinDir, maxSockets: 0 });
  const load = loadNow();
  console.log(
    `\nResults (${REPS} repetitions of ${SECONDS} s each, sides in rotating order, processes pinned and at nice ${NICE}; values are medians; ratio = median of per-repetition side/plain; ${((Date.now() - started) / 1000).toFixed(0)} s; load average at the start ${loadStart}, at the end ${load})`,
  );
  console.log('"handed off" counts the runs (connections) a meshaccel side handed to TCP, of the repetitions.');
  if (AA) console.log('"A/A" is a second plain side against plain: what the noise alone gives a shape with no change at all.');
  const p99 = (xs: number[]): string => (xs.length ? median(xs).toFixed(1) : '-');
  const keptOf = (mine: number, ref: number): number | undefined => (ref >= 1.05 ? (mine - 1) / (ref - 1) : undefined);
  const pct = (x: number | undefined): string => (x === undefined ? '-' : `${(x * 100).toFixed(0)}%`);
  if (REFERENCE) console.log('"kept" is a side\'s gain over plain as a share of the reference program\'s gain (shown when the reference gains at least 5%).');
  const cols = [
    'shape',
    'client',
    'CPUs',
    'metric',
    'plain',
    'meshaccel',
    'ratio',
    'per-rep ratios',
    'handed off',
    ...(OLD ? ['old thresholds ratio', 'old handed off'] : []),
    ...(REFERENCE ? ['reference ratio', 'kept'] : []),
    ...(OLD && REFERENCE ? ['old kept'] : []),
    ...(AA ? ['A/A ratio', 'A/A per-rep'] : []),
    'p99 plain µs',
    'p99 meshaccel µs',
    ...(REFERENCE ? ['p99 reference µs'] : []),
  ];
  const perRep = (r: Result, side: Side): string => r.values.plain.map((p, i) => (r.values[side][i] / p).toFixed(2)).join(' ');
  console.log(`| ${cols.join(' | ')} |`);
  console.log(`|${cols.map(() => '---').join('|')}|`);
  for (const r of results) {
    const per = perRep(r, 'accel');
    const mine = ratioOf(r, 'accel');
    const cells = [
      r.row.name,
      r.row.client,
      String(r.row.cpus),
      r.row.metric,
      median(r.values.plain).toFixed(0),
      median(r.values.accel).toFixed(0),
      `**${mine.toFixed(2)}x**`,
      per,
      `${r.handoffs.accel ?? 0}/${REPS}`,
    ];
    if (OLD) cells.push(`${ratioOf(r, 'old').toFixed(2)}x`, `${r.handoffs.old ?? 0}/${REPS}`);
    if (REFERENCE) cells.push(`${ratioOf(r, 'ref').toFixed(2)}x`, pct(keptOf(mine, ratioOf(r, 'ref'))));
    if (OLD && REFERENCE) cells.push(pct(keptOf(ratioOf(r, 'old'), ratioOf(r, 'ref'))));
    if (AA) cells.push(`${ratioOf(r, 'plain2').toFixed(2)}x`, perRep(r, 'plain2'));
    cells.push(p99(r.p99.plain), p99(r.p99.accel));
    if (REFERENCE) cells.push(p99(r.p99.ref));
    console.log(`| ${cells.join(' | ')} |`);
  }

  // Verdicts, one line per target and side: no shape under 0.97x of plain; at least 95% of the
  // reference's gain kept wherever the reference gains (per shape and overall: summed gains).
  const shapeName = (r: Result): string => `${r.row.name} ${r.row.client} ${r.row.cpus}cpu`;
  const verdicts: string[] = [];
  for (const side of ['accel', ...(OLD ? ['old'] : [])] as Side[]) {
    const who = side === 'accel' ? 'meshaccel (calibrated)' : 'meshaccel (old thresholds)';
    const ratios = results.map((r) => ({ r, x: ratioOf(r, side) }));
    const under = ratios.filter((e) => e.x < 0.97);
    const lowest = ratios.reduce((m, e) => (e.x < m.x ? e : m), ratios[0]);
    verdicts.push(
      `verdict ${who}: no shape under 0.97x: ${under.length === 0 ? 'PASS' : 'FAIL'}` +
        (under.length
          ? ` (${under.map((e) => `${shapeName(e.r)} ${e.x.toFixed(2)}x`).join(', ')})`
          : lowest
            ? ` (lowest ${shapeName(lowest.r)} ${lowest.x.toFixed(2)}x)`
            : ''),
    );
    if (REFERENCE) {
      const gaining = results.filter((r) => ratioOf(r, 'ref') >= 1.05);
      const kept = gaining.map((r) => ({ r, k: keptOf(ratioOf(r, side), ratioOf(r, 'ref')) as number }));
      const short = kept.filter((e) => e.k < 0.95);
      const sumMine = gaining.reduce((a, r) => a + ratioOf(r, side) - 1, 0);
      const sumRef = gaining.reduce((a, r) => a + ratioOf(r, 'ref') - 1, 0);
      const overall = sumRef > 0 ? sumMine / sumRef : undefined;
      verdicts.push(
        `verdict ${who}: reference gain kept >= 95% per shape: ${short.length === 0 ? 'PASS' : 'FAIL'} (${kept.length - short.length}/${kept.length} shapes` +
          `${short.length ? `; short: ${short.map((e) => `${shapeName(e.r)} ${pct(e.k)}`).join(', ')}` : ''}); overall ${pct(overall)}: ${overall !== undefined && overall >= 0.95 ? 'PASS' : 'FAIL'}`,
      );
    }
  }
  if (AA && results.length > 0) {
    // Which shortfalls the noise cannot explain: the largest distance of an A/A median from 1.00x
    // in this run is what a shape's median can be off by with no change at all, so a shortfall
    // (below 0.97x, or under the reference's ratio where it gains) larger than that is real.
    const noise = Math.max(...results.map((r) => Math.abs(ratioOf(r, 'plain2') - 1)));
    for (const side of ['accel', ...(OLD ? ['old'] : [])] as Side[]) {
      const who = side === 'accel' ? 'meshaccel (calibrated)' : 'meshaccel (old thresholds)';
      const real: string[] = [];
      for (const r of results) {
        const x = ratioOf(r, side);
        if (x < 0.97 && 0.97 - x > noise) real.push(`${shapeName(r)} ${x.toFixed(2)}x under 0.97x`);
        if (REFERENCE) {
          const ref = ratioOf(r, 'ref');
          const k = keptOf(x, ref);
          if (k !== undefined && k < 0.95 && ref - x > noise) real.push(`${shapeName(r)} ${x.toFixed(2)}x against the reference's ${ref.toFixed(2)}x`);
        }
      }
      verdicts.push(
        `verdict ${who}: shortfalls beyond the A/A noise (${noise.toFixed(2)}, the largest A/A median's distance from 1.00x): ${real.length === 0 ? 'none' : real.join(', ')}`,
      );
    }
    // The same verdict on the A/A side: a control with no change at all. Where it fails too, the
    // machine's noise is as large as what the targets try to tell apart.
    const aa = results.map((r) => ({ r, x: ratioOf(r, 'plain2') }));
    const lo = aa.reduce((m, e) => (e.x < m.x ? e : m), aa[0]);
    const hi = aa.reduce((m, e) => (e.x > m.x ? e : m), aa[0]);
    const aaUnder = aa.filter((e) => e.x < 0.97);
    const reps = results.flatMap((r) => r.values.plain.map((p, i) => r.values.plain2[i] / p));
    verdicts.push(
      `noise (A/A, plain against a second plain side): medians ${lo.x.toFixed(2)}x (${shapeName(lo.r)}) to ${hi.x.toFixed(2)}x (${shapeName(hi.r)}); ` +
        `${aaUnder.length} of ${aa.length} shapes under 0.97x; per-repetition ratios ${Math.min(...reps).toFixed(2)} to ${Math.max(...reps).toFixed(2)}`,
    );
  }
  console.log('');
  for (const v of verdicts) console.log(v);
  for (const [side, lines] of Object.entries(thresholdsRun)) console.log(`thresholds (${side}): ${lines.join(' | ')}`);
  console.log(`\ncounters (accel side): ${JSON.stringify(st.counters)}`);
  if (OLD) console.log(`counters (old side): ${JSON.stringify(status({ pinDir: oldPinDir, maxSockets: 0 }).counters)}`);
  // Per-run program cost, when the kernel keeps run statistics (sysctl kernel.bpf_stats_enabled=1).
  const progSides: [string, string][] = [
    ['accel', pinDir],
    ...(OLD ? [['old', oldPinDir] as [string, string]] : []),
    ...(REFERENCE ? [['ref', refPinDir] as [string, string]] : []),
  ];
  for (const [side, dir] of progSides) {
    for (const [name, p] of Object.entries(status({ pinDir: dir, maxSockets: 0 }).programs)) {
      if (p && p.runCount > 0) console.log(`${side} ${name}: ${p.runCount} runs, ${(p.runTimeNs / p.runCount).toFixed(0)} ns per run`);
    }
  }
  const file = path.join(os.tmpdir(), `${tag}.json`);
  fs.writeFileSync(
    file,
    JSON.stringify(
      {
        seconds: SECONDS,
        reps: REPS,
        nice: NICE,
        loadStart,
        load,
        thresholds: thresholdsRun,
        verdicts,
        results: results.map((r) => ({ ...r, row: { name: r.row.name, client: r.row.client, cpus: r.row.cpus, metric: r.row.metric } })),
      },
      null,
      2,
    ),
  );
  console.log(`raw results: ${file}`);
}

async function cleanup(): Promise<void> {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 300));
  for (const dir of [pinDir, oldPinDir, refPinDir]) {
    try {
      detach({ pinDir: dir });
    } catch (err) {
      console.error(`detach ${dir}: ${(err as Error).message}`);
    }
  }
  for (const side of Object.values(sides)) {
    try {
      execFileSync('ip', ['netns', 'del', side.netns], { stdio: 'ignore' });
    } catch {
      // not created
    }
    for (let i = 0; i < 50 && fs.existsSync(side.cgroup); i++) {
      try {
        fs.rmdirSync(side.cgroup);
      } catch {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
}

process.on('SIGINT', () => void cleanup().then(() => process.exit(130)));
process.on('SIGTERM', () => void cleanup().then(() => process.exit(143)));
main()
  .then(cleanup)
  .catch(async (err: Error) => {
    console.error(`bench-datapath: ${err.message}`);
    await cleanup();
    process.exit(1);
  });
