import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { getDiscoveryRoot } from '../../src/resource/protos';
import { encodeSotwRequest } from '../../src/xds/requests';
import { Snapshot } from '../../src/xds/snapshot';
import { TypeUrl } from '../../src/resource/type-urls';
import { apiListener, decodeAny, edsCluster, endpoints, routeToCluster } from '../helpers/envoy-resources';
import { sotwStream, type DecodedSotwResponse, testNode, xdsServerPerTest } from '../helpers/raw-xds-client';

const node = testNode;
const resNames = (r: DecodedSotwResponse, field = 'name') => r.resources.map((a) => decodeAny(a.type_url, a.value)[field] as string).sort();

describe('State-of-the-World xDS', function () {
  this.timeout(20000);
  const bed = xdsServerPerTest();

  it('wildcard LDS carries the full state: a removed Listener disappears from the next response', async () => {
    bed.cache.setSnapshot('n1', Snapshot.fromResources([apiListener('l1', 'r'), apiListener('l2', 'r')]));
    const s = sotwStream(bed.client);
    s.send({ node: node('n1'), type_url: TypeUrl.Listener });
    const r1 = await s.next();
    assert.deepEqual(resNames(r1), ['l1', 'l2']);
    s.send({ type_url: TypeUrl.Listener, version_info: r1.version_info, response_nonce: r1.nonce });
    bed.cache.setSnapshot('n1', Snapshot.fromResources([apiListener('l1', 'r')]));
    const r2 = await s.next();
    assert.deepEqual(resNames(r2), ['l1']);
    assert.notEqual(r2.version_info, r1.version_info);
    s.close();
  });

  it('an empty RDS name list means unsubscribe, not wildcard', async () => {
    bed.cache.setSnapshot('n1', Snapshot.fromResources([routeToCluster('r1', 'c')]));
    const s = sotwStream(bed.client);
    s.send({ node: node('n1'), type_url: TypeUrl.RouteConfiguration, resource_names: [] });
    await s.nothingFor(300);
    s.send({ type_url: TypeUrl.RouteConfiguration, resource_names: ['r1'] });
    const r = await s.next();
    assert.deepEqual(resNames(r), ['r1']);
    s.close();
  });

  it('ACKs record the version; a stale nonce is not an ACK but a changed name set is still answered', async () => {
    bed.cache.setSnapshot('n1', Snapshot.fromResources([endpoints('e1', [1]), endpoints('e2', [2])]));
    const s = sotwStream(bed.client);
    s.send({ node: node('n1'), type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['e1'] });
    const r1 = await s.next();
    assert.deepEqual(resNames(r1, 'cluster_name'), ['e1']);
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['e1'], version_info: r1.version_info, response_nonce: r1.nonce });
    await s.nothingFor(200);
    assert.equal(bed.xds.controlPlane.status.get('n1')!.types[0].ackedVersion, r1.version_info);

    // gRPC's client re-subscribes with an old nonce: not an ACK, but answered since names changed.
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['e1', 'e2'], version_info: r1.version_info, response_nonce: 'stale-nonce' });
    const r2 = await s.next();
    assert.deepEqual(resNames(r2, 'cluster_name'), ['e1', 'e2']);
    // Same names with a stale nonce: ignored, even though it claims r2's version.
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['e1', 'e2'], version_info: r2.version_info, response_nonce: 'stale-nonce' });
    await s.nothingFor(300);
    assert.notEqual(r2.version_info, r1.version_info);
    assert.equal(bed.xds.controlPlane.status.get('n1')!.types[0].ackedVersion, r1.version_info);
    s.close();
  });

  it('pushes a changed snapshot in make-before-break order: CDS, EDS, LDS, RDS', async () => {
    const v1 = [edsCluster('c'), endpoints('c', [1]), apiListener('l', 'r'), routeToCluster('r', 'c')];
    bed.cache.setSnapshot('n1', Snapshot.fromResources(v1));
    const s = sotwStream(bed.client);
    // Subscribe in the "wrong" order on purpose.
    s.send({ node: node('n1'), type_url: TypeUrl.RouteConfiguration, resource_names: ['r'] });
    s.send({ type_url: TypeUrl.Listener, resource_names: [] });
    s.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['c'] });
    s.send({ type_url: TypeUrl.Cluster, resource_names: [] });
    for (let i = 0; i < 4; i++) {
      const r = await s.next();
      s.send({
        type_url: r.type_url,
        resource_names: r.type_url === TypeUrl.RouteConfiguration ? ['r'] : r.type_url === TypeUrl.ClusterLoadAssignment ? ['c'] : [],
        version_info: r.version_info,
        response_nonce: r.nonce,
      });
    }
    await s.nothingFor(200);
    bed.cache.setSnapshot(
      'n1',
      Snapshot.fromResources([
        edsCluster('c'),
        edsCluster('c2'),
        endpoints('c', [2]),
        apiListener('l', 'r2'),
        apiListener('l2', 'r'),
        routeToCluster('r', 'c2'),
      ]),
    );
    const order: string[] = [];
    for (let i = 0; i < 4; i++) order.push((await s.next()).type_url);
    assert.deepEqual(order, [TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment, TypeUrl.Listener, TypeUrl.RouteConfiguration]);
    s.close();
  });

  it('marshals once: streams on the same snapshot and selection share one response body', () => {
    const snap = Snapshot.fromResources([edsCluster('a'), edsCluster('b')]);
    const sel = () => [...snap.resources(TypeUrl.Cluster).values()];
    const a = snap.sotwResponse(TypeUrl.Cluster, '*', sel);
    const b = snap.sotwResponse(TypeUrl.Cluster, '*', sel);
    assert.equal(a.body, b.body, 'same Buffer instance');
    assert.equal(a.version, snap.version(TypeUrl.Cluster));
    // Content versions are stable across Snapshot objects with the same resources.
    assert.equal(Snapshot.fromResources([edsCluster('b'), edsCluster('a')]).version(TypeUrl.Cluster), a.version);
  });
});

