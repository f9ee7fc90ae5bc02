import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as grpcXds from '@grpc/grpc-js-xds';
import { SnapshotCache } from '../../src/xds/cache';
import { Snapshot } from '../../src/xds/snapshot';
import { startXdsServer, type RunningXdsServer } from '../../src/xds/server';
import { TypeUrl } from '../../src/resource/type-urls';
import { apiListener, edsCluster, endpoints, resource, routeToCluster } from '../helpers/envoy-resources';
import { callEcho, eventually, startEchoBackend } from '../helpers/echo-backend';

/**
 * The real peer: gRPC's own xDS client resolves `xds:///echo.test` through our server
 * (Listener -> RDS -> Cluster -> EDS) and calls real gRPC backends.
 */
describe("xDS server with gRPC's xDS client (@grpc/grpc-js-xds)", function () {
  this.timeout(60000);
  let xds: RunningXdsServer;
  let cache: SnapshotCache;
  const backends: Array<Awaited<ReturnType<typeof startEchoBackend>>> = [];
  const clients: grpc.Client[] = [];
  const NODE = 'grpc-client-1';

  before(async () => {
    grpcXds.register();
    backends.push(await startEchoBackend('A'), await startEchoBackend('B'));
    cache = new SnapshotCache();
    xds = await startXdsServer({ source: cache, port: 0, host: '127.0.0.1' });
  });

  after(async () => {
    for (const c of clients) c.close();
    for (const b of backends) b.close();
    await xds.close();
  });

  function client(nodeId: string): grpc.Client {
    const bootstrap = {
      xds_servers: [{ server_uri: `127.0.0.1:${xds.port}`, channel_creds: [{ type: 'insecure' }], server_features: ['xds_v3'] }],
      node: { id: nodeId, locality: {} },
    };
    const c = new grpc.Client('xds:///echo.test', grpc.credentials.createInsecure(), {
      'grpc.TEST_ONLY_DO_NOT_USE_IN_PROD.xds_bootstrap_config': JSON.stringify(bootstrap),
    });
    clients.push(c);
    return c;
  }

  function config(port: number, extra: Parameters<typeof Snapshot.fromResources>[0] = []): Snapshot {
    return Snapshot.fromResources([
      apiListener('echo.test', 'echo-route'),
      routeToCluster('echo-route', 'backend'),
      edsCluster('backend'),
      endpoints('backend', [port]),
      ...extra,
    ]);
  }

  it('resolves through LDS, RDS, CDS and EDS and calls the backend', async () => {
    cache.setSnapshot(NODE, config(backends[0].port));
    const c = client(NODE);
    assert.equal(
      await eventually(
        'first call',
        () => callEcho(c),
        (v) => v === 'A',
      ),
      'A',
    );
    const status = xds.controlPlane.status.get(NODE);
    assert.ok(status, 'node is tracked');
    const acked = new Map(status.types.map((t) => [t.typeUrl, t.ackedVersion]));
    for (const t of [TypeUrl.Listener, TypeUrl.RouteConfiguration, TypeUrl.Cluster, TypeUrl.ClusterLoadAssignment]) {
      assert.ok(acked.get(t), `${t} ACKed`);
    }
  });

  it('switches backends when a later snapshot changes the endpoints', async () => {
    const before = xds.controlPlane.status.get(NODE)!.types.find((t) => t.typeUrl === TypeUrl.Listener)!.sentAt;
    assert.ok(before, 'the Listener was sent before the change');
    cache.setSnapshot(NODE, config(backends[1].port));
    const c = clients[0];
    await eventually(
      'switch to B',
      () => callEcho(c),
      (v) => v === 'B',
    );
    // Only EDS changed: the Listener must not have been re-sent.
    const lds = xds.controlPlane.status.get(NODE)!.types.find((t) => t.typeUrl === TypeUrl.Listener)!;
    assert.equal(lds.sentAt?.getTime(), before?.getTime(), 'unchanged Listener not re-sent');
  });

  it("records the client's NACK of an invalid resource while the last good config keeps serving", async () => {
    const nacks: string[] = [];
    xds.controlPlane.status.on('nack', (node, typeUrl, nack) => nacks.push(`${node} ${typeUrl} ${nack.message}`));
    // gRPC supports only EDS, LOGICAL_DNS and aggregate clusters: a STATIC cluster is invalid
    // for this client, so it rejects the whole CDS update.
    const bad = resource(TypeUrl.Cluster, 'backend', { name: 'backend', type: 'STATIC', lb_policy: 'ROUND_ROBIN' });
    const snap = Snapshot.fromResources([
      apiListener('echo.test', 'echo-route'),
      routeToCluster('echo-route', 'backend'),
      bad,
      endpoints('backend', [backends[1].port]),
    ]);
    cache.setSnapshot(NODE, snap);
    await eventually(
      'NACK recorded',
      async () => xds.controlPlane.status.get(NODE)!.types.find((t) => t.typeUrl === TypeUrl.Cluster)!.lastNack,
      (n) => n !== undefined,
    );
    const cds = xds.controlPlane.status.get(NODE)!.types.find((t) => t.typeUrl === TypeUrl.Cluster)!;
    assert.equal(cds.lastNack!.version, snap.version(TypeUrl.Cluster));
    assert.notEqual(cds.ackedVersion, snap.version(TypeUrl.Cluster));
    assert.match(cds.lastNack!.message, /Unsupported type STATIC/);
    assert.equal(nacks.length, 1);
    // Still served by the last good configuration.
    for (let i = 0; i < 5; i++) assert.equal(await callEcho(clients[0]), 'B');
    // The rejected version is not pushed again in a loop.
    await new Promise((r) => setTimeout(r, 1500));
    assert.equal(nacks.length, 1, 'rejected version not resent');
    // A fixed snapshot is accepted and clears the NACK.
    cache.setSnapshot(NODE, config(backends[0].port));
    await eventually(
      'back to A',
      () => callEcho(clients[0]),
      (v) => v === 'A',
    );
    await eventually(
      'NACK cleared',
      async () => xds.controlPlane.status.get(NODE)!.types.find((t) => t.typeUrl === TypeUrl.Cluster)!,
      (t) => t.lastNack === undefined && t.ackedVersion === cache.getSnapshot(NODE)!.version(TypeUrl.Cluster),
    );
  });

  it('serves two nodes different configurations from one server', async () => {
    cache.setSnapshot('grpc-client-2', config(backends[1].port));
    const c2 = client('grpc-client-2');
    assert.equal(
      await eventually(
        'node 2',
        () => callEcho(c2),
        (v) => v === 'B',
      ),
      'B',
    );
    assert.equal(await callEcho(clients[0]), 'A');
  });
});
