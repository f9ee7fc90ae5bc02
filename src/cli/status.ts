import * as http from 'http';
import type { Command } from './command';
import { optionValue, parseArgs, type OptionSpec } from './args';
import type { NodeStatus } from '../xds/node-status';
import { shortType } from '../xds/snapshot';
import { clientText } from '../log';

const OPTIONS: Record<string, OptionSpec> = {
  admin: { value: true, description: 'admin address of a running `meshaccel serve` (default http://127.0.0.1:18001)' },
  json: { description: 'print the raw JSON' },
  help: { description: 'show this help' },
};

interface StatusDocument {
  nodes: Array<Omit<NodeStatus, 'connectedAt' | 'lastRequestAt'> & { connectedAt: string; lastRequestAt: string }>;
  [key: string]: unknown;
}

function fetchJson(url: string): Promise<StatusDocument> {
  return new Promise((resolve, reject) => {
    http
      .get(url, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => {
          if (res.statusCode !== 200) reject(new Error(`${url}: HTTP ${res.statusCode}: ${body.trim()}`));
          else resolve(JSON.parse(body) as StatusDocument);
        });
      })
      .on('error', (err) => reject(new Error(`cannot reach ${url}: ${err.message} (is \`meshaccel serve\` running with its admin port?)`)));
  });
}

/**
 * The status as text. Node ids, user agents, versions a client ACKed and NACK messages come
 * from clients: each is cut and escaped (clientText), so what a proxy sends cannot add lines,
 * move the cursor or recolour the terminal of whoever runs `meshaccel status`.
 */
export function formatStatus(doc: StatusDocument): string {
  const lines: string[] = [];
  const t_ = (v: unknown, max?: number): string => clientText(v ?? '', max);
  if (doc.nodes.length === 0) lines.push('no nodes have connected');
  for (const n of doc.nodes) {
    const state = n.streams > 0 ? `connected (${n.protocols.map((p) => t_(p)).join('+')}, ${n.streams} stream${n.streams === 1 ? '' : 's'})` : 'disconnected';
    lines.push(`${t_(n.nodeId)}  ${state}  ${n.peers.map((p) => t_(p)).join(' ')}${n.userAgent ? `  ${t_(n.userAgent)}` : ''}`);
    for (const t of n.types) {
      const sync = t.lastNack ? 'NACKED' : t.ackedVersion && t.ackedVersion === t.sentVersion ? 'ACKED' : t.sentVersion ? 'SENT' : 'REQUESTED';
      const subs = t.wildcard ? '*' : `${t.subscribedNames} names`;
      lines.push(
        `  ${t_(shortType(t.typeUrl)).padEnd(22)} ${sync.padEnd(9)} sent=${t.sentVersion ? t_(t.sentVersion) : '-'} acked=${t.ackedVersion ? t_(t.ackedVersion) : '-'} (${subs})`,
      );
      if (t.lastNack) lines.push(`    last NACK of ${t_(t.lastNack.version)}: ${t_(t.lastNack.message, 1000)}`);
    }
  }
  for (const [k, v] of Object.entries(doc)) {
    if (k !== 'nodes') lines.push(`${t_(k)}: ${t_(JSON.stringify(v), 10_000)}`);
  }
  return lines.join('\n');
}

export const command: Command = {
  summary: 'show connected proxies, the versions they ACKed and their last NACK',
  async run(argv) {
    const args = parseArgs(argv, OPTIONS, { command: 'status [--admin URL] [--json]', summary: 'Reads the admin endpoint of a running control server.' });
    const base = (optionValue(args, 'admin') ?? 'http://127.0.0.1:18001').replace(/\/$/, '');
    try {
      const doc = await fetchJson(`${/^https?:\/\//.test(base) ? base : `http://${base}`}/status`);
      console.log(args.flags.has('json') ? JSON.stringify(doc, null, 2) : formatStatus(doc));
      return 0;
    } catch (err) {
      console.error(`meshaccel status: ${(err as Error).message}`);
      return 1;
    }
  },
};
