import * as grpc from '@grpc/grpc-js';
import * as http2 from 'http2';
import * as net from 'net';

/**
 * The raw-bytes unary service the proxyless gRPC tests call through gRPC's XdsServer: method
 * paths are what the RBAC rules match, so no message schema is needed.
 */
const identity = (b: Buffer): Buffer => b;
export const SERVICE = 'meshaccel.test.Shop';
export const method = (name: string): string => `/${SERVICE}/${name}`;

export function unary(name: string): grpc.MethodDefinition<Buffer, Buffer> {
  return unaryAt(method(name));
}

/** A raw unary method at any path (gRPC's RBAC filter judges `:path`, so cases pick their own). */
export function unaryAt(path: string): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path,
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  };
}

/** A port free on `host` right now. */
export function freePort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, host, () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });
}

/** One unary call; resolves to its status code (OK, or the error's). */
export function call(client: grpc.Client, name: string): Promise<grpc.status> {
  return new Promise((resolve) => {
    client.makeUnaryRequest(method(name), identity, identity, Buffer.from('x'), { deadline: Date.now() + 5000 }, (err) =>
      resolve(err ? (err.code as grpc.status) : grpc.status.OK),
    );
  });
}

/** Polls `check` every 100 ms until it holds, failing after `timeoutMs`. */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 20000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not reached in ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export interface RawCall {
  /** The local address the client's socket binds: the peer address the server's RBAC judges. */
  localAddress: string;
  host: string;
  port: number;
  path: string;
  /** `:authority` (default host:port). */
  authority?: string;
  timeoutMs?: number;
}

/**
 * One unary gRPC call over a fresh HTTP/2 connection from `localAddress` (grpc-js clients cannot
 * bind a local address). The wire is gRPC's: POST, application/grpc, a length-prefixed message,
 * and the status from the trailers (or from the headers of a trailers-only answer).
 */
export function callFrom(c: RawCall): Promise<{ code: number; details: string }> {
  return new Promise((resolve, reject) => {
    const authority = c.authority ?? (c.host.includes(':') ? `[${c.host}]:${c.port}` : `${c.host}:${c.port}`);
    const session = http2.connect(`http://${authority}`, {
      createConnection: () => net.connect({ host: c.host, port: c.port, localAddress: c.localAddress }),
    });
    const timer = setTimeout(() => {
      session.destroy();
      reject(new Error(`call ${c.path} from ${c.localAddress} to ${authority}: no answer in ${c.timeoutMs ?? 5000} ms`));
    }, c.timeoutMs ?? 5000);
    let settled = false;
    const done = (code: number, details: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      session.close();
      resolve({ code, details });
    };
    session.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const stream = session.request({ ':method': 'POST', ':path': c.path, ':authority': authority, 'content-type': 'application/grpc', te: 'trailers' });
    const fromHeaders = (h: http2.IncomingHttpHeaders): void => {
      if (h['grpc-status'] !== undefined) done(Number(h['grpc-status']), decodeURIComponent(String(h['grpc-message'] ?? '')));
    };
    stream.on('response', fromHeaders);
    stream.on('trailers', fromHeaders);
    stream.on('data', () => undefined);
    stream.on('end', () => done(grpc.status.UNKNOWN, 'stream ended without grpc-status'));
    stream.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    const body = Buffer.from('x');
    const frame = Buffer.alloc(5 + body.length);
    frame.writeUInt32BE(body.length, 1);
    body.copy(frame, 5);
    stream.end(frame);
  });
}
