import * as fs from 'fs';
import type { Command } from './command';
import { optionList, optionValue, parseArgs, UsageError, type OptionSpec } from './args';
import type { EnforcementMode } from '../policy/enforceability';
import { formatDiagnostic } from '../policy/diagnostics';
import { PolicyEngine } from '../policy/engine';
import { listYamlFiles, loadFiles } from '../policy/loader';

const CHECK_SPEC: Record<string, OptionSpec> = {
  mode: { value: true, description: 'Envoy mode the policies are for: standalone (default), istio or grpc; what it cannot enforce is an error' },
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
  node: { value: true, description: 'print only this xDS node id\'s policy' },
  'trust-domain': { value: true, description: 'trust domain of mTLS principals (default cluster.local)' },
  help: { description: 'show this help' },
};

const SUMMARY = 'policy check FILE... | policy compile --policies DIR --workloads DIR';

/** Files named directly, plus the YAML files of named directories. */
function expand(paths: readonly string[]): string[] {
  const out: string[] = [];
  for (const p of paths) {
    let isDir = false;
    try {
      isDir = fs.statSync(p).isDirectory();
    } catch {
      // Missing paths go to the loader, which reports them like any unreadable file.
    }
    if (isDir) out.push(...listYamlFiles(p));
    else out.push(p);
  }
  return out;
}

/** Validates files like a compiler: one line per error, exit status 0 only if everything passed. */
async function check(argv: string[]): Promise<number> {
  const args = parseArgs(argv, CHECK_SPEC, { command: 'policy check FILE|DIR...', summary: 'Validate L7Policy, ClusterL7Policy and Workload YAML against the CRD schema, RE2 and Kafka rules.' });
  if (args.positionals.length === 0) throw new UsageError('policy check needs at least one FILE');
  const files = expand(args.positionals);
  const loaded = loadFiles(files, undefined, { mode: modeOption(optionValue(args, 'mode')) });
  const diagnostics = [...loaded.diagnostics];
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
  const loaded = loadFiles(expand(inputs));
  const engine = new PolicyEngine({ trustDomain: args.options.get('trust-domain')?.[0] });
  const diagnostics = [...loaded.diagnostics];
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
  summary: 'validate policies (check) or print their compiled form (compile)',
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === 'check') return check(rest);
    if (sub === 'compile') return compile(rest);
    if (sub === undefined || sub === '--help' || sub === 'help') {
      console.log(`usage: meshaccel ${SUMMARY}\n\n  check FILE|DIR...   validate files; errors as file:line:col; exit 1 if any\n  compile ...         print the per-proxy compiled policy as JSON`);
      return sub === undefined ? 2 : 0;
    }
    throw new UsageError(`unknown policy subcommand "${sub}" (expected check or compile)`);
  },
};
