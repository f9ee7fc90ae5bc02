import type { Command } from './command';
import type { CompiledProxyPolicy } from '../policy/compiled';
import { grpcServersOption, UsageError, optionValue, parseArgs, type OptionSpec } from './args';
import * as path from 'path';
import { kafkaFilterWasmPath } from '../kafka/wasm-path';

/**
 * `meshaccel envoy check FILE...`: Envoy's schema and PGV rules over bootstraps and resources.
 * `meshaccel envoy render COMPILED.json --mode M`: the resources a compiled proxy policy
 * becomes, as checked Envoy JSON (for debugging and golden files).
 */

const CHECK_OPTIONS: Record<string, OptionSpec> = {
  quiet: { description: 'print only violations' },
  help: { description: 'show this help' },
};

const RENDER_OPTIONS: Record<string, OptionSpec> = {
  mode: { value: true, description: 'standalone | istio | grpc (default standalone)' },
  'kafka-filter': {
    value: true,
    description: 'standalone/istio: path of the Kafka filter module (.wasm) on the Envoy host (default: the built one of this install)',
  },
  'grpc-host': { value: true, description: 'grpc mode: host the XdsServer binds (default 0.0.0.0)' },
  'grpc-servers': {
    value: true,
    description: 'grpc mode: grpc-js (default: an XdsServer of @grpc/grpc-js-xds, served no IPv6 range) or other (grpc-go, grpc-java, ...)',
  },
  envoyfilter: {
    description:
      "istio mode: print the EnvoyFilter that puts the network RBAC on every inbound chain and the HTTP RBAC / Kafka filter on this policy's L7 ports",
  },
  namespace: { value: true, description: 'with --envoyfilter: its namespace (default default)' },
  'workload-labels': { value: true, description: 'with --envoyfilter: workloadSelector labels, k=v,k=v' },
  'xds-address': { value: true, description: "with --envoyfilter: meshaccel's xDS server host:port as sidecars reach it" },
  help: { description: 'show this help' },
};

const SUMMARY = "check Envoy config files against Envoy's schema; render compiled policy as Envoy resources";

async function check(argv: string[]): Promise<number> {
  const args = parseArgs(argv, CHECK_OPTIONS, {
    command: 'envoy check FILE...',
    summary:
      'Checks Envoy bootstraps and resources (YAML or JSON; "@type" resources, lists, `resources:`, Istio EnvoyFilters) against Envoy\'s protos and their validate.rules. Exit 0 only if every file passes.',
  });
  if (args.positionals.length === 0) throw new UsageError('envoy check needs at least one FILE');
  const { checkFile } = await import('../envoy/check-file');
  const { formatDiagnostic } = await import('../policy/diagnostics');
  let failed = false;
  for (const file of args.positionals) {
    let result;
    try {
      result = checkFile(file);
    } catch (err) {
      console.error(`${file}: ${err instanceof Error ? err.message : String(err)}`);
      failed = true;
      continue;
    }
    for (const v of result.violations) console.log(formatDiagnostic(v));
    if (result.violations.length > 0) failed = true;
    if (!args.flags.has('quiet')) {
      const verdict = result.violations.length === 0 ? 'ok' : `${result.violations.length} violation${result.violations.length === 1 ? '' : 's'}`;
      console.error(`${file}: ${verdict} (${result.checked.join(', ') || 'nothing to check'})`);
    }
  }
  return failed ? 1 : 0;
}

async function render(argv: string[]): Promise<number> {
  const args = parseArgs(argv, RENDER_OPTIONS, {
    command: 'envoy render COMPILED.json',
    summary: 'Prints the Envoy resources a CompiledProxyPolicy (JSON) compiles to, after checking them.',
  });
  const [file] = args.positionals;
  if (!file || args.positionals.length > 1) throw new UsageError('envoy render needs exactly one COMPILED.json');
  const mode = optionValue(args, 'mode') ?? 'standalone';
  if (mode !== 'standalone' && mode !== 'istio' && mode !== 'grpc') throw new UsageError(`--mode: "${mode}" is not standalone, istio or grpc`);
  const { buildProxyResourceJson, encodeGenerated, istioEnvoyFilterFor } = await import('../envoy/proxy-resources');
  const { DEFAULT_REDIRECT_CONFIG } = await import('../net/capture-config');
  const { readInputFile } = await import('../input-file');
  let compiled: CompiledProxyPolicy;
  try {
    compiled = JSON.parse(readInputFile(file)) as CompiledProxyPolicy;
  } catch (err) {
    console.error(`${file}: ${err instanceof Error ? err.message : String(err)}`);
    return 1;
  }
  const kafkaModule = { localPath: path.resolve(optionValue(args, 'kafka-filter') ?? kafkaFilterWasmPath()) };
  if (args.flags.has('envoyfilter')) {
    if (mode !== 'istio') throw new UsageError('--envoyfilter needs --mode istio');
    const labels = optionValue(args, 'workload-labels');
    const xds = optionValue(args, 'xds-address');
    const colon = xds?.lastIndexOf(':') ?? -1;
    if (xds !== undefined && colon <= 0) throw new UsageError(`--xds-address: "${xds}" is not host:port`);
    const filter = istioEnvoyFilterFor(compiled, {
      namespace: optionValue(args, 'namespace'),
      workloadLabels: labels === undefined ? undefined : Object.fromEntries(labels.split(',').map((kv) => kv.split('=') as [string, string])),
      xdsHost: xds === undefined ? undefined : xds.slice(0, colon),
      xdsPort: xds === undefined ? undefined : Number(xds.slice(colon + 1)),
      kafkaModule,
    });
    console.log(JSON.stringify(filter, null, 2));
    return 0;
  }
  const build = buildProxyResourceJson(compiled, {
    mode,
    redirect: DEFAULT_REDIRECT_CONFIG,
    grpcServerHost: optionValue(args, 'grpc-host'),
    grpcServerImplementation: grpcServersOption(optionValue(args, 'grpc-servers')),
    kafkaModule,
  });
  for (const w of build.warnings) console.error(`warning: ${w}`);
  try {
    encodeGenerated(build.resources);
  } catch (err) {
    console.error(err instanceof Error ? err.message : String(err));
    return 1;
  }
  console.log(
    JSON.stringify(
      build.resources.map((r) => ({ '@type': r.typeUrl, ...r.json })),
      null,
      2,
    ),
  );
  return 0;
}

export const command: Command = {
  summary: SUMMARY,
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (sub === 'check') return check(rest);
    if (sub === 'render') return render(rest);
    if (!sub || sub === '--help' || sub === '-h' || sub === 'help') {
      console.log(
        ['usage: meshaccel envoy check FILE...', '       meshaccel envoy render COMPILED.json [--mode standalone|istio|grpc]', '', SUMMARY].join('\n'),
      );
      return sub ? 0 : 2;
    }
    throw new UsageError(`unknown envoy subcommand "${sub}" (check, render)`);
  },
};
