import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { buildProxyResourceJson, buildProxyResources } from '../../src/envoy/proxy-resources';
import { lookupType } from '../../src/envoy/protos';
import { loadFiles } from '../../src/policy/loader';
import { PolicyEngine } from '../../src/policy/engine';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import { tmpDir } from '../policy/helpers';

interface RbacEngine {
  apply(info: Record<string, unknown>): boolean;
}
const { parseConfig } = require('@grpc/grpc-js-xds/build/src/rbac') as { parseConfig(rules: unknown): RbacEngine };

function compile(yaml: string, nodeId: string, metadata: Record<string, unknown> = {}): CompiledProxyPolicy {
  const dir = tmpDir('failclosed');
  const file = path.join(dir, 'all.yaml');
  fs.writeFileSync(file, yaml);
  try {
    const loaded = loadFiles([file]);
    assert.deepEqual(loaded.diagnostics, []);
    const engine = new PolicyEngine();
    engine.sync(loaded.resources);
    engine.commit();
    const p = engine.policyForNode(nodeId, metadata);
    assert.ok(p, 'a policy for the node');
    return p;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function rbacFor(compiled: CompiledProxyPolicy, port: number): RbacEngine {
  const res = buildProxyResources(compiled, { mode: 'istio', redirect: DEFAULT_REDIRECT_CONFIG });
  const r = res.find((x) => x.name === `meshaccel.rbac.inbound.${port}`);
  assert.ok(r, `RBAC for port ${port}`);
  const tec = lookupType('envoy.config.core.v3.TypedExtensionConfig').decode(r.value) as unknown as { typed_config: { value: Uint8Array } };
  const R = lookupType('envoy.extensions.filters.http.rbac.v3.RBAC');
  const rbac = R.toObject(R.decode(tec.typed_config.value), { enums: String, longs: String, defaults: true, oneofs: true }) as { rules: unknown };
  return parseConfig(rbac.rules);
}

function allowed(engine: RbacEngine, method: string, urlPath: string, to: string): boolean {
  const md = new grpc.Metadata();
  md.set(':method', method);
  md.set(':path', urlPath);
  md.set(':authority', 'svc');
  return engine.apply({ headers: md, urlPath, sourceIp: '10.9.9.9', destinationIp: to, destinationPort: 80, tls: false, peerCertificate: null });
}

const workload = (name: string, ns: string, app: string, addr: string) => `apiVersion: meshaccel.io/v1alpha1
kind: Workload
metadata: {name: ${name}, namespace: ${ns}, labels: {app: ${app}}}
spec:
  addresses: [${addr}]
  proxy: {nodeMetadata: {NODE: n1}}
---
`;

/** a/p: workload w1 (app=one) accepts only GET /public on port 80. */
const RESTRICT_W1 = `apiVersion: meshaccel.io/v1alpha1
kind: L7Policy
metadata: {name: p, namespace: a}
spec:
  endpointSelector: {matchLabels: {app: one}}
  ingress:
    - toPorts:
        - ports: [{port: 80, protocol: TCP}]
          rules: {http: [{method: GET, path: /public}]}
`;

/** Policies must never compile to something more permissive than written. */
describe('compiled RBAC fails closed', () => {
  it("on a proxy serving two workloads, a rule for one does not open the port for the other (and the other's default allow does not open the first)", () => {
    const compiled = compile(workload('w1', 'a', 'one', '10.0.0.1') + workload('w2', 'a', 'two', '10.0.0.2') + RESTRICT_W1, 'any-id', { NODE: 'n1' });
    const rbac = rbacFor(compiled, 80);
    assert.equal(allowed(rbac, 'GET', '/public', '10.0.0.1'), true);
    assert.equal(allowed(rbac, 'POST', '/admin', '10.0.0.1'), false, 'w1 is restricted to GET /public');
    assert.equal(allowed(rbac, 'POST', '/admin', '10.0.0.2'), true, 'w2 has no policy: default allow');
  });

  it('a namespaced policy cannot select workloads of another namespace', () => {
    const compiled = compile(
      workload('w1', 'a', 'one', '10.0.0.1') +
        RESTRICT_W1 +
        `---
apiVersion: meshaccel.io/v1alpha1
kind: L7Policy
metadata: {name: evil, namespace: tenant-b}
spec:
  endpointSelector:
    matchExpressions: [{key: meshaccel.io/namespace, operator: Exists}]
  ingress:
    - toPorts:
        - ports: [{port: 80, protocol: TCP}]
`,
      'any-id',
      { NODE: 'n1' },
    );
    const rbac = rbacFor(compiled, 80);
    assert.equal(allowed(rbac, 'POST', '/admin', '10.0.0.1'), false, 'tenant-b/evil must not widen a/p');
    assert.ok(!JSON.stringify(compiled).includes('tenant-b/evil'), 'evil selects nothing outside its namespace');
  });

  it('refuses a port with HTTP rules on TCP and Kafka rules on ANY instead of dropping either', () => {
    const compiled: CompiledProxyPolicy = {
      nodeId: 'n',
      workloads: [],
      ingress: [
        {
          port: 80,
          protocol: 'TCP',
          l7: 'http',
          rules: [{ origin: { policy: 'a/http' }, peers: { any: true, cidrs: [], principals: [] }, l7: { kind: 'http', rules: [{ method: 'GET' }] } }],
        },
        {
          port: 80,
          protocol: 'ANY',
          l7: 'kafka',
          rules: [{ origin: { policy: 'a/kafka' }, peers: { any: true, cidrs: [], principals: [] }, l7: { kind: 'kafka', rules: [{ apiKeys: [0] }] } }],
        },
      ],
      egress: [],
    };
    assert.throws(
      () => buildProxyResourceJson(compiled, { mode: 'istio', redirect: DEFAULT_REDIRECT_CONFIG }),
      /port 80 has both .* rules \(from a\/(http|kafka), a\/(http|kafka)\)/,
    );
  });

  it('refuses Kafka rules in the modes that do not enforce them, instead of serving them with a warning', () => {
    const compiled: CompiledProxyPolicy = {
      nodeId: 'n',
      workloads: [],
      ingress: [
        {
          port: 9092,
          protocol: 'TCP',
          l7: 'kafka',
          rules: [
            {
              origin: { policy: 'a/kafka' },
              peers: { any: true, cidrs: [], principals: [] },
              l7: { kind: 'kafka', rules: [{ apiKeys: [0], topic: 'orders' }] },
            },
          ],
        },
      ],
      egress: [],
    };
    for (const mode of ['grpc'] as const) {
      assert.throws(
        () => buildProxyResourceJson(compiled, { mode, redirect: DEFAULT_REDIRECT_CONFIG }),
        new RegExp(`Kafka rules on port 9092 are not enforced by Envoy in ${mode} mode; refused, from a/kafka`),
        mode,
      );
    }
  });
});
