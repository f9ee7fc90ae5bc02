import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import type { RunningControlServer } from '../../src/server/control-server';
import { TypeUrl } from '../../src/resource/type-urls';
import { encodeSotwRequest } from '../../src/xds/requests';
import { deltaStream, sotwStream } from '../helpers/raw-xds-client';
import { startExampleServer, stopExampleServer } from '../helpers/example-server';

const NODE = 'node-proxy-1';
const nodeWith = (nodeName: string | undefined): Record<string, unknown> => ({
  id: NODE,
  metadata: nodeName === undefined ? { fields: {} } : { fields: { NODE_NAME: { stringValue: nodeName } } },
});

/**
 * #12 item 4: a second stream using a live proxy's node id with other metadata must not
 * reconfigure that proxy. The per-node proxy of the example workloads is bound by its
 * metadata (NODE_NAME: node-1); a stream claiming its id with none would unbind it.
 */
describe('reliability: a node binding cannot be changed by another stream', function () {
  this.timeout(60_000);
  let dir: string;
  let server: RunningControlServer;
  let client: grpc.Client;

  before(async () => {
    ({ dir, server, client } = await startExampleServer('meshaccel-binding-', { log: { info: () => undefined, warn: () => undefined } }));
  });
  after(() => stopExampleServer({ dir, server, client }));

  it('refuses a conflicting claim with FAILED_PRECONDITION while the proxy keeps its Listeners and Clusters', async () => {
    const lds = deltaStream(client);
    lds.send({ node: nodeWith('node-1'), type_url: TypeUrl.Listener });
    const l1 = await lds.next(5000);
    assert.deepEqual(l1.resources.map((r) => r.name).sort(), ['meshaccel.inbound', 'meshaccel.outbound']);
    lds.send({ type_url: TypeUrl.Listener, response_nonce: l1.nonce });
    const cds = sotwStream(client);
    cds.send({ node: nodeWith('node-1'), type_url: TypeUrl.Cluster });
    const c1 = await cds.next(5000);
    assert.ok(c1.resources.length > 0, 'the proxy has clusters');
    cds.send({ type_url: TypeUrl.Cluster, version_info: c1.version_info, response_nonce: c1.nonce });

    for (const metadata of [undefined, 'node-2']) {
      const hostile = sotwStream(client);
      hostile.send({ node: nodeWith(metadata), type_url: TypeUrl.Listener });
      const st = await Promise.race([hostile.ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), 2000))]);
      // First what the real proxy saw: nothing (before this fix: its Listeners removed).
      await lds.nothingFor(200);
      await cds.nothingFor(10);
      assert.ok(st, 'the conflicting stream was refused');
      assert.equal(grpc.status[st.code], 'FAILED_PRECONDITION');
      assert.match(st.details, /node "node-proxy-1" is connected on another stream with a different cluster or metadata.*answered a liveness check/);
    }
    const fetchClient = new grpc.Client(`127.0.0.1:${server.xds.port}`, grpc.credentials.createInsecure());
    const fetched = await new Promise<grpc.ServiceError | null>((resolve) =>
      fetchClient.makeUnaryRequest(
        '/envoy.service.listener.v3.ListenerDiscoveryService/FetchListeners',
        (b: Buffer) => b,
        (b: Buffer) => b,
        encodeSotwRequest({ node: nodeWith(undefined), type_url: TypeUrl.Listener }),
        (err) => resolve(err),
      ),
    );
    fetchClient.close();
    assert.equal(fetched && grpc.status[fetched.code], 'FAILED_PRECONDITION');

    // The proxy was not reconfigured: nothing new on either stream.
    await lds.nothingFor(1000);
    await cds.nothingFor(100);

    // The same identity may open another stream (an Envoy reconnecting before its old stream is gone).
    const again = deltaStream(client);
    again.send({ node: nodeWith('node-1'), type_url: TypeUrl.Listener });
    assert.equal((await again.next(5000)).resources.length, 2);
    again.close();
    lds.close();
    cds.close();
  });

  it('once every stream of the node has closed, it may connect with new metadata', async () => {
    await new Promise((r) => setTimeout(r, 300));
    const moved = deltaStream(client);
    moved.send({ node: nodeWith('node-2'), type_url: TypeUrl.Listener });
    const r = await moved.next(5000);
    assert.ok(Array.isArray(r.resources));
    moved.close();
  });
});
