import * as assert from 'node:assert/strict';
import { PolicyEngine } from '../../src/policy/engine';
import type { PolicyResource, WorkloadResource } from '../../src/policy/model';
import { l7RulesOf, type CompiledPortPolicy } from '../../src/policy/compiled';

function workload(
  name: string,
  labels: Record<string, string>,
  address: string,
  nodeId = `node-${name}`,
  namespace = 'default',
  serviceAccount?: string,
): WorkloadResource {
  return { kind: 'Workload', name, namespace, labels, spec: { addresses: [address], serviceAccount, proxy: { nodeId } } };
}

/** A namespaced L7Policy, or a ClusterL7Policy when `namespace` is null. */
function policy(name: string, spec: PolicyResource['spec'], namespace: string | null = 'default'): PolicyResource {
  return namespace === null ? { kind: 'ClusterL7Policy', name, spec } : { kind: 'L7Policy', name, namespace, spec };
}

const httpFrom = (from: string, to: string, path = '/.*'): PolicyResource =>
  policy(`${to}-from-${from}`, {
    endpointSelector: { matchLabels: { app: to } },
    ingress: [
      { fromEndpoints: [{ matchLabels: { app: from } }], toPorts: [{ ports: [{ port: 80, protocol: 'TCP' }], rules: { http: [{ method: 'GET', path }] } }] },
    ],
  });

function port(p: CompiledPortPolicy[], n: number): CompiledPortPolicy {
  const found = p.find((x) => x.port === n);
  assert.ok(found, `port ${n} in ${JSON.stringify(p.map((x) => x.port))}`);
  return found;
}

