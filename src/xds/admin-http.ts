import * as http from 'http';
import type { NodeStatus } from './node-status';
import { clientText } from '../log';

export interface AdminSources {
  nodes(): NodeStatus[];
  /** Extra state to report (policy source errors, snapshot keys...), as JSON. */
  extra?(): Record<string, unknown>;
}

export interface AdminServer {
  readonly port: number;
  close(): Promise<void>;
}

/** Host names a browser on this machine uses for loopback; DNS rebinding arrives under any other name. */
const LOOPBACK_NAMES = ['localhost', '127.0.0.1', '::1'];

/** The host name of a Host header, without port or IPv6 brackets; undefined if malformed. */
function hostName(header: string): string | undefined {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\[\]]+))(?::\d{1,5})?$/.exec(header.trim());
  return m ? (m[1] ?? m[2]).toLowerCase() : undefined;
}

/** What one `GET /status` may weigh; past it, the remaining nodes are counted, not listed. */
const MAX_STATUS_BODY = 32 * 1024 * 1024;

/**
 * The status document, built node by node so that no number of connected proxies can make one
 * string too large to build (the registry bounds what it keeps of departed nodes; connected
 * ones are bounded only by the streams the server accepts).
 */
function statusBody(sources: AdminSources): string {
  const parts: string[] = [];
  let size = 0;
  let omitted = 0;
  for (const node of sources.nodes()) {
    const json = JSON.stringify(node, null, 2).replace(/\n/g, '\n    ');
    if (omitted > 0 || size + json.length > MAX_STATUS_BODY) {
      omitted++;
      continue;
    }
    size += json.length;
    parts.push(`    ${json}`);
  }
  const rest = JSON.stringify({ ...(omitted ? { nodesOmitted: omitted } : {}), ...(sources.extra?.() ?? {}) }, null, 2);
  const tail = rest === '{}' ? '' : `,\n${rest.slice(2, -2)}`;
  return `{\n  "nodes": [${parts.length ? `\n${parts.join(',\n')}\n  ` : ''}]${tail}\n}`;
}

/**
 * A small read-only HTTP endpoint (`GET /status`, `GET /healthz`) that `meshaccel status`
 * reads. Bound to loopback by default: it reveals which proxies exist and what they rejected.
 * Requests must name the endpoint by a loopback name or the bound address in `Host`, so a web
 * page that rebinds its own domain to 127.0.0.1 cannot read it from a browser.
 */
export async function startAdminServer(sources: AdminSources, port: number, host = '127.0.0.1', extraHostNames: readonly string[] = []): Promise<AdminServer> {
  const allowed = new Set([...LOOPBACK_NAMES, host.toLowerCase(), ...extraHostNames.map((h) => h.toLowerCase())]);
  const server = http.createServer((req, res) => {
    const name = hostName(req.headers.host ?? '');
    if (!name || !allowed.has(name)) {
      res
        .writeHead(403, { 'content-type': 'text/plain' })
        .end(`Host "${clientText(req.headers.host ?? '', 100)}" is not this admin endpoint; use 127.0.0.1 or localhost\n`);
      return;
    }
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
      res.writeHead(200, { 'content-type': 'application/json' }).end(statusBody(sources) + '\n');
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
