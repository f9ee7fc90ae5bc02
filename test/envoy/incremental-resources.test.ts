import * as assert from 'node:assert/strict';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { buildProxyResourceJson } from '../../src/envoy/proxy-resources';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import { PolicyEngine } from '../../src/policy/engine';
import type { PolicyResource, Resource, WorkloadResource } from '../../src/policy/model';
import { prng } from '../helpers/prng';
import { referenceEncoding, servedEncoding } from '../helpers/reference-encoding';

const APPS = ['a', 'b', 'c', 'd'];

function policy(name: string, rand: (n: number) => number): PolicyResource {
  const peer = (): PolicyResource['spec']['endpointSelector'] =>
    rand(3) === 0
      ? {
          matchExpressions: [
            { key: 'app', operator: 'In', values: [APPS[rand(4)], APPS[rand(4)]] },
            { key: 'v', operator: 'NotIn', values: [String(rand(3))] },
          ],
        }
      : { matchLabels: { app: APPS[rand(4)] } };
  return {
    kind: 'L7Policy',
    name,
    namespace: 'default',
    spec: {
      endpointSelector: { matchLabels: { app: APPS[rand(4)] } },
      ingress: [
        { fromEndpoints: [peer(), peer()], toPorts: [{ ports: [{ port: 80 + rand(2), protocol: 'TCP' }], rules: { http: [{ path: `/p${rand(3)}` }] } }] },
        { fromEndpoints: [peer()], toPorts: [{ ports: [{ port: 5432, protocol: 'TCP' }] }] },
      ],
      egress: rand(2) ? [{ toEndpoints: [peer()] }, { toCIDR: ['192.0.2.0/24'] }] : undefined,
      ingressDeny: rand(3) === 0 ? [{ fromEndpoints: [peer()] }] : undefined,
    },
  };
}

const STANDALONE = { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG } as const;

function served(e: PolicyEngine, key: string): string {
  return JSON.stringify(buildProxyResourceJson(e.proxy(key) as CompiledProxyPolicy, STANDALONE).resources);
}

describe('Envoy resources after incremental changes', () => {
  it('every proxy the engine keeps current is served what a from-scratch engine serves it, over random identity churn', () => {
    const rand = prng(5);
    const live = new Map<string, Resource>();
    const e = new PolicyEngine();
    for (let i = 0; i < 6; i++) {
      const p = policy(`p${i}`, rand);
      live.set(`L7Policy/default/p${i}`, p);
      e.upsertPolicy(p);
    }
    let compared = 0;
    for (let step = 0; step < 120; step++) {
      const op = rand(6);
      if (op < 3) {
        // A workload with a label set that may be new (the `pod` label) arrives or changes.
        const n = rand(25);
        const w: WorkloadResource = {
          kind: 'Workload',
          name: `w${n}`,
          namespace: 'default',
          labels: { app: APPS[rand(4)], v: String(rand(3)), ...(rand(2) ? { pod: `p${step}` } : {}) },
          spec: { addresses: [`10.3.${n}.${1 + rand(2)}`], serviceAccount: `sa${rand(3)}`, proxy: { nodeId: `node-${rand(12)}` } },
        };
        live.set(`Workload/default/w${n}`, w);
        e.upsertWorkload(w);
      } else if (op < 5) {
        const keys = [...live.keys()].filter((k) => k.startsWith('Workload/'));
        if (keys.length === 0) continue;
        const key = keys[rand(keys.length)];
        live.delete(key);
        e.removeWorkload(key);
      } else {
        const name = `p${rand(6)}`;
        const p = policy(name, rand);
        live.set(`L7Policy/default/${name}`, p);
        e.upsertPolicy(p);
      }
      const { changed } = e.commit();
      // Built as a server would, after each change: the builders' shared fragments carry over.
      for (const key of changed) servedEncoding(e.proxy(key) as CompiledProxyPolicy, STANDALONE);
      const fresh = new PolicyEngine();
      fresh.sync([...live.values()]);
      fresh.commit();
      assert.deepEqual([...e.proxies().keys()].sort(), [...fresh.proxies().keys()].sort(), `step ${step}: proxies`);
      for (const key of e.proxies().keys()) {
        assert.equal(served(e, key), served(fresh, key), `step ${step}: resources of ${key}`);
        // And the bytes: what the serving path kept encoded equals checking and encoding afresh.
        assert.deepEqual(
          servedEncoding(e.proxy(key) as CompiledProxyPolicy, STANDALONE),
          referenceEncoding(fresh.proxy(key) as CompiledProxyPolicy, STANDALONE),
          `step ${step}: encoded resources of ${key}`,
        );
        compared++;
      }
    }
    assert.ok(compared > 500, `the churn exercised little: ${compared} comparisons`);
  });
});
