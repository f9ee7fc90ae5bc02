import * as assert from 'node:assert/strict';
import { NodeSnapshotBuilder as PolicySnapshotSource } from '../../src/server/node-snapshot-builder';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import type { NodeInfo } from '../../src/xds/cache';
import type { Snapshot } from '../../src/xds/snapshot';
import { NodeSnapshotBuilder } from '../../src/server/node-snapshot-builder';
import { PolicyStore } from '../../src/store/policy-store';

describe('PolicySnapshotSource', () => {
  it('builds a node once per metadata it connects with, and again when the metadata changes', () => {
    const built: string[] = [];
    const source = new PolicySnapshotSource(
      { policyForNode: (id, metadata) => void built.push(`${id} ${JSON.stringify(metadata)}`) },
      { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG },
      { info: () => undefined, warn: () => undefined },
    );
    const node = (metadata: Record<string, unknown>): NodeInfo => ({ id: 'p', cluster: '', metadata, userAgentName: '' });
    assert.equal(source.nodeKey(node({ app: 'a' })), 'p');
    source.nodeKey(node({ app: 'a' }));
    assert.deepEqual(built, ['p {"app":"a"}']);
    source.nodeKey(node({ app: 'b' }));
    assert.deepEqual(built, ['p {"app":"a"}', 'p {"app":"b"}']);
    assert.ok(source.getSnapshot('p'));
    source.policiesChanged((n) => n.metadata.app === 'b');
    assert.equal(built.length, 3);
  });
});