describe('policy engine', () => {
  it('one numeric identity per distinct label set (namespace and service account included)', () => {
    const e = new PolicyEngine();
    e.upsertWorkload(workload('a', { app: 'web' }, '10.0.0.1'));
    e.upsertWorkload(workload('b', { app: 'web' }, '10.0.0.2'));
    e.upsertWorkload(workload('c', { app: 'web' }, '10.0.0.3', 'n', 'other'));
    e.upsertWorkload(workload('d', { app: 'web' }, '10.0.0.4', 'n', 'default', 'special'));
    const ids = ['a', 'b', 'c', 'd'].map((n) => e.identityOf(`Workload/${n === 'c' ? 'other' : 'default'}/${n}`)?.id);
    assert.equal(ids[0], ids[1]);
    assert.equal(new Set(ids).size, 3);
    assert.ok(ids.every((id) => typeof id === 'number' && id >= 256));
    assert.equal(e.identities.size, 3);
    e.removeWorkload('Workload/default/a');
    assert.equal(e.identities.size, 3, 'b still holds the identity');
    e.removeWorkload('Workload/default/b');
    assert.equal(e.identities.size, 2);
  });

  it('resolves peers to addresses and principals; unselected workloads are default-allow', () => {
    const e = new PolicyEngine({ trustDomain: 'td' });
    e.upsertWorkload(workload('api', { app: 'api' }, '10.0.0.1', 'n-api'));
    e.upsertWorkload(workload('web', { app: 'web' }, '10.0.0.2', 'n-web', 'default', 'websa'));
    e.upsertPolicy(httpFrom('web', 'api'));
    const r = e.commit();
    assert.deepEqual(r.changed, ['n-api', 'n-web']);
    const api = e.proxy('n-api');
    assert.ok(api);
    const p80 = port(api.ingress, 80);
    assert.equal(p80.l7, 'http');
    assert.deepEqual(p80.rules[0].peers, { any: false, cidrs: ['10.0.0.2/32'], principals: ['td/ns/default/sa/websa'] });
    assert.deepEqual(l7RulesOf(p80.rules[0], 'http'), [{ method: 'GET', path: '/.*' }]);
    // Ingress is enforced (deny by default), egress is not: one allow-all rule on port 0.
    assert.equal(api.ingress.length, 1);
    assert.deepEqual(
      api.egress.map((p) => [p.port, p.protocol, p.rules[0].peers.any]),
      [[0, 'ANY', true]],
    );
  });

  it('a new workload touches only the selectors and proxies it concerns', () => {
    const e = new PolicyEngine();
    for (const app of ['api', 'db', 'web', 'batch']) e.upsertWorkload(workload(app, { app }, `10.0.1.${app.length}${app.charCodeAt(0) % 10}`, `n-${app}`));
    e.upsertPolicy(httpFrom('web', 'api'));
    e.upsertPolicy(httpFrom('batch', 'db'));
    e.commit();
    const selectorsBefore = e.selectors.selectorCount;
    // A second web replica with a new address: api's peers change, db's do not.
    e.upsertWorkload(workload('web-2', { app: 'web', version: 'v2' }, '10.0.2.2', 'n-web-2'));
    assert.deepEqual([...e.dirtyProxies()].sort(), ['n-api', 'n-web-2']);
    const r = e.commit();
    assert.deepEqual(r.changed, ['n-api', 'n-web-2']);
    assert.deepEqual([...port(e.proxy('n-api')!.ingress, 80).rules[0].peers.cidrs].sort(), ['10.0.1.39/32', '10.0.2.2/32']);
    assert.equal(e.selectors.selectorCount, selectorsBefore, 'no selector is created for a workload');
    // Removing it again restores api and drops the proxy.
    e.removeWorkload('Workload/default/web-2');
    const r2 = e.commit();
    assert.deepEqual(r2.changed, ['n-api']);
    assert.deepEqual(r2.removed, ['n-web-2']);
  });

  it("a change that leaves a proxy's policy equal is not reported", () => {
    const e = new PolicyEngine();
    e.upsertWorkload(workload('api', { app: 'api' }, '10.0.0.1', 'n-api'));
    e.upsertWorkload(workload('web', { app: 'web' }, '10.0.0.2', 'n-web'));
    e.upsertPolicy(httpFrom('web', 'api'));
    e.commit();
    // A new label on web creates a new identity, but api's resolved peers are identical.
    e.upsertWorkload(workload('web', { app: 'web', extra: 'x' }, '10.0.0.2', 'n-web'));
    assert.ok(e.dirtyProxies().has('n-api'));
    assert.deepEqual(e.commit().changed, []);
  });

  it('Cilium port semantics: L7 port denies by default; L3-only and all-port rules become allow-all L7', () => {
    const e = new PolicyEngine();
    e.upsertWorkload(workload('api', { app: 'api' }, '10.0.0.1', 'n-api'));
    e.upsertWorkload(workload('web', { app: 'web' }, '10.0.0.2', 'n-web'));
    e.upsertWorkload(workload('ops', { app: 'ops' }, '10.0.0.3', 'n-ops'));
    e.upsertPolicy(httpFrom('web', 'api'));
    e.upsertPolicy(policy('ops-all', { endpointSelector: { matchLabels: { app: 'api' } }, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'ops' } }] }] }));
    e.upsertPolicy(
      policy('web-l4', {
        endpointSelector: { matchLabels: { app: 'api' } },
        ingress: [{ fromCIDR: ['192.168.0.0/16'], toPorts: [{ ports: [{ port: '80', protocol: 'TCP' }] }] }],
      }),
    );
    e.commit();
    const api = e.proxy('n-api')!;
    const p80 = port(api.ingress, 80);
    assert.equal(p80.l7, 'http');
    const byPolicy = new Map(p80.rules.map((r) => [r.origin.policy, r]));
    assert.deepEqual(l7RulesOf(byPolicy.get('default/api-from-web')!, 'http'), [{ method: 'GET', path: '/.*' }]);
    assert.deepEqual(l7RulesOf(byPolicy.get('default/web-l4')!, 'http'), [], 'L4-only rule on an L7 port allows all HTTP');
    assert.deepEqual(l7RulesOf(byPolicy.get('default/ops-all')!, 'http'), [], 'all-ports rule copied onto the L7 port');
    assert.deepEqual(
      port(api.ingress, 0).rules.map((r) => r.origin.policy),
      ['default/ops-all'],
    );
  });

  it("Kafka roles expand to Cilium's API keys", () => {
    const e = new PolicyEngine();
    e.upsertWorkload(workload('k', { app: 'kafka' }, '10.0.0.1', 'n-k'));
    e.upsertPolicy(
      policy('k', {
        endpointSelector: { matchLabels: { app: 'kafka' } },
        ingress: [
          {
            toPorts: [
              {
                ports: [{ port: 9092, protocol: 'TCP' }],
                rules: { kafka: [{ role: 'produce', topic: 't' }, { role: 'CONSUME' }, { apiKey: 'OffsetCommit', apiVersion: '2', clientID: 'c' }, {}] },
              },
            ],
          },
        ],
      }),
    );
    e.commit();
    const kafkaRule = port(e.proxy('n-k')!.ingress, 9092).rules[0];
    const rules = l7RulesOf(kafkaRule, 'kafka');
    assert.deepEqual(rules, [
      { apiKeys: [0, 3, 18], topic: 't' },
      { apiKeys: [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18] },
      { apiKeys: [8], apiVersion: 2, clientID: 'c' },
      { apiKeys: [] },
    ]);
  });

  it('HTTP and Kafka on one port of one proxy is a conflict and nothing is stored', () => {
    const e = new PolicyEngine();
    e.upsertWorkload(workload('k', { app: 'kafka' }, '10.0.0.1', 'n-k'));
    e.upsertPolicy(httpFrom('x', 'kafka'));
    assert.equal(e.commit().conflicts.length, 0);
    const before = JSON.stringify(e.proxy('n-k'));
    e.upsertPolicy(
      policy('kk', {
        endpointSelector: { matchLabels: { app: 'kafka' } },
        ingress: [{ toPorts: [{ ports: [{ port: 80, protocol: 'TCP' }], rules: { kafka: [{ role: 'produce' }] } }] }],
      }),
    );
    const r = e.commit();
    assert.equal(r.conflicts.length, 1);
    assert.match(r.conflicts[0].message, /port 80\/TCP of proxy n-k gets (Kafka|HTTP) rules here but (HTTP|Kafka) rules from default\/kafka-from-x/);
    assert.equal(JSON.stringify(e.proxy('n-k')), before);
  });

  it('HTTP on TCP and Kafka on ANY of the same port is the same conflict (the two entries meet in Envoy)', () => {
    const e = new PolicyEngine();
    e.upsertWorkload(workload('k', { app: 'kafka' }, '10.0.0.1', 'n-k'));
    e.upsertPolicy(httpFrom('x', 'kafka'));
    assert.equal(e.commit().conflicts.length, 0);
    e.upsertPolicy(
      policy('kk', {
        endpointSelector: { matchLabels: { app: 'kafka' } },
        ingress: [{ toPorts: [{ ports: [{ port: 80 }], rules: { kafka: [{ role: 'produce' }] } }] }],
      }),
    );
    const r = e.commit();
    assert.equal(r.conflicts.length, 1, 'reported by the engine (and so by `policy check`), not first by the Envoy build');
    assert.match(r.conflicts[0].message, /port 80\/ANY of proxy n-k gets Kafka rules here but HTTP rules from default\/kafka-from-x/);
  });

  it('a proxy serving several workloads marks rules with the local addresses they apply to', () => {
    const e = new PolicyEngine();
    e.upsertWorkload(workload('api', { app: 'api' }, '10.0.0.1', 'shared'));
    e.upsertWorkload(workload('db', { app: 'db' }, '10.0.0.9', 'shared'));
    e.upsertWorkload(workload('web', { app: 'web' }, '10.0.0.2', 'n-web'));
    e.upsertPolicy(httpFrom('web', 'api'));
    e.commit();
    const shared = e.proxy('shared')!;
    assert.deepEqual(shared.workloads, ['default/api', 'default/db']);
    assert.deepEqual(port(shared.ingress, 80).rules[0].local, ['10.0.0.1/32']);
    const allow = port(shared.ingress, 0).rules[0];
    assert.equal(allow.peers.any, true);
    assert.deepEqual(allow.local, ['10.0.0.9/32'], 'db has no ingress policy: default allow, for db only');
  });

  it('metadata bindings resolve when a node connects', () => {
    const e = new PolicyEngine();
    const k: WorkloadResource = {
      kind: 'Workload',
      name: 'k',
      namespace: 'default',
      labels: { app: 'kafka' },
      spec: { addresses: ['10.0.0.1'], proxy: { nodeMetadata: { NODE_NAME: 'n1' } } },
    };
    e.upsertWorkload(k);
    e.upsertWorkload(workload('api', { app: 'api' }, '10.0.0.2', 'node-x'));
    e.commit();
    assert.equal(e.policyForNode('node-y', { NODE_NAME: 'n2' }), undefined);
    assert.deepEqual(e.policyForNode('node-y', { NODE_NAME: 'n1', other: 1 })?.workloads, ['default/k']);
    assert.equal(e.policyForNode('node-y', { NODE_NAME: 'n1' })?.nodeId, 'node-y');
    assert.deepEqual(e.policyForNode('node-x', { NODE_NAME: 'n1' })?.workloads, ['default/api', 'default/k']);
  });

  it('incremental state equals a from-scratch build after random changes', () => {
    // mulberry32: a seeded PRNG, so a failure reproduces.
    let seed = 7;
    const rand = (n: number): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) % n;
    };
    let compared = 0;
    const apps = ['a', 'b', 'c', 'd', 'e'];
    const e = new PolicyEngine();
    const live = new Map<string, WorkloadResource | PolicyResource>();
    for (let step = 0; step < 300; step++) {
      const op = rand(4);
      if (op < 2) {
        const name = `w${rand(30)}`;
        const w = workload(
          name,
          { app: apps[rand(5)], v: String(rand(3)) },
          `10.1.${rand(200)}.${rand(250) + 1}`,
          `n${rand(8)}`,
          rand(2) ? 'default' : 'other',
        );
        const key = `Workload/${w.namespace}/${name}`;
        const clash = [...live.values()].some((r) => r.kind === 'Workload' && r.spec.addresses[0] === w.spec.addresses[0]);
        if (clash) continue;
        if (live.has(`Workload/default/${name}`) || live.has(`Workload/other/${name}`)) {
          const oldKey = live.has(`Workload/default/${name}`) ? `Workload/default/${name}` : `Workload/other/${name}`;
          e.removeWorkload(oldKey);
          live.delete(oldKey);
        }
        e.upsertWorkload(w);
        live.set(key, w);
      } else if (op === 2) {
        const name = `p${rand(10)}`;
        const ns = rand(3) === 0 ? null : 'default';
        const p = policy(
          name,
          {
            endpointSelector: rand(4) === 0 ? {} : { matchLabels: { app: apps[rand(5)] } },
            ingress: [
              {
                fromEndpoints: [
                  {
                    matchExpressions: [
                      { key: 'app', operator: 'In', values: [apps[rand(5)], apps[rand(5)]] },
                      { key: 'v', operator: rand(2) ? 'NotIn' : 'In', values: [String(rand(3))] },
                    ],
                  },
                ],
                toPorts: [{ ports: [{ port: 80 + rand(2), protocol: 'TCP' }], rules: { http: [{ path: `/p${rand(5)}` }] } }],
              },
            ],
            egress: rand(2)
              ? [
                  {
                    toEndpoints: [
                      { matchLabels: { app: apps[rand(5)] } },
                      { matchExpressions: [{ key: rand(2) ? 'v' : 'missing', operator: rand(2) ? 'Exists' : 'DoesNotExist' }] },
                    ],
                  },
                ]
              : undefined,
          },
          ns,
        );
        e.upsertPolicy(p);
        live.set(`${p.kind}/${ns === null ? name : `default/${name}`}`, p);
      } else {
        const keys = [...live.keys()];
        if (keys.length === 0) continue;
        const key = keys[rand(keys.length)];
        if (key.startsWith('Workload/')) e.removeWorkload(key);
        else e.removePolicy(key);
        live.delete(key);
      }
      e.commit();
      compared++;
      const fresh = new PolicyEngine();
      fresh.sync([...live.values()]);
      fresh.commit();
      assert.deepEqual(JSON.parse(JSON.stringify([...e.proxies()].sort())), JSON.parse(JSON.stringify([...fresh.proxies()].sort())), `step ${step}`);
      if (step % 10 !== 9) continue;
      // A full evaluation (every selector against every identity) must land on exactly the incremental selections.
      assert.equal(selectionsOffNaive(e), 0, `naive evaluation disagrees with the cache at step ${step}`);
      for (const key of e.proxies().keys()) assert.deepEqual(e.compileProxy(key).policy, fresh.proxy(key), `rebuild, step ${step}, ${key}`);
    }
    assert.ok(
      compared >= 200 && e.proxies().size >= 4 && e.policyCount >= 3,
      `the random walk exercised little: ${compared} ${e.proxies().size} ${e.policyCount}`,
    );
  });
});

