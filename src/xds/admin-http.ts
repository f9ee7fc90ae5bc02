import * as http from 'http';
import type { NodeStatus } from './node-status';

export interface AdminSources {
  nodes(): NodeStatus[];
  /** Extra state to report (policy source errors, snapshot keys...), as JSON. */
  extra?(): Record<string, unknown>;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

/**
 * A small read-only HTTP endpoint (`GET /status`, `GET /healthz`) that `meshaccel status`
 * reads. Bound to loopback by default: it reveals which proxies exist and what they rejected.
 */
export async function startAdminServer(sources: AdminSources, port: number, host = '127.0.0.1'): Promise<AdminServer> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://admin');
    if (req.method !== 'GET') {
      res.writeHead(405).end();
      return;
    }
    if (url.pathname === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok\n');
      return;
    }
    if (url.pathname === '/status') {
      const body = JSON.stringify({ nodes: sources.nodes(), ...(sources.extra?.() ?? {}) }, null, 2);
      res.writeHead(200, { 'content-type': 'application/json' }).end(body + '\n');
      return;
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('try /status or /healthz\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const address = server.address();
  return {
    port: typeof address === 'object' && address ? address.port : port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
