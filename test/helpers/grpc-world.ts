import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { parseAllDocuments, stringify } from 'yaml';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import type { PolicyOrigin } from '../../src/policy/compiled';
import { formatDiagnostic, type Diagnostic } from '../../src/policy/diagnostics';
import { PolicyEngine } from '../../src/policy/engine';
import { loadTexts } from '../../src/policy/loader';
import { loadPolicyTestFile, type PolicyTestCase } from '../../src/trace/policy-tests';
import { traceConnection, traceGrpcServer, type TraceQuery } from '../../src/trace/trace';
import { ROOT } from '../policy/helpers';
import { method } from './grpc-shop';

/**
 * The table of Cilium semantics (test/trace/fixtures/world, which the standalone trace suite
 * runs) planned for grpc mode, where gRPC's XdsServer enforces ingress and egress is refused:
 * - the world gRPC mode serves: the table's policies without their egress sections (grpc mode
 *   refuses those), its workloads, and the table's imagined sources (a source given by address
 *   and labels) as workloads of their own;
 * - each case whose destination is a workload becomes a real call (source address, destination
 *   address of the same family, port, and the request's path as the gRPC method path);
 * - each case whose source is selected on egress expects that refusal, with its field path.
 */

export const WORLD_TABLE = path.join(ROOT, 'test', 'trace', 'fixtures', 'world', 'world.test.yaml');

/** One real call, as the runner in its network namespace makes it. */
export interface PlannedCall {
  id: number;
  /** The family of the table's source address (IPv4 ones are called as 64:ff9b::a.b.c.d). */
  family: 4 | 6;
  /** The XdsServer's node id (the destination's proxy). */
  node: string;
  port: number;
  /** Local address the client binds: the case's source. */
  from: string;
  /** The destination workload's address the client dials. */
  to: string;
  /** gRPC method path: the case's request path, or a plain method for L4 cases. */
  path: string;
  authority: string;
}

export interface RunnerPlan {
  /** The grpc-mode world's policy and workload files. */
  dir: string;
  /** The host XdsServers bind (the Listeners' names carry it). */
  grpcHost: string;
  servedPorts: number[];
  calls: PlannedCall[];
}

export interface CallResult {
  id: number;
  code: number;
  details: string;
}

export interface RunnerReport {
  results: CallResult[];
  rounds: number;
  servers: number;
  ms: number;
  /** Nodes that had not ACKed their Listeners (or had NACKed one) when their calls ran. */
  unacked: string[];
}

export type Verdict = 'ALLOWED' | 'DENIED';

export interface GrpcWorldCase {
  index: number;
  name: string;
  table: PolicyTestCase;
  /** The egress rules that select the source (grpc mode refuses each, at its section's field). */
  sourceEgress: PolicyOrigin[];
  call?: PlannedCall;
  /** With a call: the standalone trace, over the served world, of the case as written (at the dialed addresses). */
  asWritten?: Verdict;
  /** With a call: the standalone trace of the request as gRPC sends it (POST to its path). */
  expected?: Verdict;
  /** With a call: trace over the grpc-mode resources the XdsServer is served. */
  grpcTrace?: Verdict;
  grpcTraceDetail?: string;
}

export interface GrpcWorldPlan {
  cases: GrpcWorldCase[];
  runner: RunnerPlan;
  /** What grpc mode says about the table's policy files as written. */
  refusals: Diagnostic[];
}

const verdict = (allowed: boolean): Verdict => (allowed ? 'ALLOWED' : 'DENIED');

/**
 * IPv4 as IPv6, prefix for prefix: a.b.c.d/p is 64:ff9b::a.b.c.d/(96+p) (RFC 6052's prefix).
 * grpc-js-xds 1.14's XdsServer listens on [::] whatever host it binds, so an IPv4 client reaches
 * its RBAC as ::ffff:a.b.c.d, which matches no IPv4 range and makes every IPv6 range throw (the
 * server process dies). The world is therefore served, and called, over IPv6: the same ranges,
 * the same holes, the same entities, one family. It is served as to grpc-go/java servers
 * (`grpcServerImplementation: 'other'`), the Listeners that carry the table's semantics whole; a
 * grpc-js node is served no IPv6 range (grpc-js-family-real.test.ts), and no IPv4 call is made.
 */
