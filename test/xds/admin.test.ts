import * as assert from 'node:assert/strict';
import * as http from 'http';
import { startAdminServer } from '../../src/xds/admin-http';
import type { NodeStatus } from '../../src/xds/node-status';

function getStatus(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/status' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(body));
      })
      .on('error', reject);
  });
}

describe('admin endpoint', function () {
  this.timeout(30_000);
  it('lists nodes up to 32 MiB of JSON and counts the rest, so /status can always be built', async () => {
    const node = (i: number): NodeStatus => ({
      nodeId: `n${i}-${'x'.repeat(900)}`,
      key: `n${i}`,
      cluster: '',
      userAgent: '',
      peers: ['127.0.0.1:1'],
      streams: 1,
      protocols: ['sotw'],
      connectedAt: new Date(0),
      lastRequestAt: new Date(0),
      types: [],
    });
    const nodes = Array.from({ length: 40_000 }, (_, i) => node(i));
    const admin = await startAdminServer({ nodes: () => nodes, extra: () => ({ policyVersion: 7 }) }, 0);
    try {
      const body = await getStatus(admin.port);
      const doc = JSON.parse(body) as { nodes: NodeStatus[]; nodesOmitted: number; policyVersion: number };
      assert.ok(body.length <= 33 * 1024 * 1024, `${body.length} bytes`);
      assert.ok(doc.nodes.length > 1000 && doc.nodesOmitted > 0, `${doc.nodes.length} listed, ${doc.nodesOmitted} omitted`);
      assert.equal(doc.nodes.length + doc.nodesOmitted, 40_000);
      assert.equal(doc.policyVersion, 7);
    } finally {
      await admin.close();
    }
  });
});
