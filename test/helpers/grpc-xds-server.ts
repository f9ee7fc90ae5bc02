import * as grpc from '@grpc/grpc-js';
import { GRPC_SERVER_LISTENER_TEMPLATE } from '../../src/envoy/builders/grpc-server';
import { unaryAt } from './grpc-shop';

/**
 * A real gRPC `XdsServer` (@grpc/grpc-js-xds) fed by one of our xDS servers: the proxyless
 * server the grpc-mode suites serve Listeners to. Its RBAC filter is enforced only when
 * GRPC_XDS_EXPERIMENTAL_RBAC=true was set before the package was first required (test/setup.ts
 * sets it for mocha; a child process sets it in its environment).
 */

type GrpcXds = typeof import('@grpc/grpc-js-xds');
let loaded: GrpcXds | undefined;

/** The package, required on first use and registered (without `register()` no HTTP filter is known). */
export function grpcXds(): GrpcXds {
  if (!loaded) {
    if (process.env.GRPC_XDS_EXPERIMENTAL_RBAC !== 'true') throw new Error('set GRPC_XDS_EXPERIMENTAL_RBAC=true before loading @grpc/grpc-js-xds');
    loaded = require('@grpc/grpc-js-xds') as GrpcXds;
    loaded.register();
  }
  return loaded;
}

export interface ShopXdsServerOptions {
  /** Our xDS server, on 127.0.0.1. */
  xdsPort: number;
  nodeId: string;
  /** Method paths served; each answers OK once RBAC let the call through. */
  paths: readonly string[];
  /** `host:port` (IPv6 hosts in brackets) to bind; one Listener each. */
  binds: readonly string[];
  /** How long each bind may wait for its Listener (XdsServer binds only once it has one). */
  timeoutMs?: number;
}

/** Starts an XdsServer for `nodeId` and resolves once every address serves (its Listener was accepted). */
export async function startShopXdsServer(o: ShopXdsServerOptions): Promise<grpc.Server> {
  const bootstrap = {
    xds_servers: [{ server_uri: `127.0.0.1:${o.xdsPort}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
    node: { id: o.nodeId, locality: {} },
    server_listener_resource_name_template: GRPC_SERVER_LISTENER_TEMPLATE,
  };
  // The per-server bootstrap lets one process hold the XdsServers of several node ids.
  const server = new (grpcXds().XdsServer)({
    'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
    drainGraceTimeMs: 100,
  } as grpc.ServerOptions);
  const ok = (_call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>): void => cb(null, Buffer.from('ok'));
  const names = o.paths.map((_, i) => `m${i}`);
  server.addService(Object.fromEntries(names.map((n, i) => [n, unaryAt(o.paths[i])])), Object.fromEntries(names.map((n) => [n, ok])));
  try {
    await Promise.all(
      o.binds.map(
        (address) =>
          new Promise<void>((resolve, reject) => {
            const timeoutMs = o.timeoutMs ?? 20000;
            const timer = setTimeout(
              () => reject(new Error(`XdsServer ${o.nodeId} never started serving ${address} in ${timeoutMs} ms (Listener not accepted)`)),
              timeoutMs,
            );
            server.bindAsync(address, grpc.ServerCredentials.createInsecure(), (err) => {
              clearTimeout(timer);
              if (err) reject(err);
              else resolve();
            });
          }),
      ),
    );
  } catch (err) {
    server.forceShutdown();
    throw err;
  }
  return server;
}
