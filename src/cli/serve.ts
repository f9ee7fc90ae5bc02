import * as path from 'path';
import type { Command } from './command';
import { optionList, optionValue, parseArgs, parsePort, UsageError, type OptionSpec } from './args';
import { packageRoot } from '../paths';
import { kafkaFilterWasmPath } from '../kafka/wasm-path';
import type { EnvoyMode } from '../envoy/proxy-resources';
import type { TlsFiles } from '../xds/tls';
import type { BindingGrant } from '../server/binding-grants';
import { consoleLogger as makeConsoleLogger, parseLogLevel } from '../log';

const OPTIONS: Record<string, OptionSpec> = {
  host: { value: true, description: 'address to bind the xDS gRPC server (default 127.0.0.1; any other address needs TLS or --insecure-plaintext)' },
  'insecure-plaintext': {
    description: 'allow plaintext xDS on a non-loopback address: anyone who reaches the port can read every policy and claim any unconnected node id',
  },
  'log-level': { value: true, description: 'debug | info (default) | warn | error' },
  port: { value: true, description: 'xDS port (default 18000)' },
  'admin-port': { value: true, description: 'loopback HTTP port for `meshaccel status` (default 18001; 0 = off)' },
  policies: { value: true, repeated: true, description: 'directory of L7Policy YAML (default examples/policies)' },
  workloads: { value: true, repeated: true, description: 'directory of Workload YAML (default examples/workloads)' },
  mode: { value: true, description: 'standalone (listeners+ECDS RBAC) | istio (ECDS only) | grpc (proxyless, inline RBAC)' },
  'grpc-server-host': { value: true, description: 'grpc mode: host part of the XdsServer listening address (default 0.0.0.0)' },
  'served-ports': {
    value: true,
    repeated: true,
    description: 'grpc/istio: ports that always get a resource, even with no policy (the XdsServer ports / EnvoyFilter ports)',
  },
  'kafka-filter': {
    value: true,
    description:
      'standalone/istio: path on the Envoy host (istio: in the sidecar) of the Kafka filter module (.wasm) Kafka ports load (default: the built wasm/kafka-filter/build/kafka-filter.wasm of this install)',
  },
  'trust-domain': { value: true, description: 'SPIFFE trust domain for mTLS principals (default cluster.local)' },
  'tls-cert': { value: true, description: 'serve xDS over TLS with this certificate chain (PEM)' },
  'tls-key': { value: true, description: 'private key for --tls-cert' },
  'state-dir': {
    value: true,
    description: `where the last good configuration is persisted and read back when the files fail at start-up (default ${'$'}XDG_STATE_HOME/meshaccel, /var/lib/meshaccel for root, else ~/.local/state/meshaccel)`,
  },
  'client-ca': {
    value: true,
    description:
      "require client certificates from this CA (mTLS); a node id must match its certificate, and its metadata may bind only workloads of the SPIFFE ID's namespace and service account (or --binding-grants)",
  },
  'binding-grants': {
    value: true,
    description: 'mTLS: YAML file of what certificate identities may bind through node metadata (namespaces, serviceAccounts, workloads, nodeMetadata)',
  },
  help: { description: 'show this help' },
};

const MODES: readonly EnvoyMode[] = ['standalone', 'istio', 'grpc'];

const LOOPBACK_HOSTS = new Set(['127.0.0.1', 'localhost', '::1']);

