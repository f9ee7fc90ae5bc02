/**
 * Typed API over the meshaccel_sockets addon: what a Node process needs to act as a
 * transparent proxy behind the redirect rules.
 *
 *  - listenTransparent(): a net.Server on an IP_TRANSPARENT listener. TPROXY (or a tc program
 *    calling bpf_sk_assign) hands it connections addressed anywhere; each accepted socket's
 *    localAddress/localPort (getsockname) is the flow's original destination.
 *  - connectMarked(): an outgoing net.Socket whose packets carry SO_MARK, so the redirect rules
 *    recognise the proxy's own upstream traffic and never capture it again. Optionally
 *    IP_TRANSPARENT with a foreign source address (to preserve the client's address).
 */
import * as net from 'net';
import * as path from 'path';
import { packageRoot } from '../../src/paths';

interface ListenNativeOptions {
  host: string;
  port: number;
  backlog?: number;
  mark?: number;
  transparent?: boolean;
  v6only?: boolean;
}

interface ConnectNativeOptions {
  host: string;
  port: number;
  mark?: number;
  transparent?: boolean;
  localHost?: string;
  localPort?: number;
  timeoutMs?: number;
}

interface SocketsAddon {
  listenTransparent(options: ListenNativeOptions): number;
  connectMarked(options: ConnectNativeOptions, callback: (err: Error | null, fd?: number) => void): void;
  closeFd(fd: number): void;
  socketMark(fd: number): number;
  originalDst(fd: number): { address: string; port: number };
}

let addon: SocketsAddon | undefined;

export function socketsAddonPath(): string {
  return path.join(packageRoot(), 'test/tools/native/build/Release/meshaccel_sockets.node');
}

function load(): SocketsAddon {
  if (addon) return addon;
  const file = socketsAddonPath();
  try {
    addon = require(file) as SocketsAddon;
  } catch (err) {
    throw new Error(`cannot load the sockets addon ${file} (run \`make addon\`): ${(err as Error).message}`);
  }
  return addon;
}

export interface TransparentListenOptions {
  /** Numeric address to bind; default 0.0.0.0 (or :: when family is 6). */
  host?: string;
  port: number;
  family?: 4 | 6;
  backlog?: number;
  /** SO_MARK on the listener; accepted sockets inherit it, so their replies are recognisable too. */
  mark?: number;
  /** IPv6 listener also accepting IPv4 (v4-mapped) unless set. */
  v6only?: boolean;
  /** Passed to net.createServer: keep writing after the client half-closes (a relay needs it). */
  allowHalfOpen?: boolean;
}

/** Creates the IP_TRANSPARENT listening socket and returns its fd (for `server.listen({ fd })`). */
export function transparentListenerFd(options: TransparentListenOptions): number {
  const host = options.host ?? (options.family === 6 ? '::' : '0.0.0.0');
  return load().listenTransparent({
    host,
    port: options.port,
    backlog: options.backlog ?? 511,
    mark: options.mark ?? 0,
    transparent: true,
    v6only: options.v6only ?? false,
  });
}

/**
 * A net.Server listening on an IP_TRANSPARENT socket. Resolves once listening; the server's
 * 'connection' sockets report the original destination as localAddress/localPort.
 */
export function listenTransparent(options: TransparentListenOptions, onConnection?: (socket: net.Socket) => void): Promise<net.Server> {
  const fd = transparentListenerFd(options);
  const server = net.createServer({ allowHalfOpen: options.allowHalfOpen ?? false }, onConnection);
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => {
      load().closeFd(fd);
      reject(new Error(`adopting transparent listener fd ${fd} for port ${options.port}: ${err.message}`));
    };
    server.once('error', onError);
    server.listen({ fd, backlog: options.backlog ?? 511 }, () => {
      server.removeListener('error', onError);
      resolve(server);
    });
  });
}

export interface MarkedConnectOptions {
  host: string;
  port: number;
  /** SO_MARK for every packet of the connection (the redirect config's proxyMark). */
  mark?: number;
  /** Bind to a foreign source address (needs IP_TRANSPARENT, set automatically). */
  localHost?: string;
  localPort?: number;
  transparent?: boolean;
  timeoutMs?: number;
  /** Passed to net.Socket. */
  allowHalfOpen?: boolean;
}

/** Connects with SO_MARK (non-blocking, completion checked with SO_ERROR); resolves the connected fd. */
export function connectMarkedFd(options: MarkedConnectOptions): Promise<number> {
  const transparent = options.transparent ?? options.localHost !== undefined;
  return new Promise((resolve, reject) => {
    try {
      load().connectMarked(
        {
          host: options.host,
          port: options.port,
          mark: options.mark ?? 0,
          transparent,
          localHost: options.localHost ?? '',
          localPort: options.localPort ?? 0,
          timeoutMs: options.timeoutMs ?? 10000,
        },
        (err, fd) => (err || fd === undefined ? reject(err ?? new Error('connectMarked: no fd')) : resolve(fd)),
      );
    } catch (err) {
      reject(err as Error);
    }
  });
}

/** A connected net.Socket whose packets carry SO_MARK. */
export async function connectMarked(options: MarkedConnectOptions): Promise<net.Socket> {
  const fd = await connectMarkedFd(options);
  try {
    return new net.Socket({ fd, readable: true, writable: true, allowHalfOpen: options.allowHalfOpen ?? false });
  } catch (err) {
    load().closeFd(fd);
    throw err;
  }
}

/** SO_MARK of an fd-backed socket (a diagnostic; Node exposes no getsockopt). */
export function socketMark(fd: number): number {
  return load().socketMark(fd);
}

/**
 * The pre-NAT destination (SO_ORIGINAL_DST) of a connection captured with iptables REDIRECT.
 * Not needed behind TPROXY, where socket.localAddress/localPort already are the original.
 */
export function originalDestination(socket: net.Socket): { address: string; port: number } {
  const fd = handleFd(socket);
  if (fd === undefined) throw new Error('originalDestination: socket has no fd');
  return load().originalDst(fd);
}

/** The fd behind a net.Socket / net.Server handle, when it has one. */
export function handleFd(handle: net.Socket | net.Server): number | undefined {
  const inner = (handle as unknown as { _handle?: { fd?: number } })._handle;
  return inner && typeof inner.fd === 'number' && inner.fd >= 0 ? inner.fd : undefined;
}