describe('selector cache against a full evaluation', () => {
  it('after identities come and go, every selection equals every selector tested against every identity', () => {
    const e = new PolicyEngine();
    for (let i = 0; i < 100; i++) e.upsertWorkload(workload(`w${i}`, { app: `a${i % 7}`, v: String(i % 3) }, `10.9.0.${i + 1}`));
    e.upsertPolicy(httpFrom('a1', 'a2'));
    e.upsertPolicy(
      policy('expr', {
        endpointSelector: {
          matchExpressions: [
            { key: 'v', operator: 'NotIn', values: ['0'] },
            { key: 'app', operator: 'In', values: ['a3', 'a4'] },
          ],
        },
      }),
    );
    e.commit();
    assert.equal(selectionsOffNaive(e), 0);
    assert.ok(
      [...e.selectors.entries()].some((cs) => cs.selected.size > 0),
      'something is selected',
    );
    for (let i = 0; i < 50; i++) e.removeWorkload(`Workload/default/w${i}`);
    for (let i = 200; i < 260; i++) e.upsertWorkload(workload(`w${i}`, { app: `a${i % 7}`, v: String(i % 3), x: 'new' }, `10.9.1.${i - 199}`));
    assert.equal(selectionsOffNaive(e), 0);
  });
});

/** How many cached selectors select other identities than a test of every identity gives. */
function selectionsOffNaive(e: PolicyEngine): number {
  let off = 0;
  const identities = [...e.identities.all()];
  for (const cs of e.selectors.entries()) {
    const want = new Set(identities.filter((id) => cs.selector.matches(id.labels)).map((id) => id.id));
    if (want.size !== cs.selected.size || [...want].some((id) => !cs.selected.has(id))) off++;
  }
  return off;
}