export const command: Command = {
  summary: 'run the xDS control server on the file policy store (watches the directories)',
  async run(argv) {
    const args = parseArgs(argv, OPTIONS, {
      command: 'serve [options]',
      summary: 'Serves compiled L7 policy to Envoy (ADS, SotW and Delta; LDS/RDS/CDS/EDS/ECDS/SDS).',
    });
    const mode = (optionValue(args, 'mode') ?? 'standalone') as EnvoyMode;
    if (!MODES.includes(mode)) throw new UsageError(`--mode must be one of ${MODES.join(', ')}`);
    const port = parsePort(optionValue(args, 'port') ?? '18000', '--port', true);
    const adminText = optionValue(args, 'admin-port') ?? '18001';
    const adminPort = adminText === '0' ? undefined : parsePort(adminText, '--admin-port');
    const root = packageRoot();
    const policies = optionList(args, 'policies');
    const workloads = optionList(args, 'workloads');
    const directories = [
      ...(policies.length ? policies : [path.join(root, 'examples/policies')]),
      ...(workloads.length ? workloads : [path.join(root, 'examples/workloads')]),
    ].map((d) => path.resolve(d));

    const levelText = optionValue(args, 'log-level') ?? 'info';
    const level = parseLogLevel(levelText);
    if (!level) throw new UsageError(`--log-level must be one of debug, info, warn, error (got "${levelText}")`);
    const consoleLogger = makeConsoleLogger(level);

    let tls: TlsFiles | undefined;
    const cert = optionValue(args, 'tls-cert');
    const key = optionValue(args, 'tls-key');
    const clientCa = optionValue(args, 'client-ca');
    if (cert || key || clientCa) {
      if (!cert || !key) throw new UsageError('--tls-cert and --tls-key go together (and --client-ca needs both)');
      tls = { certFile: cert, keyFile: key, clientCaFile: clientCa };
    }

    const grantsFile = optionValue(args, 'binding-grants');
    if (grantsFile !== undefined && !clientCa) throw new UsageError('--binding-grants needs --client-ca: only a client certificate can be granted bindings');
    let bindingGrants: BindingGrant[] | undefined;
    if (grantsFile !== undefined) {
      const { loadBindingGrants } = await import('../server/binding-grants');
      bindingGrants = loadBindingGrants(path.resolve(grantsFile));
    }

    // Plaintext xDS authenticates nobody: whoever reaches the port reads every proxy's policy
    // and may claim any node id not connected at the moment. Loopback is the default; anything
    // wider is a choice made on the command line.
    const host = optionValue(args, 'host') ?? '127.0.0.1';
    if (!tls && !LOOPBACK_HOSTS.has(host) && !args.flags.has('insecure-plaintext')) {
      throw new UsageError(
        `--host ${host} without TLS would serve xDS in plaintext beyond this machine; add --tls-cert/--tls-key (and --client-ca for mTLS), or --insecure-plaintext to accept that`,
      );
    }

    const kafkaFilterOption = optionValue(args, 'kafka-filter');
    if (kafkaFilterOption === '') throw new UsageError('--kafka-filter needs a path');
    if (kafkaFilterOption !== undefined && mode === 'grpc') throw new UsageError('--kafka-filter does not apply to grpc mode (it refuses Kafka rules)');
    // Envoy resolves a relative filename against its own working directory: serve an absolute one.
    const kafkaFilter = path.resolve(kafkaFilterOption ?? kafkaFilterWasmPath());

    // Loaded here, not at the top: `meshaccel serve --help` should not pay for Envoy's protos.
    const { startControlServer } = await import('../server/control-server');
    const { defaultStateDir } = await import('../sources/last-good-store');
    const server = await startControlServer({
      directories,
      mode,
      host,
      port,
      adminPort,
      tls,
      grpcServerHost: optionValue(args, 'grpc-server-host'),
      servedPorts: optionList(args, 'served-ports').map((p) => parsePort(p, '--served-ports')),
      kafkaModule: { localPath: kafkaFilter },
      trustDomain: optionValue(args, 'trust-domain'),
      bindingGrants,
      stateDir: path.resolve(optionValue(args, 'state-dir') || defaultStateDir()),
      log: consoleLogger,
    });
    const state = server.source.current();
    consoleLogger.info(`policy version ${state.version}: ${state.proxies.size} proxies from ${state.files.length} files in ${directories.join(', ')}`);
    consoleLogger.info(`last good configuration kept in ${server.lastGood?.file}`);
    consoleLogger.info(
      `xDS (ADS, SotW + Delta, ${tls ? (clientCa ? 'mTLS' : 'TLS') : 'plaintext'}) listening on ${server.xds.address}, mode ${mode}, ready ${Math.round(process.uptime() * 1000)} ms after start`,
    );
    consoleLogger.info(`point Envoy's ADS cluster at ${server.xds.address} (example bootstrap: envoy/)`);
    if (mode !== 'grpc') consoleLogger.info(`Kafka ports load the Kafka filter from ${kafkaFilter} (on the Envoy host; --kafka-filter to change)`);
    if (server.admin) consoleLogger.info(`status: meshaccel status --admin http://127.0.0.1:${server.admin.port}`);

    await new Promise<void>((resolve) => {
      const stop = (): void => {
        process.off('SIGINT', stop);
        process.off('SIGTERM', stop);
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    consoleLogger.info('shutting down');
    await server.close();
    return 0;
  },
};
