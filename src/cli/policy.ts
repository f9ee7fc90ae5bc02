import * as fs from 'fs';
import type { Command } from './command';
import { optionList, parseArgs, UsageError, type OptionSpec } from './args';
import { formatDiagnostic, type Diagnostic } from '../policy/diagnostics';
import { PolicyEngine } from '../policy/engine';
import { listYamlFiles, loadFiles } from '../policy/loader';

const CHECK_SPEC: Record<string, OptionSpec> = {
  help: { description: 'show this help' },
};

const COMPILE_SPEC: Record<string, OptionSpec> = {
  policies: { value: true, repeated: true, description: 'directory (or file) of L7Policy/ClusterL7Policy YAML' },
  workloads: { value: true, repeated: true, description: 'directory (or file) of Workload YAML' },
  node: { value: true, description: 'print only this xDS node id\'s policy' },
  'trust-domain': { value: true, description: 'trust domain of mTLS principals (default cluster.local)' },
  help: { description: 'show this help' },
};

const SUMMARY = 'policy check FILE... | policy compile --policies DIR --workloads DIR';

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
  const args = parseArgs(argv, CHECK_SPEC, { command: 'policy check FILE|DIR...', summary: 'Validate L7Policy, ClusterL7Policy and Workload YAML against the CRD schema, RE2 and Kafka rules.' });
  if (args.positionals.length === 0) throw new UsageError('policy check needs at least one FILE');
  const { files, empty } = expand(args.positionals);
  const loaded = loadFiles(files);
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
