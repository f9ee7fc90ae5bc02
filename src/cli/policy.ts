import * as fs from 'fs';
import type { Command } from './command';
import { grpcServersOption, optionList, optionValue, parseArgs, parsePort, UsageError, type OptionSpec } from './args';
import type { EnforcementMode } from '../policy/enforceability';
import { formatDiagnostic, type Diagnostic } from '../policy/diagnostics';
import { PolicyEngine } from '../policy/engine';
import { listYamlFiles, loadFiles } from '../policy/loader';
import { parseKafkaApiVersion } from '../policy/kafka';
import { kafkaRequestKey, type KafkaRequestSpec } from '../kafka/request-frame';

const CHECK_SPEC: Record<string, OptionSpec> = {
  mode: { value: true, description: 'Envoy mode the policies are for: standalone (default), istio or grpc; what it cannot enforce is an error' },
  'served-ports': {
    value: true,
    repeated: true,
    description: 'istio: the ports the deployed EnvoyFilter patches per port; L7 rules on any other port are an error',
  },
  'grpc-servers': {
    value: true,
    description:
      'grpc: what serves the policies: grpc-js (default: XdsServers of @grpc/grpc-js-xds may, and serve refuses for them what they cannot enforce) or other (grpc-go, grpc-java, ... only)',
  },
  help: { description: 'show this help' },
};

function modeOption(value: string | undefined): EnforcementMode {
  const mode = value ?? 'standalone';
  if (mode !== 'standalone' && mode !== 'istio' && mode !== 'grpc') throw new UsageError(`--mode: "${mode}" is not standalone, istio or grpc`);
  return mode;
}

const COMPILE_SPEC: Record<string, OptionSpec> = {
  policies: { value: true, repeated: true, description: 'directory (or file) of L7Policy/ClusterL7Policy YAML' },
  workloads: { value: true, repeated: true, description: 'directory (or file) of Workload YAML' },
  node: { value: true, description: "print only this xDS node id's policy" },
  'trust-domain': { value: true, description: 'trust domain of mTLS principals (default cluster.local)' },
  help: { description: 'show this help' },
};

const TRACE_SPEC: Record<string, OptionSpec> = {
  policies: { value: true, repeated: true, description: 'directory (or file) of L7Policy/ClusterL7Policy YAML' },
  workloads: { value: true, repeated: true, description: 'directory (or file) of Workload YAML' },
  from: { value: true, description: 'source workload, ns/name' },
  'from-ip': { value: true, description: "source address (a workload's, or any other)" },
  'from-labels': { value: true, description: 'with --from-ip: labels of a workload to imagine at that address, k=v,k=v' },
  'from-namespace': { value: true, description: 'with --from-labels: its namespace (default meshaccel-trace)' },
  'from-sa': { value: true, description: 'with --from-labels: its service account' },
  to: { value: true, description: 'destination workload, ns/name' },
  'to-ip': { value: true, description: 'destination address (outside every workload, for egress)' },
  port: { value: true, description: 'destination port' },
  method: { value: true, description: 'HTTP method of a request to judge at L7' },
  path: { value: true, description: 'HTTP path' },
  host: { value: true, description: 'HTTP :authority' },
  header: { value: true, repeated: true, description: 'HTTP header "name: value"' },
  'from-principal': { value: true, description: "mTLS identity of the source (spiffe://...); istio mode: default the source workload's service account" },
  mode: { value: true, description: "standalone (default), istio or grpc (the XdsServer's Listener): whose resources to judge with" },
  'grpc-servers': { value: true, description: 'with --mode grpc: grpc-js (default: an XdsServer of @grpc/grpc-js-xds, as it sees addresses) or other' },
  kafka: { value: true, description: 'a Kafka request to judge with the Kafka filter: produce, consume (a Fetch), or an API key name or number' },
  topic: { value: true, repeated: true, description: 'with --kafka: a topic the request names' },
  'client-id': { value: true, description: 'with --kafka: its client id (default: null, which no clientID rule matches)' },
  'api-version': { value: true, description: 'with --kafka: its version (default: the newest that names topics by name)' },
  help: { description: 'show this help' },
};

