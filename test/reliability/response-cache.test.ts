import * as assert from 'node:assert/strict';
import { SnapshotCache } from '../../src/xds/cache';
import { Snapshot } from '../../src/xds/snapshot';
import { startXdsServer, type RunningXdsServer } from '../../src/xds/server';
import { TypeUrl } from '../../src/resource/type-urls';
import { rawClient, sotwStream } from '../helpers/raw-xds-client';
import { HealthyProxy, MiB, note, paddedCluster, settledMemory } from './harness';
import type * as grpc from '@grpc/grpc-js';

/**
 * #12 item 3, the xDS part: what a stream's name sets leave behind. Large name sets must not be
 * kept as response-cache keys, and the response cache of a snapshot is bounded by bytes, not
 * only by entries.
 */
describe('reliability: the response cache', function () {
  this.timeout(120_000);
  let xds: RunningXdsServer;
  let cache: SnapshotCache;
  let client: grpc.Client;
  const CLUSTERS = 40;
  // Request budgets out of the way: this is about what requests leave behind, not their rate.
  // (A variable, so it compiles against the code before these limits existed.)
  const limits = { maxTypesPerStream: 32, requestBurstBytes: 1e12, requestBytesPerSecond: 1e12 };

  beforeEach(async () => {
    cache = new SnapshotCache({ nodeHash: () => 'all' });
    cache.setSnapshot('all', Snapshot.fromResources(Array.from({ length: CLUSTERS }, (_, i) => paddedCluster(`c${i}`, 0, 50_000))));
    xds = await startXdsServer({ source: cache, port: 0, host: '127.0.0.1', limits });
    client = rawClient(xds.port, undefined, { 'grpc.max_receive_message_length': -1 });
  });
  afterEach(async () => {
    client.close();
    await xds.close();
  });

  it('60 name sets of 1.5 MB leave nothing behind once the stream has closed', async () => {
    // Small clusters here, so the bodies the cache legitimately keeps (one per selection) are
    // small next to the name sets.
    cache.setSnapshot('all', Snapshot.fromResources(Array.from({ length: CLUSTERS }, (_, i) => paddedCluster(`c${i}`, 0, 2000))));
    const healthy = new HealthyProxy(client, 'healthy', CLUSTERS);
    await healthy.reached(0);
    const before = await settledMemory();
    const s = sotwStream(client);
    for (let set = 0; set < 60; set++) {
      // 10,000 names of ~150 characters, two of which exist.
      const names = Array.from({ length: 10_000 }, (_, i) => `set-${set}-${i}-${'p'.repeat(140)}`);
      names.push('c0', `c${1 + (set % (CLUSTERS - 1))}`);
      s.send({ node: set === 0 ? { id: 'namer' } : undefined, type_url: TypeUrl.Cluster, resource_names: names });
      const r = await s.next(10_000);
      assert.equal(r.resources.length, 2);
      s.send({ type_url: TypeUrl.Cluster, version_info: r.version_info, response_nonce: r.nonce, resource_names: names });
    }
    s.close();
    await new Promise((r) => setTimeout(r, 300));
    const growth = (await settledMemory()) - before;
    note(`memory growth after the stream closed: ${(growth / MiB).toFixed(1)} MiB`);
    healthy.assertAlwaysComplete();
    healthy.close();
    assert.ok(growth < 16 * MiB, `memory grew ${(growth / MiB).toFixed(1)} MiB (the snapshot keeps what the name sets left)`);
  });

  it('100 distinct 1 MB selections of one snapshot keep its response cache within bounds', async () => {
    const before = await settledMemory();
    const s = sotwStream(client);
    for (let i = 0; i < 100; i++) {
      const window = Array.from({ length: 20 }, (_, k) => `c${(i + k) % CLUSTERS}`);
      window.splice(Math.floor(i / CLUSTERS), 1);
      s.send({ node: i === 0 ? { id: 'selector' } : undefined, type_url: TypeUrl.Cluster, resource_names: window });
      const r = await s.next(10_000);
      assert.equal(r.resources.length, 19);
    }
    const growth = (await settledMemory()) - before;
    note(`memory growth with 100 distinct selections cached: ${(growth / MiB).toFixed(1)} MiB`);
    s.close();
    // Every body kept would be 95 MiB; the cache holds 16 MiB of them.
    assert.ok(growth < 40 * MiB, `memory grew ${(growth / MiB).toFixed(1)} MiB`);
  });
});
