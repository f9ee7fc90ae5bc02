import * as grpc from '@grpc/grpc-js';
import * as net from 'net';

/**
 * The raw-bytes unary service the proxyless gRPC tests call through gRPC's XdsServer: method
 * paths are what the RBAC rules match, so no message schema is needed.
 */
const identity = (b: Buffer): Buffer => b;
export const SERVICE = 'meshaccel.test.Shop';
export const method = (name: string): string => `/${SERVICE}/${name}`;

export function unary(name: string): grpc.MethodDefinition<Buffer, Buffer> {
  return {
    path: method(name),
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
