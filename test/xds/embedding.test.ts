import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { addXdsServices, encodeEnvoyResource, Snapshot, SnapshotCache, startXdsServer, TypeUrl } from '../../src/index';
import { ECHO_METHOD, callEcho } from '../helpers/echo-backend';
import { rawClient, sotwStream } from '../helpers/raw-xds-client';

describe('embedding the xDS services in an existing grpc.Server', function () {
  this.timeout(20000);

  it("serves xDS next to the application's own service on one port", async () => {
    const server = new grpc.Server();
    const id = (b: Buffer): Buffer => b;
    server.addService(
      {
        Echo: {
          path: ECHO_METHOD,
          requestStream: false,
          responseStream: false,
          requestSerialize: id,
          requestDeserialize: id,
          responseSerialize: id,
          responseDeserialize: id,
        },
      },
      { Echo: (_c: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => cb(null, Buffer.from('app')) },
    );
    const cache = new SnapshotCache({ nodeHash: (n) => n.cluster });
    const xds = addXdsServices(server, { source: cache });
    cache.setSnapshot(
      'edge',
      Snapshot.fromResources([
        encodeEnvoyResource(TypeUrl.Cluster, 'c', { name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, connect_timeout: '1s' }),
      ]),
    );
    const port = await new Promise<number>((resolve, reject) =>
      server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (e, p) => (e ? reject(e) : resolve(p))),
    );

    const client = rawClient(port);
    assert.equal(await callEcho(client), 'app');
    const s = sotwStream(client);
    s.send({ node: { id: 'proxy-1', cluster: 'edge' }, type_url: TypeUrl.Cluster });
    const r = await s.next();
    assert.equal(r.resources.length, 1);
    s.send({ type_url: TypeUrl.Cluster, version_info: r.version_info, response_nonce: r.nonce });
    await s.nothingFor(200);
    assert.equal(xds.status.get('proxy-1')?.types[0].ackedVersion, r.version_info);
    s.close();
    client.close();
    server.forceShutdown();
  });

  it('two control planes over one SnapshotSource each answer with their own control_plane identifier', async () => {
    const cache = new SnapshotCache();
    cache.setSnapshot(
      'n',
      Snapshot.fromResources([
        encodeEnvoyResource(TypeUrl.Cluster, 'c', { name: 'c', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, connect_timeout: '1s' }),
      ]),
    );
    const servers = await Promise.all(['plane-a', 'plane-b'].map((id) => startXdsServer({ source: cache, controlPlaneId: id, port: 0, host: '127.0.0.1' })));
    const identifiers: Array<string | undefined> = [];
    try {
      for (const { port } of servers) {
        const client = rawClient(port);
        const s = sotwStream(client);
        try {
          s.send({ node: { id: 'n' }, type_url: TypeUrl.Cluster });
          identifiers.push((await s.next()).control_plane?.identifier);
        } finally {
          s.close();
          client.close();
        }
      }
    } finally {
      await Promise.all(servers.map((x) => x.close()));
    }
    assert.deepEqual(identifiers, ['plane-a', 'plane-b']);
  });
});