describe('REST-style fetch (FetchEndpoints and the like)', function () {
  this.timeout(20000);
  const bed = xdsServerPerTest({ controlPlaneId: 'fetch-test', authorize: (n) => (n.id === 'intruder' ? 'not on the guest list' : undefined) });

  function fetch(request: Record<string, unknown>): Promise<DecodedSotwResponse> {
    const t = getDiscoveryRoot().lookupType('envoy.service.discovery.v3.DiscoveryResponse');
    const id = (b: Buffer): Buffer => b;
    return new Promise((resolve, reject) =>
      bed.client.makeUnaryRequest('/envoy.service.endpoint.v3.EndpointDiscoveryService/FetchEndpoints', id, id, encodeSotwRequest(request), (err, res) =>
        err ? reject(err) : resolve(t.toObject(t.decode(res!), { defaults: true, arrays: true }) as DecodedSotwResponse),
      ),
    );
  }

  it('answers the current selection, with the control plane id and no nonce', async () => {
    bed.cache.setSnapshot('n1', Snapshot.fromResources([endpoints('e1', [1]), endpoints('e2', [2])]));
    const r = await fetch({ node: node('n1'), resource_names: ['e1'] });
    assert.deepEqual(resNames(r, 'cluster_name'), ['e1']);
    assert.equal(r.type_url, TypeUrl.ClusterLoadAssignment);
    assert.equal(r.nonce, '');
    assert.equal(r.control_plane?.identifier, 'fetch-test');
  });

  it('refuses a fetch without node.id, from a node the authorizer denies, and for a node with no configuration', async () => {
    const failure = (request: Record<string, unknown>) =>
      fetch(request).then(
        () => assert.fail('fetch succeeded'),
        (e: grpc.ServiceError) => [e.code, e.details],
      );
    assert.deepEqual(await failure({ resource_names: ['e1'] }), [grpc.status.INVALID_ARGUMENT, 'fetch request must carry node.id']);
    assert.deepEqual(await failure({ node: node('intruder'), resource_names: ['e1'] }), [grpc.status.PERMISSION_DENIED, 'not on the guest list']);
    assert.deepEqual(await failure({ node: node('unknown'), resource_names: ['e1'] }), [grpc.status.UNAVAILABLE, 'no configuration for node unknown yet']);
  });
});