const TEST_SPEC: Record<string, OptionSpec> = {
  help: { description: 'show this help' },
};

const SUMMARY = 'policy check FILE... | policy compile --policies DIR --workloads DIR | policy trace ... | policy test FILE...';

function labelsOption(text: string | undefined): Record<string, string> | undefined {
  if (text === undefined) return undefined;
  const out: Record<string, string> = {};
  for (const part of text.split(',').filter((p) => p !== '')) {
    const eq = part.indexOf('=');
    if (eq <= 0) throw new UsageError(`--from-labels: "${part}" is not k=v`);
    out[part.slice(0, eq)] = part.slice(eq + 1);
  }
  return out;
}

function kafkaOption(args: ReturnType<typeof parseArgs>): KafkaRequestSpec | undefined {
  const request = optionValue(args, 'kafka');
  const topics = optionList(args, 'topic');
  const clientId = optionValue(args, 'client-id');
  const versionText = optionValue(args, 'api-version');
  if (request === undefined) {
    if (topics.length || clientId !== undefined || versionText !== undefined)
      throw new UsageError('--topic, --client-id and --api-version describe a --kafka request');
    return undefined;
  }
  const apiVersion = versionText === undefined ? undefined : parseKafkaApiVersion(versionText);
  if (versionText !== undefined && apiVersion === undefined) throw new UsageError(`--api-version: "${versionText}" is not 0-32767`);
  try {
    kafkaRequestKey(request);
  } catch (err) {
    throw new UsageError(`--kafka: ${(err as Error).message}`);
  }
  return { request, topics, clientId, apiVersion };
}

/** Loads the policies and workloads, prints the verdict of one connection (or request). Exit 0 when traced, whatever the verdict. */
async function trace(argv: string[]): Promise<number> {
  const args = parseArgs(argv, TRACE_SPEC, {
    command: 'policy trace',
    summary:
      "Judge one connection (and optionally one HTTP request through gRPC's RBAC engine, or one Kafka request through the Kafka filter's .wasm) over the Envoy resources that would be served (standalone mode, --mode istio, or --mode grpc: the XdsServer's Listener).",
  });
  const inputs = [...optionList(args, 'policies'), ...optionList(args, 'workloads'), ...args.positionals];
  if (inputs.length === 0) throw new UsageError('policy trace needs --policies and --workloads');
  const portText = optionValue(args, 'port');
  const port = portText === undefined ? NaN : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError('policy trace needs --port 1-65535');
  const from = optionValue(args, 'from');
  const fromIp = optionValue(args, 'from-ip');
  const to = optionValue(args, 'to');
  const toIp = optionValue(args, 'to-ip');
  if ((from === undefined) === (fromIp === undefined)) throw new UsageError('give one of --from or --from-ip');
  if ((to === undefined) === (toIp === undefined)) throw new UsageError('give one of --to or --to-ip');
  const mode = modeOption(optionValue(args, 'mode'));
  const grpcServers = grpcServersOption(optionValue(args, 'grpc-servers'));
  const { files, empty } = expand(inputs);
  const loaded = loadFiles(files, undefined, { mode });
  const engine = new PolicyEngine();
  const diagnostics = [...empty, ...loaded.diagnostics];
  if (diagnostics.length === 0) {
    engine.sync(loaded.resources);
    diagnostics.push(...engine.commit().conflicts);
  }
  if (diagnostics.length > 0) {
    for (const d of diagnostics) console.error(formatDiagnostic(d));
    return 1;
  }
  const headers: Record<string, string> = {};
  for (const h of optionList(args, 'header')) {
    const colon = h.indexOf(':');
    if (colon <= 0) throw new UsageError(`--header: "${h}" is not "name: value"`);
    headers[h.slice(0, colon).trim().toLowerCase()] = h.slice(colon + 1).trim();
  }
  const method = optionValue(args, 'method');
  const reqPath = optionValue(args, 'path');
  const host = optionValue(args, 'host');
  const http =
    method !== undefined || reqPath !== undefined || host !== undefined || Object.keys(headers).length > 0
      ? { method, path: reqPath, host, headers }
      : undefined;
  const kafka = kafkaOption(args);
  if (kafka && http) throw new UsageError('give an HTTP request or a Kafka request, not both');
  const { traceConnection, formatTrace } = await import('../trace/trace');
  const { DEFAULT_REDIRECT_CONFIG } = await import('../net/capture-config');
  try {
    const r = traceConnection(
      engine,
      {
        from: {
          ...(from !== undefined
            ? { workload: `Workload/${from}` }
            : {
                ip: fromIp,
                labels: labelsOption(optionValue(args, 'from-labels')),
                namespace: optionValue(args, 'from-namespace'),
                serviceAccount: optionValue(args, 'from-sa'),
              }),
          principal: optionValue(args, 'from-principal'),
        },
        to: to !== undefined ? { workload: `Workload/${to}` } : { ip: toIp },
        port,
        http,
        kafka,
      },
      DEFAULT_REDIRECT_CONFIG,
      { mode, grpcServers },
    );
    console.log(formatTrace(r));
    return 0;
  } catch (err) {
    console.error(`policy trace: ${(err as Error).message}`);
    return 1;
  }
}

