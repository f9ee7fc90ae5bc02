import * as assert from 'node:assert/strict';
import { PolicyEngine } from '../../src/policy/engine';
import type { PolicyResource, WorkloadResource } from '../../src/policy/model';
import { l7RulesOf } from '../../src/policy/compiled';
import { PolicyStore } from '../../src/store/policy-store';

/** The store and the engine as the snapshot builder drives them: real YAML in, compiled policy out. */

const workloadYaml = (name: string, app: string, address: string, proxy: string): string =>
  `apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata:\n  name: ${name}\n  labels: {app: ${app}}\nspec:\n  addresses: [${address}]\n  proxy: ${proxy}\n`;

const policyYaml = (name: string, app: string, rules: string): string =>
  `apiVersion: meshaccel.io/v1alpha1\nkind: L7Policy\nmetadata:\n  name: ${name}\nspec:\n  endpointSelector: {matchLabels: {app: ${app}}}\n  ingress:\n    - toPorts:\n        - ports: [{port: 80, protocol: TCP}]\n          rules:\n${rules}`;

const HTTP = '            http:\n              - path: "/.*"\n';
const KAFKA = '            kafka:\n              - role: produce\n';

/** Node `n1` serves `api` by node id and, through its metadata, `broker` (bound by `NODE_NAME: h1`). */
const twoBindings = (brokerRules: string): { id: string; text: string }[] => [
  {
    id: 'workloads.yaml',
    text: [workloadYaml('api', 'api', '10.0.0.1', '{nodeId: n1}'), workloadYaml('broker', 'broker', '10.0.0.2', '{nodeMetadata: {NODE_NAME: h1}}')].join(
      '---\n',
    ),
  },
  { id: 'api.yaml', text: policyYaml('api', 'api', HTTP) },
  { id: 'broker.yaml', text: policyYaml('broker', 'broker', brokerRules) },
];

