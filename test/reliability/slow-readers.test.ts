import * as assert from 'node:assert/strict';
import { SnapshotCache } from '../../src/xds/cache';
import { startXdsServer, type RunningXdsServer } from '../../src/xds/server';
import { TypeUrl } from '../../src/resource/type-urls';
import { rawClient } from '../helpers/raw-xds-client';
import { HealthyProxy, MiB, note, paddedSnapshot, settledMemory, StuckClient } from './harness';
import type * as grpc from '@grpc/grpc-js';

/**
 * #12 item 2: clients that never read. The server must neither queue every version it pushes
 * for them nor hold their memory after they leave, and a healthy proxy beside them must get
 * every update, complete.
 */
describe('reliability: clients that never read', function () {
  this.timeout(120_000);
  let xds: RunningXdsServer;
  let cache: SnapshotCache;
  let client: grpc.Client;
  const warnings: string[] = [];
  const CLUSTERS = 16;
  const BYTES_EACH = 4096; // a 64 KiB CDS response
  // A variable, not a literal, so this suite also compiles against the code before the limit existed.
  const limits = { maxTypesPerStream: 32, stallTimeoutMs: 3000 };

  beforeEach(async () => {
    warnings.length = 0;
    cache = new SnapshotCache({ nodeHash: () => 'all' });
    cache.setSnapshot('all', paddedSnapshot(0, CLUSTERS, BYTES_EACH));
    xds = await startXdsServer({
      source: cache,
      port: 0,
      host: '127.0.0.1',
      limits,
      log: { info: () => undefined, warn: (m) => warnings.push(m) },
    });
    client = rawClient(xds.port);
  });
  afterEach(async () => {
    client.close();
    await xds.close();
  });

  it('10 window-0 clients during 200 pushes: memory stays bounded and is released, the healthy proxy gets every update complete', async () => {
    const healthy = new HealthyProxy(client, 'healthy', CLUSTERS);
    await healthy.reached(0);
    const before = await settledMemory();

    const stuck = Array.from({ length: 10 }, (_, i) => {
      const s = new StuckClient(xds.port);
      s.send({ node: { id: `stuck-${i}`, locality: {} }, type_url: TypeUrl.Cluster });
      return s;
    });
    await Promise.all(stuck.map((s) => s.flushed()));
    await new Promise((r) => setTimeout(r, 200));
    for (let g = 1; g <= 200; g++) {
      cache.setSnapshot('all', paddedSnapshot(g, CLUSTERS, BYTES_EACH));
      await healthy.reached(g);
    }
    const stuckGrowth = (await settledMemory()) - before;

    for (const s of stuck) s.close();
    await new Promise((r) => setTimeout(r, 500));
    const leftGrowth = (await settledMemory()) - before;
    note(`memory growth: ${(stuckGrowth / MiB).toFixed(1)} MiB with 10 stuck clients, ${(leftGrowth / MiB).toFixed(1)} MiB after they left`);
    healthy.assertAlwaysComplete();
    assert.deepEqual(healthy.generations.slice(-1), [200]);
    healthy.close();
    // 200 pushes x 64 KiB x 10 clients is 125 MiB if every version is queued; the bound is the
    // write buffer (1 MiB a stream) plus what gRPC holds.
    assert.ok(stuckGrowth < 30 * MiB, `server memory grew ${(stuckGrowth / MiB).toFixed(1)} MiB with 10 stuck clients`);
    assert.ok(leftGrowth < 10 * MiB, `server memory still ${(leftGrowth / MiB).toFixed(1)} MiB above baseline after the stuck clients left`);
  });

  it('a window-0 stream alternating two name sets 3,000 times stays bounded', async () => {
    const healthy = new HealthyProxy(client, 'healthy', CLUSTERS);
    await healthy.reached(0);
    const before = await settledMemory();
    const s = new StuckClient(xds.port);
    const setA = Array.from({ length: CLUSTERS / 2 }, (_, i) => `c${i}`);
    const setB = Array.from({ length: CLUSTERS / 2 }, (_, i) => `c${i + CLUSTERS / 2}`);
    s.send({ node: { id: 'alternating', locality: {} }, type_url: TypeUrl.Cluster, resource_names: setA });
    for (let i = 0; i < 3000; i++) {
      s.send({ type_url: TypeUrl.Cluster, resource_names: i % 2 ? setA : setB });
      if (i % 500 === 0) await s.flushed();
    }
    await s.flushed();
    await new Promise((r) => setTimeout(r, 500));
    cache.setSnapshot('all', paddedSnapshot(1, CLUSTERS, BYTES_EACH));
    await healthy.reached(1);
    const growth = (await settledMemory()) - before;
    s.close();
    note(`memory growth: ${(growth / MiB).toFixed(1)} MiB`);
    healthy.assertAlwaysComplete();
    healthy.close();
    // 3,000 answers of 32 KiB queued would be 94 MiB.
    assert.ok(growth < 20 * MiB, `server memory grew ${(growth / MiB).toFixed(1)} MiB`);
  });

  it('a stream whose client reads nothing for the stall timeout is closed, with a clear reason', async () => {
    const s = new StuckClient(xds.port);
    const reset = new Promise<number>((resolve) => s.stream.on('close', () => resolve(s.stream.rstCode ?? -1)));
    s.send({ node: { id: 'stalled', locality: {} }, type_url: TypeUrl.Cluster });
    await s.flushed();
    // Enough pushes to fill the stream's write buffer.
    for (let g = 1; g <= 40; g++) {
      cache.setSnapshot('all', paddedSnapshot(g, CLUSTERS, BYTES_EACH));
      await new Promise((r) => setImmediate(r));
    }
    const deadline = Date.now() + 10_000;
    while (xds.controlPlane.status.get('stalled')?.streams !== 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    assert.equal(xds.controlPlane.status.get('stalled')?.streams, 0, 'the stalled stream was closed');
    assert.ok(
      warnings.some((w) => /stalled.*RESOURCE_EXHAUSTED: client read none of \d+ bytes of responses for 3 s/.test(w)),
      warnings.join('\n'),
    );
    // The stream is reset, so the bytes the client never read are released.
    const code = await Promise.race([reset, new Promise<number>((r) => setTimeout(() => r(-2), 3000))]);
    assert.equal(code, 8 /* NGHTTP2_CANCEL */);
    s.close();
  });
});
