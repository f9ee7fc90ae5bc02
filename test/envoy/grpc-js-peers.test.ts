import * as assert from 'node:assert/strict';
import { buildProxyResourceJson, UnenforceableError } from '../../src/envoy/proxy-resources';
import { grpcImplementationOf, type GrpcImplementation } from '../../src/envoy/builders/grpc-js-peers';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import { unenforceable } from '../../src/policy/enforceability';
import { PolicyEngine } from '../../src/policy/engine';
import { loadTexts } from '../../src/policy/loader';
import type { L7PolicySpec } from '../../src/policy/model';
import { formatPath } from '../../src/json/path';
import { NodeSnapshotBuilder } from '../../src/server/node-snapshot-builder';
import { PolicyStore } from '../../src/store/policy-store';
import { TypeUrl } from '../../src/resource/type-urls';

/**
 * What grpc mode serves an XdsServer of @grpc/grpc-js-xds (builders/grpc-js-peers.ts): no IPv6
 * range, no deny rule that names its peers; and what it serves other gRPC servers (unchanged).
 * The real server's behaviour behind it is in grpc-js-family-real.test.ts.
 */

const WORKLOADS = [
  ['srv', ['10.0.0.5', 'fd00::5'], 'srv'],
  ['web', ['10.0.0.7', 'fd00::7'], 'web'],
]
  .map(
    ([name, addresses, node]) =>
      `apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata: {name: ${name as string}, labels: {app: ${name as string}}}\nspec:\n  addresses: [${(addresses as string[]).map((a) => `"${a}"`).join(', ')}]\n  proxy: {nodeId: ${node as string}}\n`,
  )
  .join('---\n');

function policyText(spec: string): string {
  return `apiVersion: meshaccel.io/v1alpha1\nkind: L7Policy\nmetadata: {name: p}\nspec:\n  endpointSelector: {matchLabels: {app: srv}}\n${spec}`;
}

function compiled(spec: string): CompiledProxyPolicy {
  const loaded = loadTexts(
    new Map([
      ['w.yaml', WORKLOADS],
      ['p.yaml', policyText(spec)],
    ]),
    undefined,
    { mode: 'grpc' },
  );
  assert.deepEqual(loaded.diagnostics, []);
  const engine = new PolicyEngine();
  engine.sync(loaded.resources);
  assert.deepEqual(engine.commit().conflicts, []);
  const p = engine.proxy('srv');
  assert.ok(p);
  return p;
}

function build(p: CompiledProxyPolicy, implementation?: GrpcImplementation): string {
  const r = buildProxyResourceJson(p, { mode: 'grpc', redirect: DEFAULT_REDIRECT_CONFIG, servedPorts: [8080], grpcServerImplementation: implementation });
  return JSON.stringify(r.resources.map((x) => x.json));
}

const prefixes = (json: string): string[] => [...json.matchAll(/"address_prefix":"([^"]+)","prefix_len":(\d+)/g)].map((m) => `${m[1]}/${m[2]}`);

