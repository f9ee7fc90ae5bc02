import { FilePolicySource } from '../sources/file-source';
import { PolicyStore } from '../store/policy-store';
import { formatDiagnostic, type Diagnostic } from '../policy/diagnostics';
import { describePersistedUse, LastGoodStore } from '../sources/last-good-store';
import { DEFAULT_REDIRECT_CONFIG, type RedirectConfig } from '../net/capture-config';
import type { EnvoyMode } from '../envoy/proxy-resources';
import type { GrpcImplementation } from '../envoy/builders/grpc-js-peers';
import { startXdsServer, type RunningXdsServer } from '../xds/server';
import type { TlsFiles } from '../xds/tls';
import { startAdminServer, type AdminServer } from '../xds/admin-http';
import type { Logger } from '../log';
import type { WasmModuleSource } from '../kafka/delivery';
import { NodeSnapshotBuilder } from './node-snapshot-builder';
import { bindingAuthorizer, type BindingGrant } from './binding-grants';

export interface ControlServerOptions {
  /** Directories of L7Policy and Workload YAML, watched. */
  directories: string[];
  mode: EnvoyMode;
  host: string;
  port: number;
  /** Admin (status) HTTP port on loopback; undefined for none. */
  adminPort?: number;
  tls?: TlsFiles;
  redirect?: RedirectConfig;
  grpcServerHost?: string;
  /**
   * grpc mode: what serves every node's Listeners, for an embedder that knows (`other`: none is
   * an XdsServer of @grpc/grpc-js-xds). Default: each node's user agent says.
   */
  grpcServerImplementation?: GrpcImplementation;
  /** Ports that always get a resource (gRPC server listeners, Istio EnvoyFilter ports). */
  servedPorts?: readonly number[];
  /** standalone: where Envoy loads the Kafka filter module from (default: the built .wasm). */
  kafkaModule?: WasmModuleSource;
  trustDomain?: string;
  /**
   * With mTLS: what certificate identities may bind through node metadata beyond their own
   * SPIFFE namespace and service account (see binding-grants.ts).
   */
  bindingGrants?: readonly BindingGrant[];
  log: Logger;
  /** How long a disconnected node's snapshot is kept for a reconnect (default 10 s). */
  nodeGraceMs?: number;
  /**
   * Where the last good set of policy files is persisted (after every commit) and read back
   * when the files fail at start-up; undefined: not persisted (`serve` always gives one).
   */
  stateDir?: string;
}

export interface RunningControlServer {
  xds: RunningXdsServer;
  admin?: AdminServer;
  store: PolicyStore;
  source: FilePolicySource;
  snapshots: NodeSnapshotBuilder;
  lastGood?: LastGoodStore;
  /** What is being served: the files, a persisted set (and why), or nothing yet (and why). */
  serving(): string;
  close(): Promise<void>;
}

/** The files named by diagnostics, in order, once each. */
function failingFiles(diagnostics: readonly Diagnostic[]): string[] {
  return [...new Set(diagnostics.map((d) => d.file))];
}

/**
 * The files failed at start-up: serves the persisted last good set in their place if there is
 * one that still passes, else nothing at all (never an empty configuration). Logs which and why,
 * and returns the same sentence for /status.
 */
async function fallBackOnLastGood(
  source: FilePolicySource,
  lastGood: LastGoodStore | undefined,
  failures: readonly Diagnostic[],
  log: Logger,
): Promise<string> {
  const files = failingFiles(failures);
  const failed = `${files.length} file${files.length === 1 ? '' : 's'} failed (${files.join(', ')})`;
  const persisted = lastGood?.load() ?? { ok: false as const, reason: 'no state directory is configured, so nothing was persisted' };
  let refused = persisted.ok ? '' : `no persisted configuration to serve: ${persisted.reason}`;
  if (persisted.ok) {
    const r = await source.restore(new Map(persisted.record.files.map((f) => [f.file, f.text])));
    if (r.applied) {
      const restored = `${describePersistedUse(persisted.record, failures)}; ${failed}`;
      log.warn(restored);
      return restored;
    }
    refused = `the persisted configuration was refused: ${r.diagnostics.slice(0, 3).map(formatDiagnostic).join('; ')}`;
  }
  log.warn(
    `initial policy load failed: ${failed}; ${refused}; serving no configuration (proxies are sent nothing and keep what they have) until the files pass`,
  );
  return `no configuration: the initial load failed (${failed}); ${refused}; proxies are sent nothing (they keep what they have) until the files pass`;
}