describe('PolicyStore', () => {
  it('refuses, per object and naming the field, what the mode it serves cannot enforce', async () => {
    const egress = `apiVersion: meshaccel.io/v1alpha1\nkind: L7Policy\nmetadata:\n  name: out\nspec:\n  endpointSelector: {matchLabels: {app: api}}\n  egress:\n    - toCIDR: [10.9.0.0/16]\n`;
    const objects = [twoBindings(HTTP)[0], { id: 'out.yaml', text: egress }];
    assert.equal((await new PolicyStore().apply([{ type: 'replace-all', source: 'file', objects }])).applied, true, 'standalone mode enforces egress');
    const grpc = await new PolicyStore({ mode: 'grpc' }).apply([{ type: 'replace-all', source: 'file', objects }]);
    assert.equal(grpc.applied, false);
    assert.deepEqual(
      grpc.diagnostics.map((d) => [d.file, d.line, d.path]),
      [['out.yaml', 8, 'spec.egress']],
    );
    assert.match(grpc.diagnostics[0].message, /grpc mode enforces no egress rules/);
  });

  it('refuses Kafka rules with their field when it serves grpc mode, and accepts them for standalone and istio', async () => {
    for (const mode of ['grpc'] as const) {
      const r = await new PolicyStore({ mode }).apply([
        { type: 'replace-all', source: 'file', objects: [{ id: 'broker.yaml', text: policyYaml('broker', 'broker', KAFKA) }] },
      ]);
      assert.equal(r.applied, false, mode);
      const kafka = r.diagnostics.filter((d) => d.path === 'spec.ingress[0].toPorts[0].rules.kafka');
      assert.deepEqual(
        kafka.map((d) => d.file),
        ['broker.yaml'],
        mode,
      );
      assert.match(kafka[0].message, new RegExp(`${mode} mode (does not|cannot) enforce Kafka rules`));
    }
    for (const store of [new PolicyStore(), new PolicyStore({ mode: 'standalone' }), new PolicyStore({ mode: 'istio' })]) {
      assert.equal(
        (await store.apply([{ type: 'replace-all', source: 'file', objects: [{ id: 'broker.yaml', text: policyYaml('broker', 'broker', KAFKA) }] }])).applied,
        true,
      );
    }
  });

  it('applies a batch atomically: one bad object rejects the batch, names that object, and the last good state serves', async () => {
    const store = new PolicyStore();
    const first = await store.apply([{ type: 'replace-all', source: 'file', objects: twoBindings(HTTP) }]);
    assert.equal(first.applied, true);
    assert.deepEqual(first.update?.changed, ['metadata:{"NODE_NAME":"h1"}', 'n1']);
    const good = store.current();
    const r = await store.apply([
      { type: 'upsert', source: 'file', id: 'api.yaml', text: policyYaml('api', 'api', HTTP.replace('/.*', '/v2/.*')) },
      { type: 'upsert', source: 'file', id: 'broker.yaml', text: policyYaml('broker', 'broker', HTTP.replace('/.*', '(?=x)')) },
    ]);
    assert.equal(r.applied, false);
    assert.deepEqual(
      r.diagnostics.map((d) => [d.file, d.path]),
      [['broker.yaml', 'spec.ingress[0].toPorts[0].rules.http[0].path']],
    );
    assert.equal(store.current(), good);
    const rule = store.policyForNode('n1')?.ingress[0].rules[0];
    assert.equal(rule && l7RulesOf(rule, 'http')?.[0].path, '/.*', 'the good half of the batch did not apply');
  });

  it('replace-all replaces the objects of its own source only; remove drops one object', async () => {
    const store = new PolicyStore();
    await store.apply([{ type: 'replace-all', source: 'file', objects: twoBindings(HTTP).slice(0, 2) }]);
    await store.apply([{ type: 'upsert', source: 'k8s', id: 'L7Policy/default/broker', text: policyYaml('broker', 'broker', HTTP) }]);
    assert.deepEqual(store.current().files, ['L7Policy/default/broker', 'api.yaml', 'workloads.yaml']);
    const r = await store.apply([{ type: 'replace-all', source: 'file', objects: twoBindings(HTTP).slice(0, 1) }]);
    assert.deepEqual(r.update?.changed, ['n1'], 'api.yaml is gone, so n1 is back to default allow');
    assert.deepEqual(store.current().files, ['L7Policy/default/broker', 'workloads.yaml']);
    await store.apply([{ type: 'remove', source: 'k8s', id: 'L7Policy/default/broker' }]);
    assert.deepEqual(store.current().files, ['workloads.yaml']);
  });

  it('a node served by two bindings is compiled once per change, and their clash is reported like any other conflict', async () => {
    const store = new PolicyStore();
    await store.apply([{ type: 'replace-all', source: 'file', objects: twoBindings(HTTP) }]);
    const served = store.trackNode('n1', { NODE_NAME: 'h1' });
    assert.deepEqual(served.conflicts, []);
    assert.deepEqual(served.policy?.workloads, ['default/api', 'default/broker']);

    // The broker's rules become Kafka on the port the api's HTTP rules use: each binding alone
    // is fine, the node serving both cannot be. The batch is refused, naming the node's bindings.
    const clash = await store.apply([{ type: 'upsert', source: 'file', id: 'broker.yaml', text: policyYaml('broker', 'broker', KAFKA) }]);
    assert.equal(clash.applied, false);
    assert.equal(clash.diagnostics.length, 1);
    assert.match(
      clash.diagnostics[0].message,
      /port 80\/TCP of proxy n1 gets .* rules here but .* rules from .*; a port has one L7 protocol \(node n1 is served by the bindings metadata:\{"NODE_NAME":"h1"\}, n1/,
    );
    assert.deepEqual(store.nodePolicy('n1', { NODE_NAME: 'h1' }).policy?.workloads, ['default/api', 'default/broker'], 'the last good policy still serves');

    // A node that connects into an existing clash is refused, with the clash as the reason.
    const other = new PolicyStore();
    await other.apply([{ type: 'replace-all', source: 'file', objects: twoBindings(KAFKA) }]);
    const refused = other.trackNode('n1', { NODE_NAME: 'h1' });
    assert.equal(refused.policy, undefined);
    assert.equal(refused.conflicts.length, 1);
    assert.match(refused.conflicts[0].message, /served by the bindings/);
    assert.equal(other.policyForNode('n1', { NODE_NAME: 'h1' }), undefined, 'enforced or refused');
  });
});

describe('policy engine: nodes served by several bindings', () => {
  const workload = (name: string, app: string, address: string, proxy: WorkloadResource['spec']['proxy']): WorkloadResource => ({
    kind: 'Workload',
    name,
    namespace: 'default',
    labels: { app },
    spec: { addresses: [address], proxy },
  });
  const allowFrom = (name: string, to: string, from: string): PolicyResource => ({
    kind: 'L7Policy',
    name,
    namespace: 'default',
    spec: {
      endpointSelector: { matchLabels: { app: to } },
      ingress: [{ fromEndpoints: [{ matchLabels: { app: from } }], toPorts: [{ ports: [{ port: 80, protocol: 'TCP' }], rules: { http: [{ path: '/.*' }] } }] }],
    },
  });

  it('compiles a tracked node once per change that concerns it, never per query', () => {
    const e = new PolicyEngine();
    e.upsertWorkload(workload('api', 'api', '10.0.0.1', { nodeId: 'n1' }));
    e.upsertWorkload(workload('k', 'k', '10.0.0.2', { nodeMetadata: { NODE_NAME: 'h1' } }));
    e.upsertWorkload(workload('web', 'web', '10.0.0.3', { nodeId: 'n-web' }));
    e.upsertWorkload(workload('db', 'db', '10.0.0.4', { nodeId: 'n-db' }));
    e.upsertPolicy(allowFrom('api', 'api', 'web'));
    e.commit();
    const metadata = { NODE_NAME: 'h1' };
    const before = e.compileCount;
    const tracked = e.trackNode('n1', metadata);
    assert.equal(e.compileCount - before, 1, 'one compile when the node connects');
    for (let i = 0; i < 5; i++) assert.deepEqual(e.nodePolicy('n1', metadata), tracked);
    assert.equal(e.compileCount - before, 1, 'queries compile nothing');

    // A change to another proxy compiles that proxy only.
    e.upsertPolicy(allowFrom('db', 'db', 'web'));
    const unrelated = e.compileCount;
    assert.deepEqual(e.commit().nodes, []);
    assert.equal(e.compileCount - unrelated, 1, 'n-db alone');

    // A change to one of its bindings compiles that binding and the node, once each.
    e.upsertWorkload(workload('web-2', 'web', '10.0.0.5', { nodeId: 'n-web-2' }));
    const related = e.compileCount;
    const r = e.commit();
    assert.deepEqual(r.nodes, ['n1']);
    assert.deepEqual(e.policyForNode('n1', metadata)?.ingress.find((p) => p.port === 80)?.rules[0].peers.cidrs, ['10.0.0.3/32', '10.0.0.5/32']);
    assert.equal(e.compileCount - related, 4, 'the bindings n1 and n-db (their peers changed), n-web-2, and the node n1 once');

    e.untrackNode('n1');
    e.upsertWorkload(workload('web-3', 'web', '10.0.0.6', { nodeId: 'n-web-3' }));
    assert.deepEqual(e.commit().nodes, [], 'an untracked node is not compiled');
  });
});
