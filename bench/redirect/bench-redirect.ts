/**
 * bench-redirect: connection setup rate and request/response rate of a workload's outbound
 * TCP through a local L4 relay (standing in for Envoy), captured three ways side by side in
 * one run: nftables TPROXY, tc + bpf_sk_assign, and iptables REDIRECT (+ SO_ORIGINAL_DST);
 * plus the uncaptured direct path as the reference. Modes are interleaved round by round so
 * the shared machine's noise hits all of them alike; medians are reported.
 *
 * Topology (test namespaces only): A = client + relay, B = echo server on 10.99.0.2:7000.
 * Relay: transparent listeners :15006/:15001, NAT listener :15002; upstream with SO_MARK.
 */
import { applyRedirect, removeRedirect } from '../../src/datapath/redirect';
import { missingPrerequisites } from '../../src/datapath/redirect/preflight';
import { runIn, runRawIn } from '../../src/datapath/redirect/exec';
import { createTopology, destroyTopology, startInNetns, type NsProcess, type Topology } from '../../test/redirect/fixtures/netns';
import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../../src/paths';

const PROXY_MARK = 0x539;
const SERVER = '10.99.0.2';
const SERVER_PORT = 7000;
const SECONDS = Number(process.env.BENCH_SECONDS ?? 1);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const CONN_CONCURRENCY = Number(process.env.BENCH_CONN_CONCURRENCY ?? 4);
const RR_CONCURRENCY = Number(process.env.BENCH_RR_CONCURRENCY ?? 8);
const CPU = process.env.BENCH_CPU ?? '1';
const CLK_TCK = 100; // USER_HZ on Linux

type Capture = 'none' | 'nft' | 'bpf' | 'iptables';
interface Mode {
  name: string;
  capture: Capture;
  /** Captured connections end at a local echo on the proxy port: the capture's cost alone. */
  local: boolean;
}
const MODES: Mode[] = [
  { name: 'direct', capture: 'none', local: false },
  { name: 'nft-tproxy', capture: 'nft', local: false },
  { name: 'bpf-sk-assign', capture: 'bpf', local: false },
  { name: 'iptables-redirect', capture: 'iptables', local: false },
  { name: 'nft-tproxy/local', capture: 'nft', local: true },
  { name: 'bpf-sk-assign/local', capture: 'bpf', local: true },
  { name: 'iptables-redirect/local', capture: 'iptables', local: true },
];
/** Relay ports (through the proxy) and local-echo ports (capture only). */
const RELAY_TPROXY_PORT = 15001;
const RELAY_NAT_PORT = 15002;
const LOCAL_TPROXY_PORT = 15011;
const LOCAL_NAT_PORT = 15012;

