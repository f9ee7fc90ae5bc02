import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { buildProxyResourceJson, UnenforceableError } from '../../src/envoy/proxy-resources';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import { formatDiagnostic } from '../../src/policy/diagnostics';
import type { EnforcementMode } from '../../src/policy/enforceability';
import { PolicyEngine } from '../../src/policy/engine';
import { loadFiles } from '../../src/policy/loader';
import { traceConnection } from '../../src/trace/trace';
import { ROOT, policyDoc, tmpDir } from './helpers';

/**
 * Rule 1: a policy meshaccel accepts is enforced exactly as written, or refused with file, line
 * and field. The first half checks refusals; the second reproduces the findings (policies
 * that used to be accepted and not enforced) through policy trace.
 */

function check(text: string, mode?: EnforcementMode): string[] {
  const dir = tmpDir('refuse');
  const file = path.join(dir, 'policy.yaml');
  fs.writeFileSync(file, text);
  try {
    return loadFiles([file], undefined, { mode }).diagnostics.map((d) => formatDiagnostic(d).replace(file, 'policy.yaml'));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const ingressTo = (port: string, extra = ''): string =>
  policyDoc(
    `  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n    - fromEndpoints: [{matchLabels: {app: api}}]\n      toPorts:\n        - ports: [{port: ${port}}]\n${extra}`,
    'db',
  );

describe('what cannot be enforced is refused (file:line:field, never a warning)', () => {
  it('Kafka rules in grpc mode (standalone and istio enforce them with the Kafka filter)', () => {
    for (const mode of ['grpc'] as const) {
      const out = check(ingressTo('9092', '          rules:\n            kafka: [{role: produce, topic: orders}]\n'), mode);
      assert.ok(
        out.some((l) =>
          new RegExp(
            `^policy\\.yaml:13:20: document 1 \\(L7Policy default/db\\): spec\\.ingress\\[0\\]\\.toPorts\\[0\\]\\.rules\\.kafka: ${mode} mode (does not|cannot) enforce Kafka rules`,
          ).test(l),
        ),
        `${mode}:\n${out.join('\n')}`,
      );
    }
    assert.deepEqual(check(ingressTo('9092', '          rules:\n            kafka: [{role: produce, topic: orders}]\n'), 'standalone'), []);
    assert.deepEqual(check(ingressTo('9092', '          rules:\n            kafka: [{role: produce, topic: orders}]\n'), 'istio'), []);
  });

  it('UDP rules (meshaccel captures TCP only)', () => {
    assert.deepEqual(check(policyDoc('  endpointSelector: {}\n  ingress:\n    - toPorts:\n        - ports: [{port: 53, protocol: UDP}]\n')), [
      'policy.yaml:10:40: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].ports[0].protocol: meshaccel captures and enforces TCP only; a UDP rule cannot be enforced (use TCP, or ANY for the TCP part)',
    ]);
  });

  it('istio mode enforces ingress (L3/L4, deny rules, default deny) and refuses egress', () => {
    const out = check(
      `${ingressTo('8080', '          rules:\n            http: [{method: GET}]\n')}  egress:\n    - toCIDR: [10.0.0.0/8]\n  ingressDeny:\n    - fromCIDR: [10.1.0.0/16]\n`,
      'istio',
    );
    assert.deepEqual(
      out.map((l) => l.replace(/: (istio mode [a-z ]+).*$/, ': $1')),
      ['policy.yaml:15:5: document 1 (L7Policy default/db): spec.egress: istio mode enforces no egress rules '],
    );
  });

  it('grpc mode refuses egress but enforces ingress L3/L4', () => {
    assert.deepEqual(check(ingressTo('5432'), 'grpc'), []);
    const out = check(policyDoc('  endpointSelector: {}\n  egress:\n    - toCIDR: [10.0.0.0/8]\n'), 'grpc');
    assert.deepEqual(out, [
      'policy.yaml:9:5: document 1 (L7Policy default/api): spec.egress: grpc mode enforces no egress rules: a proxyless gRPC client runs no RBAC',
    ]);
  });

  it('entities meshaccel has no notion of, deny rules with L7 rules, and exceptions outside their CIDR', () => {
    assert.match(
      check(policyDoc('  endpointSelector: {}\n  ingress:\n    - fromEntities: [host]\n')).join('\n'),
      /spec\.ingress\[0\]\.fromEntities\[0\]: entity "host" is not enforced by meshaccel/,
    );
    assert.match(
      check(policyDoc('  endpointSelector: {}\n  ingressDeny:\n    - toPorts:\n        - ports: [{port: 80}]\n          rules: {http: [{}]}\n')).join('\n'),
      /spec\.ingressDeny\[0\]\.toPorts\[0\]\.rules: ingressDeny rules are L3\/L4 only/,
    );
    assert.match(
      check(policyDoc('  endpointSelector: {}\n  ingress:\n    - fromCIDRSet: [{cidr: 10.0.0.0/8, except: [11.0.0.0/16]}]\n')).join('\n'),
      /fromCIDRSet\[0\]\.except\[0\]: "11\.0\.0\.0\/16" is not inside 10\.0\.0\.0\/8/,
    );
  });

  it('the builders refuse too, for compiled policies that did not come through the loader', () => {
    const l4: CompiledProxyPolicy = {
      nodeId: 'n',
      workloads: ['a/db'],
      ingress: [
        {
          port: 5432,
          protocol: 'TCP',
          rules: [
            {
              origin: { policy: 'a/db', file: 'p.yaml', line: 3, rule: { section: 'ingress', index: 0 } },
              peers: { any: false, cidrs: ['10.0.0.2/32'], principals: [] },
            },
          ],
        },
      ],
      egress: [
        {
          port: 443,
          protocol: 'TCP',
          rules: [{ origin: { policy: 'a/out', rule: { section: 'egress', index: 0 } }, peers: { any: false, cidrs: ['10.0.0.0/8'], principals: [] } }],
        },
      ],
    };
    assert.throws(
      () => buildProxyResourceJson(l4, { mode: 'istio', redirect: DEFAULT_REDIRECT_CONFIG }),
      (e: unknown) => e instanceof UnenforceableError && /istio mode enforces no egress rules .*; refused, from a\/out/.test(e.message),
    );
    assert.doesNotThrow(() => buildProxyResourceJson({ ...l4, egress: [] }, { mode: 'istio', redirect: DEFAULT_REDIRECT_CONFIG }));
    assert.throws(() => buildProxyResourceJson(l4, { mode: 'grpc', redirect: DEFAULT_REDIRECT_CONFIG }), /grpc mode enforces no egress rules/);
    assert.doesNotThrow(() => buildProxyResourceJson(l4, { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG }));
  });
});

describe("the issue's reproductions are enforced now (policy trace over the served resources)", () => {
  const dir = tmpDir('repro');
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const workload = (name: string, app: string, ip: string): string =>
    `apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata: {name: ${name}, namespace: shop, labels: {app: ${app}}}\nspec: {addresses: [${ip}], proxy: {nodeId: ${name}}}\n`;
  fs.writeFileSync(
    path.join(dir, 'w.yaml'),
    [workload('db-0', 'db', '10.0.0.5'), workload('api-0', 'api', '10.0.0.6'), workload('web-0', 'web', '10.0.0.7')].join('---\n'),
  );
  fs.writeFileSync(
    path.join(dir, 'db.yaml'),
    policyDoc(
      '  endpointSelector: {matchLabels: {app: db}}\n  ingress:\n    - fromEndpoints: [{matchLabels: {app: api}}]\n      toPorts: [{ports: [{port: 5432, protocol: TCP}]}]\n',
      'db-from-api',
      'shop',
    ),
  );
  const engine = new PolicyEngine();
  const loaded = loadFiles([path.join(dir, 'w.yaml'), path.join(dir, 'db.yaml')]);
  const trace = (from: string, to: string, port: number): boolean =>
    traceConnection(engine, { from: { workload: `Workload/shop/${from}` }, to: { workload: `Workload/shop/${to}` }, port }, DEFAULT_REDIRECT_CONFIG).allowed;
  before(() => {
    assert.deepEqual(loaded.diagnostics, []);
    engine.sync(loaded.resources);
    assert.deepEqual(engine.commit().conflicts, []);
  });

  it('"db on 5432/TCP only from app=api": api passes, others do not, and no other port of db is open', () => {
    assert.equal(trace('api-0', 'db-0', 5432), true);
    assert.equal(trace('web-0', 'db-0', 5432), false);
    assert.equal(trace('api-0', 'db-0', 22), false);
    assert.equal(trace('web-0', 'db-0', 6379), false);
  });

  it('egress-cidr.yaml: the api workload reaches the payment network on 443 and nothing else', () => {
    const examples = loadFiles([
      ...['egress-cidr.yaml'].map((f) => path.join(ROOT, 'examples', 'policies', f)),
      path.join(ROOT, 'examples', 'workloads', 'shop.yaml'),
      path.join(ROOT, 'examples', 'workloads', 'ops.yaml'),
    ]);
    const e = new PolicyEngine();
    e.sync(examples.resources);
    e.commit();
    const egress = (ip: string, port: number): boolean =>
      traceConnection(e, { from: { workload: 'Workload/shop/api-0' }, to: { ip }, port }, DEFAULT_REDIRECT_CONFIG).allowed;
    assert.equal(egress('203.0.113.10', 443), true);
    assert.equal(egress('203.0.113.10', 80), false);
    assert.equal(egress('8.8.8.8', 443), false);
    assert.equal(egress('8.8.8.8', 53), false);
  });
});
