import * as assert from 'node:assert/strict';
import { Snapshot } from '../../src/xds/snapshot';
import { RequestBudget } from '../../src/xds/flow';
import { TypeUrl } from '../../src/resource/type-urls';
import { edsCluster } from '../helpers/envoy-resources';
import { sotwStream, testNode, xdsServerPerTest } from '../helpers/raw-xds-client';

describe('per-stream request budgets', function () {
  this.timeout(30_000);
  const bed = xdsServerPerTest({ limits: { requestBurst: 10, requestsPerSecond: 20 } }, (cache) =>
    cache.setSnapshot('n', Snapshot.fromResources(Array.from({ length: 40 }, (_, i) => edsCluster(`c${i}`)))),
  );

  it('a stream over its request budget is read more slowly, every request still answered; another stream is not slowed', async () => {
    const flooder = sotwStream(bed.client);
    const t0 = performance.now();
    flooder.send({ node: testNode('n'), type_url: TypeUrl.Cluster, resource_names: ['c0'] });
    for (let i = 1; i < 30; i++) flooder.send({ type_url: TypeUrl.Cluster, resource_names: [`c${i}`] });
    let answered = 0;
    let healthyMs = -1;
    while (answered < 30) {
      await flooder.next(10_000);
      answered++;
      if (answered === 12) {
        // Mid-flood, a stream of its own gets its answer at once.
        const other = sotwStream(bed.client);
        const s = performance.now();
        other.send({ node: testNode('n'), type_url: TypeUrl.Cluster });
        await other.next();
        healthyMs = performance.now() - s;
        other.close();
      }
    }
    const elapsed = performance.now() - t0;
    // 10 at once, then 20 a second: the last of 30 cannot be read before ~1 s.
    assert.ok(elapsed >= 900, `30 requests were all answered in ${elapsed.toFixed(0)} ms`);
    assert.ok(healthyMs >= 0 && healthyMs < 500, `the other stream waited ${healthyMs.toFixed(0)} ms`);
    flooder.close();
  });

  it('RequestBudget: a burst, then a rate, with debt paid in time, for request count and bytes', () => {
    let now = 0;
    const b = new RequestBudget({ requestBurst: 10, requestsPerSecond: 5, requestBurstBytes: 1000, requestBytesPerSecond: 100 }, () => now);
    for (let i = 0; i < 10; i++) assert.equal(b.spend(1), 0);
    assert.equal(b.spend(1), 200);
    now += 200;
    assert.equal(b.spend(1), 200);
    now += 10_000;
    assert.equal(b.spend(1000), 0);
    assert.equal(b.spend(50), 500);
  });
});