/** Runs YAML policy test files; exit 1 on any mismatch, with the trace of each failing case. */
async function test(argv: string[]): Promise<number> {
  const args = parseArgs(argv, TEST_SPEC, {
    command: 'policy test FILE...',
    summary: 'Run policy test cases (YAML: policies, workloads, cases with from/to/port/request/expect) through policy trace.',
  });
  if (args.positionals.length === 0) throw new UsageError('policy test needs at least one FILE');
  const { runPolicyTestFile } = await import('../trace/policy-tests');
  const { DEFAULT_REDIRECT_CONFIG } = await import('../net/capture-config');
  let failed = 0;
  let total = 0;
  for (const file of args.positionals) {
    let results;
    try {
      results = runPolicyTestFile(file, DEFAULT_REDIRECT_CONFIG);
    } catch (err) {
      console.error((err as Error).message);
      failed++;
      continue;
    }
    for (const r of results) {
      total++;
      if (r.passed) continue;
      failed++;
      console.error(
        `${file}: FAIL ${r.name}\n  - expected ${r.expected}\n  + got      ${r.actual ?? 'an error'}\n${r.detail
          .split('\n')
          .map((l) => `    ${l}`)
          .join('\n')}`,
      );
    }
  }
  const summary = `${total - failed} of ${total} case${total === 1 ? '' : 's'} passed`;
  if (failed > 0) {
    console.error(`policy test: ${summary}`);
    return 1;
  }
  console.log(`policy test: ${summary}`);
  return 0;
}

/**
 * Files named directly, plus the YAML files of named directories. A directory without any is an
 * error: checking nothing and saying "ok" hides a wrong path. Named files are read (or refused,
 * if not regular files) by the loader, which reports them like any unreadable file.
 */
function expand(paths: readonly string[]): { files: string[]; empty: Diagnostic[] } {
  const files: string[] = [];
  const empty: Diagnostic[] = [];
  for (const p of paths) {
    let isDir = false;
    try {
      isDir = fs.statSync(p).isDirectory();
    } catch {
      // Missing paths go to the loader, which reports them like any unreadable file.
    }
    if (!isDir) {
      files.push(p);
      continue;
    }
    const found = listYamlFiles(p);
    if (found.length === 0) empty.push({ file: p, line: 1, column: 1, path: '', message: 'no .yaml or .yml files in this directory' });
    files.push(...found);
  }
  return { files, empty };
}

