import * as grpc from '@grpc/grpc-js';
import { encodeSotwRequest } from '../../src/xds/requests';
import { TypeUrl } from '../../src/resource/type-urls';

/**
 * The hostile side of the fairness test, in its own process so its encoding does not share the
 * server's event loop: `streams` ADS streams, each sending legal EDS requests of about `bytes`,
 * every one a new name set, as fast as the connection takes them. A refused stream is reopened.
 * Runs until killed; reports progress to its parent.
 */
const [port, streams, bytes] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4])];
const identity = (b: Buffer): Buffer => b;
let sent = 0;
let refused = 0;
let counter = 0;

// DiscoveryRequest fields concatenate, so one encoded block of names is shared and each request
// only prepends its own distinct name.
const count = Math.floor(bytes / 160);
const shared = encodeSotwRequest({
  type_url: TypeUrl.ClusterLoadAssignment,
  resource_names: Array.from({ length: count }, (_, i) => `flood-${i}-${'f'.repeat(140)}`),
});
const distinct = (): Buffer => Buffer.concat([encodeSotwRequest({ resource_names: [`unique-${++counter}`] }), shared]);

for (let k = 0; k < streams; k++) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': -1,
    'grpc.use_local_subchannel_pool': 1,
  });
  const open = (): void => {
    const call = client.makeBidiStreamRequest('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', identity, identity);
    let live = true;
    call.on('data', () => undefined);
    call.on('error', () => undefined);
    call.on('status', () => {
      live = false;
      refused++;
      setTimeout(open, 50);
    });
    call.write(encodeSotwRequest({ node: { id: `flood-${k}`, locality: {} }, type_url: TypeUrl.ClusterLoadAssignment, resource_names: ['first'] }));
    const pump = (): void => {
      while (live && call.write(distinct())) sent++;
      if (live) call.once('drain', pump);
    };
    pump();
  };
  open();
}
process.send?.({ sent, refused });
setInterval(() => process.send?.({ sent, refused }), 250);