/**
 * `meshaccel serve`: source → store → snapshot builder → cache → streams. The file source feeds
 * the policy store, which validates, compiles and says which proxies changed; the snapshot
 * builder turns that into Envoy resources (checked against Envoy's schema) for the connected
 * nodes; the xDS server streams them. A bad file or a resource failing the check is reported
 * and the last good configuration keeps serving.
 */
export async function startControlServer(o: ControlServerOptions): Promise<RunningControlServer> {
  const store = new PolicyStore({ trustDomain: o.trustDomain, mode: o.mode, coveredPorts: o.mode === 'istio' ? o.servedPorts : undefined });
  const source = new FilePolicySource({ directories: o.directories, store, log: o.log });
  const build = {
    mode: o.mode,
    redirect: o.redirect ?? DEFAULT_REDIRECT_CONFIG,
    grpcServerHost: o.grpcServerHost,
    grpcServerImplementation: o.grpcServerImplementation,
    servedPorts: o.servedPorts,
    kafkaModule: o.kafkaModule,
  };
  const snapshots = NodeSnapshotBuilder.forStore(store, build, o.log, { graceMs: o.nodeGraceMs });

  const lastGood = o.stateDir === undefined ? undefined : new LastGoodStore({ stateDir: o.stateDir, directories: o.directories });
  let serving = 'the policy files';

  let starting = true;
  source.on('error', (diagnostics) => {
    const what = store.hasCommitted() ? `still serving version ${store.current().version}` : 'no configuration is served yet';
    o.log.warn(`policy files rejected${starting ? ' at start-up' : ''}, ${what}:\n${diagnostics.map(formatDiagnostic).join('\n')}`);
  });
  store.on('update', (u) => {
    o.log.info(`policy version ${u.state.version}: ${u.changed.length} proxies changed, ${u.removed.length} removed`);
  });
  store.on('committed', () => {
    serving = 'the policy files';
    const problem = lastGood?.save(store.texts(source.name));
    if (problem) o.log.warn(`last good configuration ${problem}`);
  });
  const kept = lastGood?.read();
  if (kept && 'record' in kept) source.assumeAccepted(new Map(kept.record.files.map((f) => [f.file, f.text])));
  const initial = await source.start();
  starting = false;
  if (!initial.applied) serving = await fallBackOnLastGood(source, lastGood, initial.diagnostics, o.log);

  // Under mTLS the certificate decides the node id and which workloads its metadata may bind.
  const authorize = o.tls?.clientCaFile
    ? bindingAuthorizer(store, { trustDomain: o.trustDomain ?? 'cluster.local', grants: o.bindingGrants ?? [] })
    : undefined;
  const xds = await startXdsServer({ source: snapshots, host: o.host, port: o.port, tls: o.tls, authorize, controlPlaneId: 'meshaccel', log: o.log });
  let admin: AdminServer | undefined;
  if (o.adminPort !== undefined) {
    admin = await startAdminServer(
      {
        nodes: () => xds.controlPlane.nodes(),
        extra: () => ({
          policyVersion: source.current().version,
          policyServing: serving,
          policyFiles: source.current().files.length,
          policyErrors: source.errors().map(formatDiagnostic),
          buildFailures: snapshots.buildFailures(),
        }),
      },
      o.adminPort,
    );
  }
  return {
    xds,
    admin,
    store,
    source,
    snapshots,
    lastGood,
    serving: () => serving,
    close: async () => {
      source.stop();
      await admin?.close();
      await xds.close();
    },
  };
}
