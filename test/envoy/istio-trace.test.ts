import * as assert from 'node:assert/strict';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { PolicyEngine } from '../../src/policy/engine';
import type { L7PolicySpec, WorkloadResource } from '../../src/policy/model';
import { traceConnection, type TraceQuery } from '../../src/trace/trace';

/**
 * Istio mode's L3/L4 enforcement judged the way the sidecar would: `policy trace --mode istio`
 * applies the generated EnvoyFilter's patches to the inbound chain istiod builds for the port,
 * decodes the ECDS resources meshaccel serves, and runs each RBAC on the chain through gRPC's
 * RBAC engine. Peers present their service account's SPIFFE identity over mTLS.
 */

function workload(name: string, app: string, ip: string, sa: string): WorkloadResource {
  return { kind: 'Workload', name, namespace: 'shop', labels: { app }, spec: { addresses: [ip], serviceAccount: sa, proxy: { nodeId: name } } };
}

const policy = (name: string, spec: L7PolicySpec) => ({ kind: 'L7Policy' as const, name, namespace: 'shop', spec });
const from = (app: string) => [{ matchLabels: { app } }];
const tcp = (port: number) => [{ ports: [{ port, protocol: 'TCP' as const }] }];

describe('istio mode: L3/L4 verdicts through the generated EnvoyFilter and the served network RBAC', () => {
  const engine = new PolicyEngine();
  engine.sync([
    workload('db-0', 'db', '10.0.0.20', 'db'),
    workload('api-0', 'api', '10.0.0.10', 'api'),
    workload('frontend-0', 'frontend', '10.0.0.1', 'default'),
    workload('batch-0', 'batch', '10.0.0.2', 'default'),
    workload('cache-0', 'cache', '10.0.0.50', 'cache'),
    workload('kafka-0', 'kafka', '10.0.0.60', 'kafka'),
    workload('other-0', 'other', '10.0.0.30', 'other'),
    // "db may be reached on 5432/TCP only from app=api"
    policy('db', { endpointSelector: { matchLabels: { app: 'db' } }, ingress: [{ fromEndpoints: from('api'), toPorts: tcp(5432) }] }),
    policy('api', {
      endpointSelector: { matchLabels: { app: 'api' } },
      ingress: [
        { fromEndpoints: from('frontend'), toPorts: [{ ports: [{ port: 8080, protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: '/v1/.*' }] } }] },
        { fromEndpoints: from('other'), toPorts: tcp(9000) },
      ],
    }),
    // Every shop workload may reach the cache, but batch is denied: the deny wins.
    policy('cache', {
      endpointSelector: { matchLabels: { app: 'cache' } },
      ingress: [{ fromEndpoints: [{}] }],
      ingressDeny: [{ fromEndpoints: from('batch'), toPorts: tcp(6379) }],
    }),
    policy('kafka', {
      endpointSelector: { matchLabels: { app: 'kafka' } },
      ingress: [
        { fromEndpoints: from('api'), toPorts: [{ ports: [{ port: 9092, protocol: 'TCP' }], rules: { kafka: [{ role: 'produce', topic: 'orders' }] } }] },
      ],
    }),
  ]);
  const commit = engine.commit();
  assert.deepEqual(commit.conflicts, []);

  const trace = (q: Partial<TraceQuery> & { port: number; src?: string; dst: string }) =>
    traceConnection(
      engine,
      { from: q.from ?? { workload: `Workload/shop/${q.src}-0` }, to: { workload: `Workload/shop/${q.dst}-0` }, port: q.port, http: q.http, kafka: q.kafka },
      DEFAULT_REDIRECT_CONFIG,
      { mode: 'istio' },
    );

  const cases: { name: string; q: Parameters<typeof trace>[0]; allowed: boolean; decided: RegExp }[] = [
    { name: 'the allowed peer on the L4 port', q: { src: 'api', dst: 'db', port: 5432 }, allowed: true, decided: /shop\/db .*spec\.ingress\[0\] \(L4/ },
    { name: 'default deny on selection: another peer on that port', q: { src: 'frontend', dst: 'db', port: 5432 }, allowed: false, decided: /default deny/ },
    { name: 'default deny on selection: the allowed peer on another port', q: { src: 'api', dst: 'db', port: 22 }, allowed: false, decided: /default deny/ },
    {
      name: 'an unselected workload stays allow-all',
      q: { src: 'frontend', dst: 'other', port: 9999 },
      allowed: true,
      decided: /default allow: no policy selects this workload/,
    },
    {
      name: 'HTTP rule: an allowed request',
      q: { src: 'frontend', dst: 'api', port: 8080, http: { method: 'GET', path: '/v1/items' } },
      allowed: true,
      decided: /shop\/api .*spec\.ingress\[0\] \(L7, meshaccel\.rbac\.inbound\.8080/,
    },
    {
      name: 'HTTP rule: a request no rule allows',
      q: { src: 'frontend', dst: 'api', port: 8080, http: { method: 'POST', path: '/v1/items' } },
      allowed: false,
      decided: /default deny .*meshaccel\.rbac\.inbound\.8080/,
    },
    {
      name: "app=batch, which shares the frontend's service account, is not the frontend",
      q: { src: 'batch', dst: 'api', port: 8080, http: { method: 'GET', path: '/v1/items' } },
      allowed: false,
      decided: /default deny .*meshaccel\.l4\.inbound\.all/,
    },
    {
      name: "a peer at the frontend's address with another principal",
      q: { from: { ip: '10.0.0.1', principal: 'spiffe://cluster.local/ns/shop/sa/api' }, dst: 'api', port: 8080, http: { method: 'GET', path: '/v1/x' } },
      allowed: false,
      decided: /default deny .*meshaccel\.l4\.inbound\.all/,
    },
    {
      name: "the frontend's principal from another address",
      q: { from: { ip: '10.0.0.99', principal: 'spiffe://cluster.local/ns/shop/sa/default' }, dst: 'api', port: 8080, http: { method: 'GET', path: '/v1/x' } },
      allowed: false,
      decided: /default deny/,
    },
    { name: 'an L4 port of a workload that also has HTTP rules', q: { src: 'other', dst: 'api', port: 9000 }, allowed: true, decided: /spec\.ingress\[1\]/ },
    {
      name: "that port's rule does not open the HTTP port",
      q: { src: 'other', dst: 'api', port: 8080, http: { method: 'GET', path: '/v1/x' } },
      allowed: false,
      decided: /default deny/,
    },
    { name: 'an all-ports rule', q: { src: 'frontend', dst: 'cache', port: 6379 }, allowed: true, decided: /shop\/cache .*spec\.ingress\[0\]/ },
    {
      name: 'a deny rule wins over the allow',
      q: { src: 'batch', dst: 'cache', port: 6379 },
      allowed: false,
      decided: /denied by shop\/cache .*spec\.ingressDeny\[0\] \(L4, meshaccel\.l4deny\.inbound/,
    },
    { name: 'the deny rule is on its port only', q: { src: 'batch', dst: 'cache', port: 6380 }, allowed: true, decided: /spec\.ingress\[0\]/ },
    {
      name: 'Kafka port: the allowed peer reaches the Kafka filter',
      q: { src: 'api', dst: 'kafka', port: 9092 },
      allowed: true,
      decided: /Kafka requests not judged/,
    },
    {
      name: 'Kafka request: a produce to the allowed topic, judged by the .wasm over the served ECDS config',
      q: { src: 'api', dst: 'kafka', port: 9092, kafka: { request: 'produce', topics: ['orders'] } },
      allowed: true,
      decided: /shop\/kafka .*spec\.ingress\[0\].*kafka\[0\]/,
    },
    {
      name: 'Kafka request: a produce to another topic',
      q: { src: 'api', dst: 'kafka', port: 9092, kafka: { request: 'produce', topics: ['payments'] } },
      allowed: false,
      decided: /default deny/,
    },
    {
      name: 'Kafka port: another peer is denied at L4',
      q: { src: 'frontend', dst: 'kafka', port: 9092 },
      allowed: false,
      decided: /default deny .*meshaccel\.l4\.inbound\.all/,
    },
  ];

  for (const c of cases) {
    it(c.name, () => {
      const r = trace(c.q);
      assert.equal(r.allowed, c.allowed, r.decidedBy);
      assert.match(r.decidedBy, c.decided);
    });
  }

  it("walks the chains Istio builds: an L7 port's Service chain, the passthrough chain for other ports", () => {
    const http = trace({ src: 'frontend', dst: 'api', port: 8080, http: { method: 'GET', path: '/v1/items' } }).sides[0];
    assert.equal(http.chain, '0.0.0.0_8080');
    assert.deepEqual(
      http.filters.map((f) => f.filter),
      ['meshaccel.l4deny.inbound', 'meshaccel.l4.inbound.all', 'meshaccel.rbac.inbound.8080'],
    );
    const l4 = trace({ src: 'api', dst: 'db', port: 5432 }).sides[0];
    assert.equal(l4.chain, 'virtualInbound');
    assert.deepEqual(
      l4.filters.map((f) => f.filter),
      ['meshaccel.l4deny.inbound', 'meshaccel.l4.inbound.all', 'meshaccel.l4.inbound.default'],
    );
    const kafka = trace({ src: 'api', dst: 'kafka', port: 9092 }).sides[0];
    assert.equal(kafka.chain, '0.0.0.0_9092');
    assert.equal(kafka.kafkaUnjudged, true);
  });
});