describe('grpc mode for XdsServers of @grpc/grpc-js-xds', () => {
  it('tells grpc-js from other implementations by the node user agent', () => {
    assert.equal(grpcImplementationOf('gRPC Node Pure JS'), 'grpc-js');
    assert.equal(grpcImplementationOf(''), 'grpc-js', 'an implementation that does not say');
    assert.equal(grpcImplementationOf('gRPC Go'), 'other');
    assert.equal(grpcImplementationOf('gRPC Java'), 'other');
    assert.equal(grpcImplementationOf('envoy'), 'other');
  });

  it('allow rules: no IPv6 range for grpc-js (world and workloads keep IPv4 and principals); everything for the others', () => {
    const p = compiled('  ingress:\n    - fromEndpoints: [{matchLabels: {app: web}}]\n      fromEntities: [world]\n      fromCIDR: ["192.0.2.0/24"]\n');
    const js = build(p);
    assert.deepEqual(
      prefixes(js).filter((x) => x.includes(':')),
      [],
    );
    assert.ok(prefixes(js).includes('10.0.0.7/32') && prefixes(js).includes('0.0.0.0/0') && prefixes(js).includes('192.0.2.0/24'), js);
    assert.match(js, /spiffe:\/\/cluster\.local\/ns\/default\/sa\/default/);
    assert.equal(build(p, 'grpc-js'), js, 'grpc-js is the default');
    const other = prefixes(build(p, 'other'));
    assert.ok(other.includes('fd00::7/128') && other.includes('::/0'), other.join(' '));
  });

  it('an IPv6 exception of an IPv4 range is left out (it never matched what the range does); an IPv4 one stays', () => {
    const p = compiled('  ingress:\n    - fromCIDRSet: [{cidr: "10.0.0.0/8", except: ["10.0.0.0/16"]}]\n');
    assert.deepEqual(prefixes(build(p)), ['10.0.0.0/8', '10.0.0.0/16']);
  });

  it('refuses what grpc-js cannot enforce at its field, with file and line, and serves it to the others', () => {
    const cases: [string, string][] = [
      ['  ingressDeny:\n    - fromCIDR: ["10.0.0.7/32"]\n', 'spec.ingressDeny[0].fromCIDR[0]'],
      ['  ingressDeny:\n    - fromCIDRSet: [{cidr: "fd00::/8"}]\n', 'spec.ingressDeny[0].fromCIDRSet[0].cidr'],
      ['  ingressDeny:\n    - fromEntities: [world]\n', 'spec.ingressDeny[0].fromEntities[0]'],
      ['  ingressDeny:\n    - fromEntities: [cluster]\n', 'spec.ingressDeny[0].fromEntities[0]'],
      ['  ingressDeny:\n    - fromEndpoints: [{matchLabels: {app: web}}]\n', 'spec.ingressDeny[0].fromEndpoints[0]'],
      ['  ingress:\n    - fromCIDR: ["fd00::/8"]\n', 'spec.ingress[0].fromCIDR[0]'],
      ['  ingress:\n    - fromCIDRSet: [{cidr: "fd00::/8", except: ["fd00::/16"]}]\n', 'spec.ingress[0].fromCIDRSet[0].cidr'],
    ];
    for (const [spec, field] of cases) {
      const p = compiled(spec);
      assert.throws(
        () => build(p),
        (e: unknown) =>
          e instanceof UnenforceableError && e.message.includes(`p.yaml:7: default/p ${field}: `) && e.message.includes('an XdsServer of @grpc/grpc-js-xds'),
        field,
      );
      build(p, 'other');
    }
  });

  it('serves deny rules for every peer, and refuses a compiled deny rule with peers that bypassed the loader', () => {
    assert.match(
      build(compiled('  ingressDeny:\n    - fromEntities: [all]\n')),
      /"action":"DENY","policies":\{"meshaccel:default\/p#ingressDeny\[0\]@8080":\{"permissions":\[\{"any":true\}\],"principals":\[\{"any":true\}\]/,
    );
    const p = compiled('  ingressDeny:\n    - fromCIDR: ["10.0.0.7/32"]\n');
    const bare: CompiledProxyPolicy = {
      ...p,
      ingressDeny: p.ingressDeny?.map((d) => ({
        ...d,
        rules: d.rules.map((r) => ({ ...r, origin: { policy: 'x/api', rule: { section: 'ingressDeny', index: 2 } } })),
      })),
    };
    assert.throws(
      () => build(bare),
      (e: unknown) =>
        e instanceof UnenforceableError && /x\/api spec\.ingressDeny\[2\]: a deny rule that names its peers by address or principal/.test(e.message),
    );
  });

  it('policy check --mode grpc refuses the same fields (unless no grpc-js server is served); the loader serve uses does not', () => {
    const spec: L7PolicySpec = {
      endpointSelector: {},
      ingress: [{ fromCIDR: ['10.0.0.0/8', 'fd00::/8'], fromEntities: ['world'] }],
      ingressDeny: [{ fromEntities: ['all'] }, { fromCIDR: ['10.1.0.0/16'], fromEndpoints: [{}] }],
    };
    assert.deepEqual(
      unenforceable(spec, { mode: 'grpc', grpcJs: true }).map((e) => formatPath(e.path)),
      ['spec.ingress[0].fromCIDR[1]', 'spec.ingressDeny[1].fromCIDR[0]', 'spec.ingressDeny[1].fromEndpoints[0]'],
    );
    assert.deepEqual(unenforceable(spec, { mode: 'grpc' }), []);
    assert.deepEqual(unenforceable(spec, { mode: 'grpc', grpcJs: false }), []);
    assert.deepEqual(unenforceable(spec, { mode: 'standalone', grpcJs: true }), []);
  });

  it('serve builds each node by its user agent: refused for grpc-js (kept on the last good), served for grpc-go', async () => {
    const store = new PolicyStore({ mode: 'grpc' });
    await store.apply([
      {
        type: 'replace-all',
        source: 'file',
        objects: [
          { id: 'w.yaml', text: WORKLOADS },
          { id: 'p.yaml', text: policyText('  ingress:\n    - fromEntities: [all]\n  ingressDeny:\n    - fromCIDR: ["10.0.0.7/32"]\n') },
        ],
      },
    ]);
    const builder = NodeSnapshotBuilder.forStore(
      store,
      { mode: 'grpc', redirect: DEFAULT_REDIRECT_CONFIG, servedPorts: [8080] },
      { info: () => undefined, warn: () => undefined },
    );
    builder.nodeKey({ id: 'srv', cluster: '', metadata: {}, userAgentName: 'gRPC Node Pure JS' });
    await builder.settled();
    assert.match(
      builder.buildFailures()[0]?.message ?? '',
      /p\.yaml:9: default\/p spec\.ingressDeny\[0\]\.fromCIDR\[0\]: 10\.0\.0\.7\/32: an XdsServer of @grpc\/grpc-js-xds/,
    );
    assert.equal(builder.getSnapshot('srv'), undefined, 'nothing served: never a partial configuration');
    // The same node id reconnecting as grpc-go is rebuilt for what it is.
    builder.nodeKey({ id: 'srv', cluster: '', metadata: {}, userAgentName: 'gRPC Go' });
    await builder.settled();
    assert.deepEqual(builder.buildFailures(), []);
    assert.equal(builder.getSnapshot('srv')?.resources(TypeUrl.Listener).size, 1);
  });
});
