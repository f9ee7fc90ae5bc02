import * as fs from 'fs';
import * as path from 'path';
import { parse as parseYaml } from 'yaml';
import type { RedirectConfig } from '../net/capture-config';
import { formatDiagnostic } from '../policy/diagnostics';
import { PolicyEngine } from '../policy/engine';
import { listYamlFiles, loadFiles } from '../policy/loader';
import type { KafkaRequestSpec } from '../kafka/request-frame';
import { formatTrace, traceConnection, type HttpRequestSpec, type TraceQuery } from './trace';

/**
 * Policy tests: a YAML file of cases (source, destination, port, optional HTTP request,
 * expected verdict), each run through `traceConnection`, i.e. through gRPC's RBAC engine over
 * the resources that would be served.
 *
 *     policies: [../policies]          # relative to this file; files or directories
 *     workloads: [../workloads]
 *     cases:
 *       - name: the frontend reads products
 *         from: shop/frontend-0          # a workload, or {ip, labels?, namespace?, serviceAccount?}
 *         to: shop/api-0                 # a workload, or {ip}
 *         port: 8080
 *         request: {method: GET, path: /v1/products}
 *         expect: ALLOWED                # or DENIED
 *       - name: orders produces to its topic
 *         from: shop/orders-0
 *         to: shop/kafka-0
 *         port: 9092
 *         kafka: {request: produce, topics: [orders], clientId: orders-svc}   # apiVersion: optional
 *         expect: ALLOWED
 */

export interface PolicyTestCase {
  name: string;
  from: string | { ip: string; labels?: Record<string, string>; namespace?: string; serviceAccount?: string };
  to: string | { ip: string };
  port: number;
  request?: HttpRequestSpec;
  /** A Kafka request, judged by the Kafka filter on a Kafka port. */
  kafka?: KafkaRequestSpec;
  expect: 'ALLOWED' | 'DENIED';
}

export interface PolicyTestResult {
  name: string;
  passed: boolean;
  expected: 'ALLOWED' | 'DENIED';
  actual?: 'ALLOWED' | 'DENIED';
  /** The trace, or why the case could not run. */
  detail: string;
}

interface TestFile {
  policies?: string[];
  workloads?: string[];
  cases?: PolicyTestCase[];
}

function expand(paths: readonly string[]): string[] {
  return paths.flatMap((p) => (fs.existsSync(p) && fs.statSync(p).isDirectory() ? listYamlFiles(p) : [p]));
}

export function caseQuery(c: PolicyTestCase): TraceQuery {
  const from =
    typeof c.from === 'string'
      ? { workload: `Workload/${c.from}` }
      : { ip: c.from.ip, labels: c.from.labels, namespace: c.from.namespace, serviceAccount: c.from.serviceAccount };
  const to = typeof c.to === 'string' ? { workload: `Workload/${c.to}` } : { ip: c.to.ip };
  return { from, to, port: c.port, http: c.request, kafka: c.kafka };
}

export interface LoadedPolicyTestFile {
  cases: PolicyTestCase[];
  /** The policy and workload files the test file names, resolved and expanded. */
  files: string[];
  /** An engine committed with those files. */
  engine: PolicyEngine;
}

/** Reads a test file and loads what it names; throws when the file itself (or its policies) cannot be loaded. */
export function loadPolicyTestFile(file: string): LoadedPolicyTestFile {
  const doc = parseYaml(fs.readFileSync(file, 'utf8')) as TestFile;
  const base = path.dirname(file);
  const files = expand([...(doc.policies ?? []), ...(doc.workloads ?? [])].map((p) => path.resolve(base, p)));
  const loaded = loadFiles(files);
  if (loaded.diagnostics.length > 0) throw new Error(`${file}: its policies do not load:\n${loaded.diagnostics.map(formatDiagnostic).join('\n')}`);
  const engine = new PolicyEngine();
  engine.sync(loaded.resources);
  const conflicts = engine.commit().conflicts;
  if (conflicts.length > 0) throw new Error(`${file}: ${conflicts.map(formatDiagnostic).join('\n')}`);
  return { cases: doc.cases ?? [], files, engine };
}

/** Runs one test file; throws only when the file itself (or its policies) cannot be loaded. */
export function runPolicyTestFile(file: string, redirect: RedirectConfig): PolicyTestResult[] {
  const { cases, engine } = loadPolicyTestFile(file);
  return cases.map((c, i): PolicyTestResult => {
    const name = c.name ?? `case ${i + 1}`;
    try {
      const r = traceConnection(engine, caseQuery(c), redirect);
      // An HTTP port judged without a request says nothing about the requests it would deny.
      if (r.allowed && r.sides.some((s) => s.l7Skipped))
        return { name, passed: false, expected: c.expect, detail: `port ${c.port} parses HTTP: give the case a request\n${formatTrace(r)}` };
      const actual = r.allowed ? 'ALLOWED' : 'DENIED';
      return { name, passed: actual === c.expect, expected: c.expect, actual, detail: formatTrace(r) };
    } catch (err) {
      return { name, passed: false, expected: c.expect, detail: (err as Error).message };
    }
  });
}
