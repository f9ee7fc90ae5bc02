/**
 * Embedding meshaccel's xDS services in an application's own gRPC server, next to its own
 * services, with snapshots supplied by the application. Run: `node dist/examples/embedded-server.js`
 * after `make build`; it serves a Cluster and its endpoints to any node on 127.0.0.1:18010 and
 * logs ACKs and NACKs.
 */
import * as grpc from '@grpc/grpc-js';
import { addXdsServices, encodeEnvoyResource, Snapshot, SnapshotCache, TypeUrl } from '../src/index';

async function main(): Promise<void> {
  const server = new grpc.Server();
  // ... server.addService(yourService, yourImplementation) ...

  // Every node gets the same snapshot here; pass `nodeHash` to group nodes some other way.
  const cache = new SnapshotCache({ nodeHash: () => 'everyone' });
  const xds = addXdsServices(server, { source: cache, controlPlaneId: 'embedded-example' });
  xds.status.on('ack', (node, typeUrl, version) => console.log(`ACK  ${node} ${typeUrl} ${version}`));
  xds.status.on('nack', (node, typeUrl, nack) => console.log(`NACK ${node} ${typeUrl} ${nack.version}: ${nack.message}`));

  // encodeEnvoyResource checks Envoy's schema (PGV rules included) before encoding.
  const snapshot = (port: number): Snapshot =>
    Snapshot.fromResources([
      encodeEnvoyResource(TypeUrl.Cluster, 'backend', { name: 'backend', type: 'EDS', eds_cluster_config: { eds_config: { ads: {} } }, connect_timeout: '1s' }),
      encodeEnvoyResource(TypeUrl.ClusterLoadAssignment, 'backend', {
        cluster_name: 'backend',
        endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '127.0.0.1', port_value: port } } } }] }],
      }),
    ]);
  cache.setSnapshot('everyone', snapshot(8080));

  await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:18010', grpc.ServerCredentials.createInsecure(), (err, port) => (err ? reject(err) : resolve(port))),
  );
  console.log('xDS embedded on 127.0.0.1:18010; moving the endpoint every 10 s');
  let port = 8080;
  const timer = setInterval(() => cache.setSnapshot('everyone', snapshot(++port)), 10_000);
  process.once('SIGINT', () => {
    clearInterval(timer);
    server.forceShutdown();
  });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
