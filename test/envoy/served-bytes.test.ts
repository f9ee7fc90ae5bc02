import * as assert from 'node:assert/strict';
import * as path from 'node:path';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import type { EnvoyMode, ProxyBuildOptions } from '../../src/envoy/proxy-resources';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import { PolicyEngine } from '../../src/policy/engine';
import { listYamlFiles, loadFiles } from '../../src/policy/loader';
import { packageRoot } from '../../src/paths';
import { IDENTITIES, RESOURCES, arrival } from '../../bench/policy/world';
import { assertServedAsReference } from '../helpers/reference-encoding';

/**
 * The serving path shares built resources and their encodings between proxies and rebuilds; the
 * bytes it serves must be those of building each proxy afresh and checking and encoding every
 * resource whole.
 */

const STANDALONE: ProxyBuildOptions = { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG };

describe('served bytes equal whole-resource encoding', () => {
  it("bench-policy's world: a sample of proxies, and every proxy identity adds and removals change", function () {
    this.timeout(300_000);
    const e = new PolicyEngine();
    e.sync(RESOURCES);
    e.commit();
    let compared = 0;
    for (let i = 0; i < IDENTITIES; i += 37) {
      assertServedAsReference(e.proxy(`node-${i}`) as CompiledProxyPolicy, STANDALONE, `node-${i}`);
      compared++;
    }
    // Arrival 15 is selected by the expression selector of a hundred rules: ~300 proxies change, their peer lists of ~1,000.
    for (const j of [0, 1, 2, 3, 15]) {
      const w = arrival(j);
      e.upsertWorkload(w);
      const added = e.commit().changed;
      for (const key of added) assertServedAsReference(e.proxy(key) as CompiledProxyPolicy, STANDALONE, `after arrival ${j}: ${key}`);
      e.removeWorkload(`Workload/${w.namespace}/${w.name}`);
      const removed = e.commit().changed;
      for (const key of removed) assertServedAsReference(e.proxy(key) as CompiledProxyPolicy, STANDALONE, `after removal ${j}: ${key}`);
      compared += added.length + removed.length;
    }
    assert.ok(compared > 400, `only ${compared} proxies compared`);
  });

  for (const mode of ['standalone', 'istio', 'grpc'] as EnvoyMode[]) {
    it(`the example policies and workloads (${mode})`, () => {
      const root = path.join(packageRoot(), 'examples');
      const loaded = loadFiles([...listYamlFiles(path.join(root, 'policies')), ...listYamlFiles(path.join(root, 'workloads'))], undefined, { mode });
      const e = new PolicyEngine();
      e.sync(loaded.resources);
      assert.deepEqual(e.commit().conflicts, []);
      assert.ok(e.proxies().size > 0);
      // Twice: the second build of each proxy is served from what the first one kept.
      for (let round = 0; round < 2; round++) {
        for (const [key, policy] of e.proxies()) assertServedAsReference(policy, { mode, redirect: DEFAULT_REDIRECT_CONFIG }, `${mode} ${key}`);
      }
    });
  }
});
