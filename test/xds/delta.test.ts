import * as assert from 'node:assert/strict';
import { Snapshot } from '../../src/xds/snapshot';
import { TypeUrl } from '../../src/resource/type-urls';
import { edsCluster, endpoints, resource } from '../helpers/envoy-resources';
import { deltaStream, type DecodedDeltaResponse, testNode, xdsServerPerTest } from '../helpers/raw-xds-client';

const node = testNode;
const names = (r: DecodedDeltaResponse) => r.resources.map((x) => x.name).sort();

/** Incremental xDS, case by case as the xDS protocol document describes it. */
describe('Delta xDS', function () {
  this.timeout(20000);
  const bed = xdsServerPerTest({ controlPlaneId: 'meshaccel-test' });

  const clusters = (...n: string[]) => n.map((x) => edsCluster(x));

  it('legacy wildcard: an empty first CDS request gets every cluster, then only what changes', async () => {
    bed.cache.setSnapshot('n1', Snapshot.fromResources([...clusters('a', 'b', 'c')]));
    const s = deltaStream(bed.client);
    s.send({ node: node('n1'), type_url: TypeUrl.Cluster });
    const r1 = await s.next();
    assert.deepEqual(names(r1), ['a', 'b', 'c']);
    assert.equal(r1.system_version_info, bed.cache.getSnapshot('n1')!.version(TypeUrl.Cluster));
    s.send({ type_url: TypeUrl.Cluster, response_nonce: r1.nonce });

    // b changes, c is removed, d is added; a is untouched and must not be re-sent.
    const changedB = resource(TypeUrl.Cluster, 'b', { name: 'b', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, lb_policy: 'RING_HASH' });
    bed.cache.setSnapshot('n1', Snapshot.fromResources([edsCluster('a'), changedB, edsCluster('d')]));
    const r2 = await s.next();
    assert.deepEqual(names(r2), ['b', 'd']);
    assert.deepEqual(r2.removed_resources, ['c']);
    assert.equal(r2.resources.find((x) => x.name === 'b')!.version, changedB.version);
    s.send({ type_url: TypeUrl.Cluster, response_nonce: r2.nonce });

    // The same content in a new Snapshot object sends nothing.
    bed.cache.setSnapshot('n1', Snapshot.fromResources([edsCluster('a'), changedB, edsCluster('d')]));
    await s.nothingFor(300);
    s.close();
  });

  it('explicit "*" is a wildcard for any type, and an empty wildcard still gets a first response', async () => {
    bed.cache.setSnapshot('n1', Snapshot.fromResources([endpoints('x', [1000])]));
    const s = deltaStream(bed.client);
    s.send({ node: node('n1'), type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: ['*'] });
    assert.deepEqual(names(await s.next()), ['x']);
    s.send({ type_url: TypeUrl.Listener, resource_names_subscribe: ['*'] });
    const empty = await s.next();
    assert.equal(empty.type_url, TypeUrl.Listener);
    assert.deepEqual(empty.resources, []);
    s.close();
  });

  it('named subscriptions: only what is named, a missing name is answered in removed_resources, unsubscribe stops updates', async () => {
    bed.cache.setSnapshot('n1', Snapshot.fromResources([endpoints('e1', [1]), endpoints('e2', [2])]));
    const s = deltaStream(bed.client);
    s.send({ node: node('n1'), type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: ['e1', 'missing'] });
    const r1 = await s.next();
    assert.deepEqual(names(r1), ['e1']);
    assert.deepEqual(r1.removed_resources, ['missing']);
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, response_nonce: r1.nonce });

    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: ['e2'], resource_names_unsubscribe: ['e1'] });
    const r2 = await s.next();
    assert.deepEqual(names(r2), ['e2']);
    assert.deepEqual(r2.removed_resources, []);
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, response_nonce: r2.nonce });

    // e1 changes, but the stream unsubscribed from it; 'missing' appears and is sent.
    bed.cache.setSnapshot('n1', Snapshot.fromResources([endpoints('e1', [11]), endpoints('e2', [2]), endpoints('missing', [3])]));
    const r3 = await s.next();
    assert.deepEqual(names(r3), ['missing']);
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, response_nonce: r3.nonce });
    await s.nothingFor(300);
    // Subscribing to e1 again sends it (the client dropped it on unsubscribe).
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: ['e1'] });
    assert.deepEqual(names(await s.next()), ['e1']);
    s.close();
  });

  it('reconnect with initial_resource_versions: unchanged resources are not sent, stale ones are, deleted ones are removed', async () => {
    const snap = Snapshot.fromResources([...clusters('a', 'b')]);
    bed.cache.setSnapshot('n1', snap);
    const s = deltaStream(bed.client);
    s.send({
      node: node('n1'),
      type_url: TypeUrl.Cluster,
      resource_names_subscribe: ['*'],
      initial_resource_versions: { a: snap.get(TypeUrl.Cluster, 'a')!.version, b: 'old-version', gone: 'v1' },
    });
    const r = await s.next();
    assert.deepEqual(names(r), ['b']);
    assert.deepEqual(r.removed_resources, ['gone']);
    s.close();
  });

  it('NACK is recorded with its error_detail, the rejected version is not resent, and a stale nonce is no ACK', async () => {
    bed.cache.setSnapshot('n1', Snapshot.fromResources([...clusters('a')]));
    const s = deltaStream(bed.client);
    s.send({ node: node('n1'), type_url: TypeUrl.Cluster, resource_names_subscribe: ['*'] });
    const r1 = await s.next();
    s.send({ type_url: TypeUrl.Cluster, response_nonce: r1.nonce, error_detail: { code: 3, message: 'cluster a: bad' } });
    await s.nothingFor(300);
    const st = bed.xds.controlPlane.status.get('n1')!.types.find((t) => t.typeUrl === TypeUrl.Cluster)!;
    assert.equal(st.lastNack?.message, 'cluster a: bad');
    assert.equal(st.lastNack?.version, r1.system_version_info);
    assert.equal(st.ackedVersion, undefined);

    bed.cache.setSnapshot('n1', Snapshot.fromResources([...clusters('a', 'b')]));
    const r2 = await s.next();
    assert.deepEqual(names(r2), ['b']);
    // ACKing an old nonce is not an ACK of the new version.
    s.send({ type_url: TypeUrl.Cluster, response_nonce: r1.nonce });
    await s.nothingFor(200);
    assert.equal(bed.xds.controlPlane.status.get('n1')!.types.find((t) => t.typeUrl === TypeUrl.Cluster)!.ackedVersion, undefined);
    s.send({ type_url: TypeUrl.Cluster, response_nonce: r2.nonce });
    await s.nothingFor(200);
    const acked = bed.xds.controlPlane.status.get('n1')!.types.find((t) => t.typeUrl === TypeUrl.Cluster)!;
    assert.equal(acked.ackedVersion, r2.system_version_info);
    assert.equal(acked.lastNack, undefined);
    s.close();
  });

  it('carries resource TTLs, and works on the per-type service without type_url', async () => {
    bed.cache.setSnapshot('n1', Snapshot.fromResources([resource(TypeUrl.Cluster, 'ttl', { name: 'ttl', type: 'EDS' }, { ttlMs: 30000 })]));
    const s = deltaStream(bed.client, 'envoy.service.cluster.v3.ClusterDiscoveryService/DeltaClusters');
    s.send({ node: node('n1'), resource_names_subscribe: ['ttl'] });
    const r = await s.next();
    assert.equal(r.type_url, TypeUrl.Cluster);
    assert.equal(r.resources[0].ttl?.seconds, 30);
    s.close();
  });
});