export function asIPv6(v4: string): string {
  const [address, prefix] = v4.split('/');
  const [a, b, c, d] = address.split('.').map(Number);
  const mapped = `64:ff9b::${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  return prefix === undefined ? mapped : `${mapped}/${96 + Number(prefix)}`;
}

const IPV4 = /^\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}(\/\d{1,2})?$/;

function mapIPv4(v: unknown): unknown {
  if (typeof v === 'string') return IPV4.test(v) ? asIPv6(v) : v;
  if (Array.isArray(v)) return v.map(mapIPv4);
  if (v && typeof v === 'object') return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, mapIPv4(x)]));
  return v;
}

/**
 * A world file for grpc mode: policies lose their egress sections (grpc mode refuses those; a
 * policy left with no section goes); with `v6`, every IPv4 address and range becomes IPv6.
 */
function grpcWorldText(text: string, v6: boolean): string {
  const out: unknown[] = [];
  for (const doc of parseAllDocuments(text)) {
    const json = doc.toJSON() as { kind?: string; spec?: Record<string, unknown> } | null;
    if (!json?.spec) continue;
    if (json.kind !== 'Workload') {
      delete json.spec.egress;
      delete json.spec.egressDeny;
      if (json.spec.ingress === undefined && json.spec.ingressDeny === undefined) continue;
    }
    out.push(v6 ? mapIPv4(json) : json);
  }
  return out.map((d) => stringify(d)).join('---\n');
}

/** Sources the table gives by address and labels, as workloads (one proxy each; never a destination). */
function imaginedSources(cases: readonly PolicyTestCase[]): string {
  const seen = new Map<string, unknown>();
  for (const c of cases) {
    if (typeof c.from === 'string' || !c.from.labels || seen.has(c.from.ip)) continue;
    const n = seen.size;
    seen.set(c.from.ip, {
      apiVersion: 'meshaccel.io/v1alpha1',
      kind: 'Workload',
      metadata: { name: `imagined-${n}`, namespace: c.from.namespace ?? 'meshaccel-trace', labels: c.from.labels },
      spec: { addresses: [c.from.ip], serviceAccount: c.from.serviceAccount, proxy: { nodeId: `n-imagined-${n}` } },
    });
  }
  return [...seen.values()].map((d) => stringify(d)).join('---\n');
}

function engineOf(texts: ReadonlyMap<string, string>, mode?: 'grpc'): { engine: PolicyEngine; diagnostics: Diagnostic[] } {
  const loaded = loadTexts(texts, undefined, mode ? { mode } : {});
  const engine = new PolicyEngine();
  if (loaded.diagnostics.length > 0) return { engine, diagnostics: loaded.diagnostics };
  engine.sync(loaded.resources);
  const conflicts = engine.commit().conflicts;
  if (conflicts.length > 0) throw new Error(conflicts.map(formatDiagnostic).join('\n'));
  return { engine, diagnostics: [] };
}

function loaded(texts: ReadonlyMap<string, string>, what: string): PolicyEngine {
  const r = engineOf(texts, 'grpc');
  if (r.diagnostics.length > 0) throw new Error(`${what} does not load in grpc mode:\n${r.diagnostics.map(formatDiagnostic).join('\n')}`);
  return r.engine;
}

function mapTexts(texts: ReadonlyMap<string, string>, name: (file: string) => string, v6: boolean): Map<string, string> {
  return new Map([...texts].map(([f, t]) => [name(f), grpcWorldText(t, v6)]));
}

/** The egress and egressDeny rules of the source's proxy that apply to the source. */
function egressOf(engine: PolicyEngine, key: string | undefined, ip: string): PolicyOrigin[] {
  const w = key ? engine.workload(key) : undefined;
  const compiled = w && engine.proxy(w.proxyKey);
  if (!compiled) return [];
  const rules = [...compiled.egress, ...(compiled.egressDeny ?? [])].flatMap((p) => p.rules);
  const applies = rules.filter((r) => r.origin.rule && (r.local === undefined || r.local.some((c) => c.split('/')[0] === ip)));
  return [...new Map(applies.map((r) => [`${r.origin.policy}|${r.origin.rule?.section}`, r.origin])).values()];
}

/**
 * Plans the table for grpc mode, writing the served world into `dir`, and computes every trace
 * the suite compares the real calls with: over the table's own (IPv4) addresses in standalone
 * mode, and over the served (IPv6) world's grpc-mode Listeners for XdsServers bound at `grpcHost`.
 */
export function planGrpcWorld(dir: string, grpcHost: string): GrpcWorldPlan {
  const table = loadPolicyTestFile(WORLD_TABLE);
  const original = new Map(table.files.map((f) => [f, fs.readFileSync(f, 'utf8')]));
  const withImagined = new Map([...original, [path.join(path.dirname(WORLD_TABLE), 'zz-imagined-sources.yaml'), imaginedSources(table.cases)]]);
  // The table as written, with its imagined sources: which sources are selected on egress.
  const asWritten = engineOf(withImagined).engine;
  const refusals = engineOf(original, 'grpc').diagnostics;
  const v4 = loaded(
    mapTexts(withImagined, (f) => f, false),
    'the grpc-mode world',
  );
  const servedTexts = mapTexts(withImagined, (f) => path.join(dir, path.basename(f)), true);
  for (const [f, t] of servedTexts) fs.writeFileSync(f, t);
  const served = loaded(servedTexts, 'the grpc-mode world over IPv6');
  const servedPorts = [...new Set(table.cases.map((c) => c.port))].sort((a, b) => a - b);

  const cases = table.cases.map((c, index): GrpcWorldCase => {
    const srcIp = typeof c.from === 'string' ? asWritten.workload(`Workload/${c.from}`)?.addresses[0] : c.from.ip;
    if (!srcIp) throw new Error(`case ${c.name}: no source address`);
    const srcKey = typeof c.from === 'string' ? `Workload/${c.from}` : asWritten.workloadByAddress(c.from.ip);
    const out: GrpcWorldCase = { index, name: c.name, table: c, sourceEgress: egressOf(asWritten, srcKey, srcIp) };
    const dstKey = typeof c.to === 'string' ? `Workload/${c.to}` : v4.workloadByAddress(c.to.ip);
    if (!dstKey) return out;
    const family = net.isIP(srcIp) as 4 | 6;
    const origTo = v4.workload(dstKey)?.addresses.find((a) => net.isIP(a) === family);
    const dst = served.workload(dstKey);
    const compiled = dst && served.proxy(dst.proxyKey);
    if (!origTo || !compiled) throw new Error(`case ${c.name}: the destination has no IPv${family} address or no proxy to call`);
    const [from, to] = family === 4 ? [asIPv6(srcIp), asIPv6(origTo)] : [srcIp, origTo];
    const grpcPath = c.request?.path ?? method('GetItem');
    // What the call sends as :authority (gRPC's RBAC judges it), unless the case names a host.
    const authority = c.request?.host ?? `[${to}]:${c.port}`;
    out.call = { id: index, family, node: compiled.nodeId, port: c.port, from, to, path: grpcPath, authority };
    const query = (http: TraceQuery['http']): TraceQuery => ({ from: { ip: srcIp }, to: { ip: origTo }, port: c.port, http });
    out.asWritten = verdict(traceConnection(v4, query(c.request), DEFAULT_REDIRECT_CONFIG).allowed);
    const sent = c.request ? { ...c.request, method: 'POST', path: grpcPath } : undefined;
    out.expected = verdict(traceConnection(v4, query(sent), DEFAULT_REDIRECT_CONFIG).allowed);
    const side = traceGrpcServer(
      compiled,
      { sourceIp: from, destinationIp: to, port: c.port, http: { method: 'POST', path: grpcPath, host: authority } },
      { host: grpcHost, redirect: DEFAULT_REDIRECT_CONFIG, servedPorts, implementation: 'other' },
    );
    out.grpcTrace = verdict(side.allowed);
    out.grpcTraceDetail = side.filters.map((f) => `${f.filter}: ${f.allowed ? 'pass' : 'DENY'}${f.policy ? ` (${f.policy})` : ''}`).join('; ');
    return out;
  });
  return { cases, refusals, runner: { dir, grpcHost, servedPorts, calls: cases.flatMap((c) => (c.call ? [c.call] : [])) } };
}