async function iptablesRedirect(t: Topology, toPort: number | undefined): Promise<void> {
  const ns = { netns: t.a };
  if (toPort === undefined) {
    await runRawIn({ netns: t.a }, ['iptables', '-t', 'nat', '-F', 'OUTPUT']);
    return;
  }
  // Istio's shape: the proxy's own (marked) traffic returns first, the rest is REDIRECTed.
  await runIn(ns, ['iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'tcp', '-m', 'mark', '--mark', String(PROXY_MARK), '-j', 'RETURN']);
  await runIn(ns, [
    'iptables',
    '-t',
    'nat',
    '-A',
    'OUTPUT',
    '-p',
    'tcp',
    '-d',
    SERVER,
    '--dport',
    String(SERVER_PORT),
    '-j',
    'REDIRECT',
    '--to-ports',
    String(toPort),
  ]);
}

async function setMode(t: Topology, mode: Mode): Promise<void> {
  await removeRedirect({ netns: t.a });
  await iptablesRedirect(t, undefined);
  const outboundProxyPort = mode.local ? LOCAL_TPROXY_PORT : RELAY_TPROXY_PORT;
  if (mode.capture === 'nft' || mode.capture === 'bpf') {
    await applyRedirect({ proxyMark: PROXY_MARK, outboundProxyPort }, { netns: t.a, mode: mode.capture });
  }
  if (mode.capture === 'iptables') await iptablesRedirect(t, mode.local ? LOCAL_NAT_PORT : RELAY_NAT_PORT);
}

/** user+system CPU of a process so far, in microseconds (/proc/PID/stat fields 14 and 15). */
function cpuUsOf(pid: number): number {
  const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1e6) / CLK_TCK;
}

interface Sample {
  rate: number;
  /** CPU of generator + relay + server per operation (µs): less sensitive to other load than the rate. */
  cpuPerOp: number;
}

async function load(t: Topology, kind: 'conn' | 'rr', pids: number[]): Promise<Sample> {
  const script = path.join(packageRoot(), 'dist/bench/redirect/loadgen.js');
  const conc = kind === 'conn' ? CONN_CONCURRENCY : RR_CONCURRENCY;
  const before = pids.reduce((a, p) => a + cpuUsOf(p), 0);
  const r = await runIn({ netns: t.a }, ['taskset', '-c', CPU, process.execPath, script, kind, SERVER, String(SERVER_PORT), String(SECONDS), String(conc)]);
  const after = pids.reduce((a, p) => a + cpuUsOf(p), 0);
  const out = JSON.parse(r.stdout.trim()) as { rate: number; ops: number; errors: number; cpuUs: number; fatal?: string };
  if (out.fatal) throw new Error(`loadgen ${kind}: ${out.fatal}`);
  if (out.errors > 0) console.error(`  (${kind}: ${out.errors} errors)`);
  return { rate: out.rate, cpuPerOp: (after - before + out.cpuUs) / Math.max(1, out.ops) };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

async function main(): Promise<number> {
  const missing = await missingPrerequisites('bpf');
  if (missing.length > 0) {
    console.error(`bench-redirect: cannot run, missing: ${missing.join('; ')}`);
    return 1;
  }
  const t = await createTopology('bench');
  const procs: NsProcess[] = [];
  try {
    for (const [k, v] of [
      ['net.ipv4.ip_local_port_range', '10000 65000'],
      ['net.ipv4.tcp_tw_reuse', '1'],
    ]) {
      await runIn({ netns: t.a }, ['sysctl', '-q', '-w', `${k}=${v}`]);
    }
    procs.push(await startInNetns(t.b, ['echo', String(SERVER_PORT)], Number(CPU)));
    procs.push(await startInNetns(t.a, ['relay', '15006', String(RELAY_TPROXY_PORT), String(PROXY_MARK), String(RELAY_NAT_PORT)], Number(CPU)));
    procs.push(await startInNetns(t.a, ['echo', String(LOCAL_NAT_PORT), String(LOCAL_TPROXY_PORT)], Number(CPU)));
    const pids = procs.map((p) => p.child.pid!);
    const results = Object.fromEntries(MODES.map((m) => [m.name, { conn: [] as Sample[], rr: [] as Sample[] }])) as Record<
      string,
      { conn: Sample[]; rr: Sample[] }
    >;
    console.log(`bench-redirect: ${ROUNDS} rounds x ${SECONDS}s per figure, modes interleaved, all processes on CPU ${CPU}`);
    console.log(`  conn: ${CONN_CONCURRENCY} concurrent (connect, 1-byte echo, reset); rr: ${RR_CONCURRENCY} kept connections x 64-byte echo`);
    for (let round = 1; round <= ROUNDS; round++) {
      for (const mode of MODES) {
        await setMode(t, mode);
        const conn = await load(t, 'conn', pids);
        const rr = await load(t, 'rr', pids);
        results[mode.name].conn.push(conn);
        results[mode.name].rr.push(rr);
        console.log(
          `  round ${round} ${mode.name.padEnd(23)} conn/s ${conn.rate.toFixed(0).padStart(7)} (${conn.cpuPerOp.toFixed(0)} us cpu)  req/s ${rr.rate.toFixed(0).padStart(7)} (${rr.cpuPerOp.toFixed(1)} us cpu)`,
        );
      }
    }
    console.log('\nmedians. Outbound path: client -> capture -> relay -> SO_MARK upstream -> echo server in the peer namespace;');
    console.log('  direct = no capture, no relay; /local = the captured connection ends at an echo on the proxy port (capture cost alone).');
    console.log(`  ${'mode'.padEnd(23)} ${'conn/s'.padStart(8)} ${'cpu us/conn'.padStart(12)} ${'req/s'.padStart(8)} ${'cpu us/req'.padStart(11)}`);
    for (const mode of MODES) {
      const r = results[mode.name];
      console.log(
        `  ${mode.name.padEnd(23)} ${median(r.conn.map((x) => x.rate))
          .toFixed(0)
          .padStart(8)} ${median(r.conn.map((x) => x.cpuPerOp))
          .toFixed(0)
          .padStart(12)} ` +
          `${median(r.rr.map((x) => x.rate))
            .toFixed(0)
            .padStart(8)} ${median(r.rr.map((x) => x.cpuPerOp))
            .toFixed(1)
            .padStart(11)}`,
      );
    }
    return 0;
  } finally {
    for (const p of procs) await p.stop();
    await removeRedirect({ netns: t.a }).catch(() => undefined);
    await destroyTopology(t);
  }
}

main().then(
  (code) => (process.exitCode = code),
  (err: Error) => {
    console.error(`bench-redirect: ${err.message}`);
    process.exitCode = 1;
  },
);
