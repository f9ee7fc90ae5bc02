import { FilePolicySource } from '../sources/file-source';
import { PolicyStore } from '../store/policy-store';
import { formatDiagnostic } from '../policy/diagnostics';
import { DEFAULT_REDIRECT_CONFIG, type RedirectConfig } from '../net/capture-config';
import type { EnvoyMode } from '../envoy/proxy-resources';
import { startXdsServer, type RunningXdsServer } from '../xds/server';
import type { TlsFiles } from '../xds/tls';
import { startAdminServer, type AdminServer } from '../xds/admin-http';
import type { Logger } from '../log';
import { NodeSnapshotBuilder } from './node-snapshot-builder';

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
  /** Ports that always get a resource (gRPC server listeners, Istio EnvoyFilter ports). */
  servedPorts?: readonly number[];
  trustDomain?: string;
  log: Logger;
  /** How long a disconnected node's snapshot is kept for a reconnect (default 10 s). */
  nodeGraceMs?: number;
}

export interface RunningControlServer {
  xds: RunningXdsServer;
  admin?: AdminServer;
  store: PolicyStore;
  source: FilePolicySource;
  snapshots: NodeSnapshotBuilder;
  close(): Promise<void>;
}

/**
 * `meshaccel serve`: source → store → snapshot builder → cache → streams. The file source feeds
 * the policy store, which validates, compiles and says which proxies changed; the snapshot
 * builder turns that into Envoy resources (checked against Envoy's schema) for the connected
 * nodes; the xDS server streams them. A bad file or a resource failing the check is reported
 * and the last good configuration keeps serving.
 */
export async function startControlServer(o: ControlServerOptions): Promise<RunningControlServer> {
  const store = new PolicyStore({ trustDomain: o.trustDomain });
  const source = new FilePolicySource({ directories: o.directories, store, log: o.log });
  const build = { mode: o.mode, redirect: o.redirect ?? DEFAULT_REDIRECT_CONFIG, grpcServerHost: o.grpcServerHost, servedPorts: o.servedPorts };
  const snapshots = NodeSnapshotBuilder.forStore(store, build, o.log, { graceMs: o.nodeGraceMs });

  source.on('error', (diagnostics) => {
    o.log.warn(`policy files rejected, still serving version ${store.current().version}:\n${diagnostics.map(formatDiagnostic).join('\n')}`);
  });
  store.on('update', (u) => {
    o.log.info(`policy version ${u.state.version}: ${u.changed.length} proxies changed, ${u.removed.length} removed`);
  });
  const initial = source.start();
  if (!initial.applied) {
    o.log.warn(`initial policy load failed; serving no policy until the files are fixed`);
  }

  const xds = await startXdsServer({ source: snapshots, host: o.host, port: o.port, tls: o.tls, controlPlaneId: 'meshaccel', log: o.log });
  let admin: AdminServer | undefined;
  if (o.adminPort !== undefined) {
    admin = await startAdminServer(
      {
        nodes: () => xds.controlPlane.nodes(),
        extra: () => ({
          policyVersion: source.current().version,
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
    close: async () => {
      source.stop();
      await admin?.close();
      await xds.close();
    },
  };
}
