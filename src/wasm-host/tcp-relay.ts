import * as net from 'net';
import type { NetworkStream, ProxyWasmVm } from './proxy-wasm-host';

export interface RelayOptions {
  vm: ProxyWasmVm;
  /** The root context new connections get (the newest configuration); undefined relays without the filter. */
  root: () => number | undefined;
  listenHost: string;
  listenPort: number;
  upstreamHost: string;
  upstreamPort: number;
  /** Properties beyond the addresses, e.g. `connection.uri_san_peer_certificate` for every connection. */
  extraProperties?: Readonly<Record<string, string>>;
}

export interface Relay {
  address: net.AddressInfo;
  connections(): number;
  /** Connections accepted since the start: a client that reconnects shows up here. */
  accepted(): number;
  close(): Promise<void>;
}

function hostPort(address: string | undefined, port: number | undefined): string | undefined {
  if (address === undefined || port === undefined) return undefined;
  const v4 = address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
  return v4.includes(':') ? `[${v4}]:${port}` : `${v4}:${port}`;
}

/**
 * A TCP relay with a proxy-wasm network filter in the path, as Envoy's
 * `envoy.filters.network.wasm` before `tcp_proxy`. A test host, not a data plane.
 */
export function startRelay(opts: RelayOptions): Promise<Relay> {
  const sockets = new Set<net.Socket>();
  let accepted = 0;
  const server = net.createServer((client) => {
    accepted++;
    sockets.add(client);
    const upstream = net.connect({ host: opts.upstreamHost, port: opts.upstreamPort });
    sockets.add(upstream);
    client.setNoDelay(true);
    upstream.setNoDelay(true);
    let done = false;
    let stream: NetworkStream | undefined;
    const end = (): void => {
      if (done) return;
      done = true;
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
      // Deferred: the filter may have asked for the close from inside one of its callbacks.
      setImmediate(() => stream?.finish());
    };
    const root = opts.root();
    if (root !== undefined) {
      stream = opts.vm.newConnection(
        root,
        {
          'source.address': hostPort(client.remoteAddress, client.remotePort),
          'destination.address': hostPort(client.localAddress, client.localPort),
          ...opts.extraProperties,
        },
        () => setImmediate(end),
      );
      if (stream.closed) return end();
    }
    const pipe = (from: net.Socket, to: net.Socket, filter: (b: Buffer) => Buffer): void => {
      from.on('data', (chunk: Buffer) => {
        if (done) return;
        const out = filter(chunk);
        if (done || stream?.closed) return;
        if (out.length > 0 && !to.write(out)) {
          from.pause();
          to.once('drain', () => from.resume());
        }
      });
      from.on('end', () => to.end());
      from.on('error', end);
      from.on('close', end);
    };
    pipe(client, upstream, (b) => (stream ? stream.downstream(b) : b));
    pipe(upstream, client, (b) => (stream ? stream.upstream(b) : b));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.listenPort, opts.listenHost, () => {
      server.off('error', reject);
      resolve({
        address: server.address() as net.AddressInfo,
        connections: () => sockets.size / 2,
        accepted: () => accepted,
        close: () =>
          new Promise<void>((done) => {
            for (const s of sockets) s.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}
