import * as grpc from '@grpc/grpc-js';
import { getDiscoveryRoot } from '../../src/resource/protos';
import { encodeSotwRequest } from '../../src/xds/requests';
import { NAMED_SUBSCRIPTIONS } from './resources';

/**
 * The client side of bench-xds, in its own process (and pinned to its own CPU) so the server's
 * RSS and CPU are measured alone. Each stream is an ADS SotW stream on its own HTTP/2
 * connection, like one Envoy, and ACKs every response.
 */
const [port, count, offset] = [Number(process.argv[2]), Number(process.argv[3]), Number(process.argv[4] ?? 0)];
const identity = (b: Buffer): Buffer => b;
const respType = getDiscoveryRoot().lookupType('envoy.service.discovery.v3.DiscoveryResponse');
const types = Object.keys(NAMED_SUBSCRIPTIONS);
let responses = 0;

for (let i = 0; i < count; i++) {
  const client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure(), { 'grpc.use_local_subchannel_pool': 1 });
  const call = client.makeBidiStreamRequest('/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources', identity, identity);
  call.on('error', (err) => {
    console.error(`stream ${i}: ${err.message}`);
    process.exit(1);
  });
  call.on('data', (b: Buffer) => {
    const r = respType.toObject(respType.decode(b), { defaults: true }) as { type_url: string; version_info: string; nonce: string };
    responses++;
    call.write(
      encodeSotwRequest({ type_url: r.type_url, version_info: r.version_info, response_nonce: r.nonce, resource_names: NAMED_SUBSCRIPTIONS[r.type_url] }),
    );
  });
  types.forEach((t, k) =>
    call.write(
      encodeSotwRequest({ node: k === 0 ? { id: `bench-${offset + i}`, locality: {} } : undefined, type_url: t, resource_names: NAMED_SUBSCRIPTIONS[t] }),
    ),
  );
}
setInterval(() => process.send?.({ responses, cpu: process.cpuUsage() }), 200);
