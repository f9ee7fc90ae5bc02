import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as http from 'http';
import { SnapshotCache } from '../../src/xds/cache';
import { startXdsServer, type RunningXdsServer } from '../../src/xds/server';
import { startAdminServer, type AdminServer } from '../../src/xds/admin-http';
import { TypeUrl } from '../../src/resource/type-urls';
import { deltaStream, rawClient, sotwStream } from '../helpers/raw-xds-client';
import { HealthyProxy, MiB, note, paddedSnapshot, settledMemory } from './harness';

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

/** A refusal must arrive, say which limit, and be short whatever the client sent. */
function assertRefused(st: grpc.StatusObject, code: grpc.status, pattern: RegExp): void {
  assert.equal(grpc.status[st.code], grpc.status[code], st.details.slice(0, 300));
  assert.match(st.details, pattern);
  assert.ok(st.details.length <= 1200, `status details are ${st.details.length} characters`);
}

function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  return Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms))]);
}

/**
 * #12 items 1 and 10: everything a client controls is bounded. Each oversized field is refused
 * with a short status that arrives; nothing of it is kept; `GET /status` stays small however
 * many hostile clients came and went; a healthy proxy is served throughout.
 */
describe('reliability: limits on what a client controls', function () {
  this.timeout(120_000);
  let xds: RunningXdsServer;
  let admin: AdminServer;
  let cache: SnapshotCache;
  let client: grpc.Client;

  beforeEach(async () => {
    cache = new SnapshotCache({ nodeHash: () => 'all' });
    cache.setSnapshot('all', paddedSnapshot(0, 4, 256));
    xds = await startXdsServer({ source: cache, port: 0, host: '127.0.0.1' });
    admin = await startAdminServer({ nodes: () => xds.controlPlane.nodes() }, 0);
    client = rawClient(xds.port, grpc.credentials.createInsecure(), { 'grpc.max_receive_message_length': -1, 'grpc.max_send_message_length': -1 });
  });
  afterEach(async () => {
    client.close();
    await admin.close();
    await xds.close();
  });

  it('20 streams with 1 MB node ids are refused and GET /status stays small', async () => {
    const healthy = new HealthyProxy(client, 'healthy', 4);
    await healthy.reached(0);
    const before = await settledMemory();
    for (let i = 0; i < 20; i++) {
      const s = sotwStream(client);
      s.send({ node: { id: `${i}-${'n'.repeat(MiB)}`, locality: {} }, type_url: TypeUrl.Cluster });
      assertRefused(await within(s.ended, 10_000, 'refusal'), grpc.status.INVALID_ARGUMENT, /node\.id is \d+ characters, over the limit of 1024/);
    }
    const body = await getStatus(admin.port);
    const growth = (await settledMemory()) - before;
    note(`GET /status: ${body.length} bytes; memory growth ${(growth / MiB).toFixed(1)} MiB`);
    assert.ok(body.length < 64 * 1024, `GET /status is ${body.length} bytes`);
    assert.ok(growth < 8 * MiB, `memory grew ${(growth / MiB).toFixed(1)} MiB`);
    cache.setSnapshot('all', paddedSnapshot(1, 4, 256));
    await healthy.reached(1);
    healthy.assertAlwaysComplete();
    healthy.close();
  });

  it('refuses an oversized cluster, user agent, metadata, type_url, resource name and NACK message with INVALID_ARGUMENT, in a status that arrives', async () => {
    const healthy = new HealthyProxy(client, 'healthy', 4);
    await healthy.reached(0);
    const big = 'x'.repeat(MiB);
    const cases: Array<{ request: Record<string, unknown>; pattern: RegExp }> = [
      { request: { node: { id: 'n1', cluster: big }, type_url: TypeUrl.Cluster }, pattern: /node\.cluster is/ },
      { request: { node: { id: 'n2', user_agent_name: big }, type_url: TypeUrl.Cluster }, pattern: /node\.user_agent_name is/ },
      {
        request: { node: { id: 'n3', metadata: { fields: { k: { stringValue: big } } } }, type_url: TypeUrl.Cluster },
        pattern: /node\.metadata is \d+ bytes as JSON/,
      },
      { request: { node: { id: 'n4' }, type_url: `type.googleapis.com/${big}` }, pattern: /type_url is \d+ characters/ },
      { request: { node: { id: 'n5' }, type_url: TypeUrl.ClusterLoadAssignment, resource_names: [big] }, pattern: /a resource name in resource_names is/ },
    ];
    for (const c of cases) {
      const s = sotwStream(client);
      s.send(c.request);
      assertRefused(await within(s.ended, 10_000, String(c.pattern)), grpc.status.INVALID_ARGUMENT, c.pattern);
    }
    const nack = sotwStream(client);
    nack.send({ node: { id: 'nacker' }, type_url: TypeUrl.Cluster });
    const r = await nack.next();
    nack.send({ type_url: TypeUrl.Cluster, response_nonce: r.nonce, error_detail: { code: 3, message: big } });
    assertRefused(await within(nack.ended, 10_000, 'NACK refusal'), grpc.status.INVALID_ARGUMENT, /error_detail\.message is/);

    // A NACK under the limit is accepted, and kept cut short.
    const nack2 = sotwStream(client);
    nack2.send({ node: { id: 'nacker2' }, type_url: TypeUrl.Cluster });
    const r2 = await nack2.next();
    nack2.send({ type_url: TypeUrl.Cluster, response_nonce: r2.nonce, error_detail: { code: 3, message: 'e'.repeat(60_000) } });
    await nack2.nothingFor(300);
    const kept = xds.controlPlane.status.get('nacker2')!.types[0].lastNack!.message;
    assert.ok(kept.length < 1200, `a kept NACK message is ${kept.length} characters`);
    nack2.close();

    cache.setSnapshot('all', paddedSnapshot(1, 4, 256));
    await healthy.reached(1);
    healthy.assertAlwaysComplete();
    healthy.close();
  });

  it('Delta initial_resource_versions over the name limit is refused, like subscribed names', async () => {
    const healthy = new HealthyProxy(client, 'healthy', 4);
    await healthy.reached(0);
    const initial: Record<string, string> = {};
    for (let i = 0; i < 150_000; i++) initial[`r${i}`] = 'v';
    const s = deltaStream(client);
    const t0 = performance.now();
    s.send({ node: { id: 'reconnecting' }, type_url: TypeUrl.ClusterLoadAssignment, initial_resource_versions: initial });
    assertRefused(await within(s.ended, 20_000, 'refusal'), grpc.status.RESOURCE_EXHAUSTED, /too many names in initial_resource_versions \(150000 > 100000\)/);
    note(`refused after ${(performance.now() - t0).toFixed(0)} ms`);
    cache.setSnapshot('all', paddedSnapshot(1, 4, 256));
    await healthy.reached(1);
    healthy.assertAlwaysComplete();
    healthy.close();
  });

  it('1,100 departed nodes with long ids and 60 KB NACK messages keep GET /status and the registry bounded in bytes', async () => {
    const before = await settledMemory();
    const message = 'm'.repeat(60_000);
    for (let batch = 0; batch < 1100; batch += 50) {
      // A connection per batch, as departed proxies had: 1,100 streams reset on one HTTP/2
      // connection trip Node's rapid-reset protection, which closes the session (GOAWAY 2).
      const batchClient = rawClient(xds.port);
      await Promise.all(
        Array.from({ length: 50 }, async (_, k) => {
          const s = sotwStream(batchClient);
          s.send({ node: { id: `${batch + k}-${'i'.repeat(1000)}` }, type_url: TypeUrl.Cluster });
          const r = await s.next(10_000);
          s.send({ type_url: TypeUrl.Cluster, response_nonce: r.nonce, error_detail: { code: 3, message } });
          await new Promise((res) => setTimeout(res, 50));
          s.close();
        }),
      );
      batchClient.close();
    }
    await new Promise((r) => setTimeout(r, 300));
    const body = await getStatus(admin.port);
    const growth = (await settledMemory()) - before;
    note(`GET /status after 1,100 departed nodes: ${(body.length / MiB).toFixed(2)} MiB, memory growth ${(growth / MiB).toFixed(1)} MiB`);
    assert.ok(body.length < 8 * MiB, `GET /status is ${(body.length / MiB).toFixed(1)} MiB`);
    assert.ok(growth < 16 * MiB, `memory grew ${(growth / MiB).toFixed(1)} MiB`);
  });
});
