import * as grpc from '@grpc/grpc-js';
import { XdsControlPlane, type XdsControlPlaneOptions } from './control-plane';
import { DEFAULT_MAX_RECEIVE_MESSAGE_BYTES } from './limits';
import { certificateIdentityAuthorizer, serverCredentials, type TlsFiles } from './tls';

export interface XdsServerOptions extends XdsControlPlaneOptions {
  host?: string;
  /** 0 picks a free port. */
  port: number;
  tls?: TlsFiles;
  /** Extra grpc-js server options. */
  grpcOptions?: grpc.ServerOptions;
}

export interface RunningXdsServer {
  readonly server: grpc.Server;
  readonly controlPlane: XdsControlPlane;
  readonly port: number;
  readonly address: string;
  close(): Promise<void>;
}

/**
 * A gRPC server of its own running the xDS services. With `tls.clientCaFile` set, clients must
 * present certificates and, unless `authorize` says otherwise, a certificate must name the
 * node id it asks for.
 */
export async function startXdsServer(options: XdsServerOptions): Promise<RunningXdsServer> {
  const authorize = options.authorize ?? (options.tls?.clientCaFile ? certificateIdentityAuthorizer() : undefined);
  const server = new grpc.Server({
    // Envoy keeps one long-lived ADS stream; keepalives find dead peers so their state is freed.
    'grpc.keepalive_time_ms': 30_000,
    'grpc.keepalive_timeout_ms': 10_000,
    'grpc.http2.min_ping_interval_without_data_ms': 10_000,
    // Requests are names and a node; a larger cap is only more decoding on the loop every
    // stream shares (see limits.ts). Responses are not capped.
    'grpc.max_receive_message_length': DEFAULT_MAX_RECEIVE_MESSAGE_BYTES,
    // Channelz keeps per-connection trace objects; with thousands of proxies connected that is
    // most of the server's per-stream heap. `meshaccel status` covers what we need from it.
    'grpc.enable_channelz': 0,
    ...options.grpcOptions,
  });
  const controlPlane = new XdsControlPlane({ ...options, authorize }).addTo(server);
  const host = options.host ?? '0.0.0.0';
  const bindHost = host.includes(':') ? `[${host}]` : host;
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync(`${bindHost}:${options.port}`, serverCredentials(options.tls), (err, p) => (err ? reject(err) : resolve(p))),
  );
  return {
    server,
    controlPlane,
    port,
    address: `${host}:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        // Give streams a moment to end cleanly, then cut them. grpc-js never calls tryShutdown's
        // callback for sessions forceShutdown destroyed, so a stream still open (an Envoy's ADS
        // stream, typically) would leave close() pending forever.
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, 2000);
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      }),
  };
}