/** Validates files like a compiler: one line per error, exit status 0 only if everything passed. */
async function check(argv: string[]): Promise<number> {
  const args = parseArgs(argv, CHECK_SPEC, {
    command: 'policy check FILE|DIR...',
    summary: 'Validate L7Policy, ClusterL7Policy and Workload YAML against the CRD schema, RE2 and Kafka rules.',
  });
  if (args.positionals.length === 0) throw new UsageError('policy check needs at least one FILE');
  const { files, empty } = expand(args.positionals);
  const loaded = loadFiles(files, undefined, {
    mode: modeOption(optionValue(args, 'mode')),
    coveredPorts: optionList(args, 'served-ports').map((p) => parsePort(p, '--served-ports')),
    grpcJs: grpcServersOption(optionValue(args, 'grpc-servers')) === 'grpc-js',
  });
  const diagnostics = [...empty, ...loaded.diagnostics];
  if (diagnostics.length === 0) {
    // With workloads in the set, policies can be resolved, which finds L7 protocol clashes.
    const engine = new PolicyEngine();
    engine.sync(loaded.resources);
    diagnostics.push(...engine.commit().conflicts);
  }
  for (const d of diagnostics) console.error(formatDiagnostic(d));
  const summary = `${files.length} file${files.length === 1 ? '' : 's'}, ${loaded.resources.length} valid resource${loaded.resources.length === 1 ? '' : 's'}`;
  if (diagnostics.length > 0) {
    console.error(`policy check: ${diagnostics.length} error${diagnostics.length === 1 ? '' : 's'} (${summary})`);
    return 1;
  }
  console.log(`policy check: ok (${summary})`);
  return 0;
}

/** Prints the compiled IR the Envoy builders consume, keyed by proxy. */
async function compile(argv: string[]): Promise<number> {
  const args = parseArgs(argv, COMPILE_SPEC, { command: 'policy compile', summary: 'Compile policies and workloads to the per-proxy IR (JSON on stdout).' });
  const inputs = [...optionList(args, 'policies'), ...optionList(args, 'workloads'), ...args.positionals];
  if (inputs.length === 0) throw new UsageError('policy compile needs --policies and/or --workloads');
  const { files, empty } = expand(inputs);
  const loaded = loadFiles(files);
  const engine = new PolicyEngine({ trustDomain: args.options.get('trust-domain')?.[0] });
  const diagnostics = [...empty, ...loaded.diagnostics];
  if (diagnostics.length === 0) {
    engine.sync(loaded.resources);
    diagnostics.push(...engine.commit().conflicts);
  }
  if (diagnostics.length > 0) {
    for (const d of diagnostics) console.error(formatDiagnostic(d));
    return 1;
  }
  const node = args.options.get('node')?.[0];
  if (node !== undefined) {
    const policy = engine.policyForNode(node);
    if (!policy) {
      console.error(`policy compile: no workload is served by node ${node}`);
      return 1;
    }
    console.log(JSON.stringify(policy, null, 2));
    return 0;
  }
  console.log(JSON.stringify({ proxies: Object.fromEntries(engine.proxies()) }, null, 2));
  return 0;
}

export const command: Command = {
  summary: 'validate policies (check), print their compiled form (compile), judge a connection (trace), run policy tests (test)',
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === 'check') return check(rest);
    if (sub === 'compile') return compile(rest);
    if (sub === 'trace') return trace(rest);
    if (sub === 'test') return test(rest);
    if (sub === undefined || sub === '--help' || sub === 'help') {
      console.log(
        `usage: meshaccel ${SUMMARY}\n\n  check FILE|DIR...   validate files; errors as file:line:col; exit 1 if any\n  compile ...         print the per-proxy compiled policy as JSON\n  trace ...           judge one connection/request over the resources that would be served\n  test FILE...        run YAML policy test cases through trace; exit 1 on any mismatch`,
      );
      return sub === undefined ? 2 : 0;
    }
    throw new UsageError(`unknown policy subcommand "${sub}" (expected check, compile, trace or test)`);
  },
};
