import { FilePolicySource, nodeAffected } from '../sources/file-source';
import { formatDiagnostic } from '../policy/diagnostics';
import { DEFAULT_REDIRECT_CONFIG, type RedirectConfig } from '../net/capture-config';
import type { EnvoyMode } from '../envoy/proxy-resources';
import { startXdsServer, type RunningXdsServer } from '../xds/server';
import type { TlsFiles } from '../xds/tls';
import { startAdminServer, type AdminServer } from '../xds/admin-http';
import type { Logger } from '../xds/stream-session';
import { PolicySnapshotSource } from './policy-snapshot-source';

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
}

export interface RunningControlServer {
  xds: RunningXdsServer;
  admin?: AdminServer;
  source: FilePolicySource;
  snapshots: PolicySnapshotSource;
  close(): Promise<void>;
}

/**
 * `meshaccel serve`: the file policy source, compiled per connecting node into Envoy resources
 * (checked against Envoy's schema), served over xDS. A bad file or a resource failing the
 * check is reported and the last good configuration keeps serving.
 */
export async function startControlServer(o: ControlServerOptions): Promise<RunningControlServer> {
  const source = new FilePolicySource({ directories: o.directories, trustDomain: o.trustDomain });
  const snapshots = new PolicySnapshotSource(source, { mode: o.mode, redirect: o.redirect ?? DEFAULT_REDIRECT_CONFIG, grpcServerHost: o.grpcServerHost, servedPorts: o.servedPorts }, o.log);

  source.on('error', (diagnostics) => {
    o.log.warn(`policy files rejected, still serving version ${source.current().version}:\n${diagnostics.map(formatDiagnostic).join('\n')}`);
  });
  source.on('update', (u) => {
    const keys = [...u.changed, ...u.removed];
    o.log.info(`policy version ${u.state.version}: ${u.changed.length} proxies changed, ${u.removed.length} removed`);
    snapshots.policiesChanged((node) => nodeAffected(keys, node.id, node.metadata));
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
    source,
    snapshots,
    close: async () => {
      source.stop();
      await admin?.close();
      await xds.close();
    },
  };
}