describe('NodeSnapshotBuilder on a policy store', () => {
  const quiet = { info: () => undefined, warn: () => undefined };
  const workloads = ['a', 'b']
    .map(
      (n, i) =>
        `apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata:\n  name: ${n}\n  labels: {app: ${n}}\nspec:\n  addresses: [10.0.0.${i + 1}]\n  proxy: {nodeId: ${n}}\n`,
    )
    .join('---\n');
  const allow = (path: string): string =>
    `apiVersion: meshaccel.io/v1alpha1\nkind: L7Policy\nmetadata:\n  name: a\nspec:\n  endpointSelector: {matchLabels: {app: a}}\n  ingress:\n    - fromEndpoints: [{matchLabels: {app: b}}]\n      toPorts:\n        - ports: [{port: 80, protocol: TCP}]\n          rules:\n            http:\n              - path: "${path}"\n`;
  const node = (id: string): NodeInfo => ({ id, cluster: '', metadata: {}, userAgentName: '' });
  const edit = async (store: PolicyStore, builder: NodeSnapshotBuilder, path: string): Promise<void> => {
    const r = await store.apply([{ type: 'upsert', source: 'file', id: 'a.yaml', text: allow(path) }]);
    assert.deepEqual(r.update?.changed, ['a']);
    await builder.settled();
  };

  it('a node whose last stream ended is forgotten after the grace period and no longer rebuilt on policy changes', async () => {
    const store = new PolicyStore();
    await store.apply([
      {
        type: 'replace-all',
        source: 'file',
        objects: [
          { id: 'w.yaml', text: workloads },
          { id: 'a.yaml', text: allow('/v1/.*') },
        ],
      },
    ]);
    const builder = NodeSnapshotBuilder.forStore(store, { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG }, quiet, { graceMs: 50 });
    // Two streams of node `a`, as an Envoy with ADS plus a per-type stream opens them.
    const key = builder.nodeKey(node('a'));
    const pushed: Snapshot[] = [];
    const stop1 = builder.watch(key, (s) => pushed.push(s));
    builder.nodeKey(node('a'));
    const stop2 = builder.watch(key, (s) => pushed.push(s));
    assert.equal(builder.buildCount, 1);

    await edit(store, builder, '/v2/.*');
    assert.equal(builder.buildCount, 2, 'a connected node is rebuilt');
    assert.equal(pushed.length, 2, 'and both streams get the new snapshot');

    stop1();
    stop1(); // an unsubscribe called twice counts once
    await new Promise((r) => setTimeout(r, 120));
    await edit(store, builder, '/v3/.*');
    assert.equal(builder.buildCount, 3, 'one stream still watches: still connected');
    assert.deepEqual(builder.knownNodes(), ['a']);

    stop2();
    await edit(store, builder, '/v4/.*');
    assert.equal(builder.buildCount, 4, 'within the grace period the node is still kept current (a reconnect costs nothing)');
    await new Promise((r) => setTimeout(r, 120));
    assert.deepEqual(builder.knownNodes(), []);
    assert.equal(builder.getSnapshot('a'), undefined, 'its snapshot is dropped');
    await edit(store, builder, '/v5/.*');
    assert.equal(builder.buildCount, 4, 'a node that disconnected is not rebuilt');

    // It reconnects: built afresh from the current policy.
    builder.nodeKey(node('a'));
    assert.equal(builder.buildCount, 5);
    assert.ok(builder.getSnapshot('a'));
  });

  it('a node that connects into a clash between its bindings is refused and reported, not served a partial policy', async () => {
    const store = new PolicyStore();
    const broker =
      `apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata:\n  name: k\n  labels: {app: k}\nspec:\n  addresses: [10.0.0.9]\n  proxy: {nodeMetadata: {NODE_NAME: h1}}\n---\n` +
      allow('/.*')
        .replace('name: a', 'name: k')
        .replace('{app: a}', '{app: k}')
        .replace(/http:\n\s+- path: "\/\.\*"/, 'kafka:\n              - role: produce');
    const r = await store.apply([
      {
        type: 'replace-all',
        source: 'file',
        objects: [
          { id: 'w.yaml', text: workloads },
          { id: 'a.yaml', text: allow('/.*') },
          { id: 'k.yaml', text: broker },
        ],
      },
    ]);
    assert.equal(r.applied, true, 'each binding alone is fine');
    const builder = NodeSnapshotBuilder.forStore(store, { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG }, quiet);
    builder.nodeKey({ id: 'a', cluster: '', metadata: { NODE_NAME: 'h1' }, userAgentName: '' });
    assert.equal(builder.getSnapshot('a'), undefined, 'nothing is served');
    const failures = builder.buildFailures();
    assert.equal(failures.length, 1);
    assert.match(failures[0].message, /port 80\/TCP of proxy a gets .* a port has one L7 protocol \(node a is served by the bindings a, metadata:/);
  });

  it('builds no snapshot at all until the store has a configuration, then one for every waiting node, bound or not (#12 item 6)', async () => {
    const store = new PolicyStore();
    // The files failed at start-up: nothing is committed.
    assert.equal((await store.apply([{ type: 'replace-all', source: 'file', objects: [{ id: 'a.yaml', text: 'kind: L7Policy\n' }] }])).applied, false);
    const builder = NodeSnapshotBuilder.forStore(store, { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG }, quiet);
    const pushed: string[] = [];
    for (const id of ['a', 'unbound']) builder.watch(builder.nodeKey(node(id)), () => pushed.push(id));
    assert.equal(builder.getSnapshot('a'), undefined, 'no snapshot, not an empty one');
    assert.equal(builder.getSnapshot('unbound'), undefined);
    assert.equal(builder.buildCount, 0);

    await store.apply([
      {
        type: 'replace-all',
        source: 'file',
        objects: [
          { id: 'w.yaml', text: workloads },
          { id: 'a.yaml', text: allow('/v1/.*') },
        ],
      },
    ]);
    await builder.settled();
    assert.deepEqual(pushed.sort(), ['a', 'unbound']);
    assert.ok((builder.getSnapshot('a')?.resources('type.googleapis.com/envoy.config.listener.v3.Listener').size ?? 0) > 0);
    assert.ok(builder.getSnapshot('unbound'), 'a node no policy concerns now has its (empty) configuration');
  });
});
