import * as assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'child_process';
import * as path from 'path';
import { SnapshotCache } from '../../src/xds/cache';
import { startXdsServer, type RunningXdsServer } from '../../src/xds/server';
import { rawClient } from '../helpers/raw-xds-client';
import { HealthyProxy, MiB, note, paddedSnapshot, settledMemory } from './harness';
import type * as grpc from '@grpc/grpc-js';

/**
 * #12 item 9, the xDS part: streams sending large legal requests as fast as they can must not
 * delay a healthy proxy's updates by seconds. Updates are triggered from timers, as a file
 * change would be, so a busy event loop shows up as latency.
 */
describe('reliability: one client cannot starve the others', function () {
  this.timeout(120_000);
  let xds: RunningXdsServer;
  let cache: SnapshotCache;
  let client: grpc.Client;
  let flood: ChildProcess | undefined;

  beforeEach(async () => {
    generation = 0;
    cache = new SnapshotCache({ nodeHash: () => 'all' });
    cache.setSnapshot('all', paddedSnapshot(0, 8, 512));
    xds = await startXdsServer({ source: cache, port: 0, host: '127.0.0.1' });
    client = rawClient(xds.port);
  });
  afterEach(async () => {
    flood?.kill('SIGKILL');
    flood = undefined;
    client.close();
    await xds.close();
  });

  let generation = 0;
  async function updateLatencies(healthy: HealthyProxy, updates: number, everyMs: number): Promise<number[]> {
    const latencies: number[] = [];
    for (let n = 0; n < updates; n++) {
      const g = ++generation;
      const due = performance.now() + everyMs;
      await new Promise((r) => setTimeout(r, everyMs));
      cache.setSnapshot('all', paddedSnapshot(g, 8, 512));
      await healthy.reached(g, 60_000);
      latencies.push(healthy.receivedAt.get(g)! - due);
    }
    return latencies;
  }

  for (const mb of [15, 3.5]) {
    it(`four streams flooding ${mb} MB requests leave a healthy proxy's update latency under a second`, async () => {
      const healthy = new HealthyProxy(client, 'healthy', 8);
      await healthy.reached(0);
      const quiet = await updateLatencies(healthy, 3, 100);
      const before = await settledMemory();

      flood = fork(path.join(__dirname, 'flood-client.js'), [String(xds.port), '4', String(Math.floor(mb * MiB))], { stdio: 'ignore' });
      let progress = { sent: 0, refused: 0 };
      const started = new Promise<void>((resolve) => flood!.once('message', () => resolve()));
      flood.on('message', (m: typeof progress) => (progress = m));
      await started;
      await new Promise((r) => setTimeout(r, 1500)); // the flood under way
      const flooded = await updateLatencies(healthy, 10, 300);
      note(
        `update latency quiet ${Math.max(...quiet).toFixed(0)} ms, flooded max ${Math.max(...flooded).toFixed(0)} ms (median ${[...flooded].sort((a, b) => a - b)[5].toFixed(0)} ms); flood: ${progress.sent} requests written, ${progress.refused} streams refused`,
      );
      flood.kill('SIGKILL');
      await new Promise((r) => setTimeout(r, 500));
      const growth = (await settledMemory()) - before;
      note(`memory growth after the flood: ${(growth / MiB).toFixed(1)} MiB`);
      healthy.assertAlwaysComplete();
      healthy.close();
      // Generous bounds (quiet latency is a few ms): what they catch is a loop given over to the flood.
      const median = [...flooded].sort((a, b) => a - b)[Math.floor(flooded.length / 2)];
      assert.ok(Math.max(...flooded) < 1000 && median < 150, `update latencies under the flood: ${flooded.map((l) => l.toFixed(0)).join(', ')} ms`);
      // What the flood's name sets may leave: nothing of them is kept once their streams are gone.
      assert.ok(growth < 32 * MiB, `memory grew ${(growth / MiB).toFixed(1)} MiB`);
    });
  }
});
