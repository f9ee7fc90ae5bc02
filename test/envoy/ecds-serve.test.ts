import * as assert from 'node:assert/strict';
import type * as grpc from '@grpc/grpc-js';
import { SnapshotCache } from '../../src/xds/cache';
import { Snapshot } from '../../src/xds/snapshot';
import { startXdsServer, type RunningXdsServer } from '../../src/xds/server';
import { buildProxyResources } from '../../src/envoy/proxy-resources';
import { lookupType } from '../../src/envoy/protos';
import { TypeUrl } from '../../src/resource/type-urls';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import { rawClient, sotwStream, type DecodedSotwResponse, type RawXdsStream } from '../helpers/raw-xds-client';
import { FIXTURES } from './fixtures';

/**
 * Standalone mode through meshaccel's xDS server, subscribing the way Envoy does over one ADS
 * stream: LDS/CDS wildcard, then RDS and ECDS by the names found inside the served Listener.
 * A policy change then pushes a new ECDS resource and nothing on LDS: the listener is not
 * touched, so Envoy has nothing to drain.
 */

const decode = (typeName: string, bytes: Uint8Array): any => {
  const t = lookupType(typeName);
  return t.toObject(t.decode(bytes), { enums: String, longs: Number });
};

describe('standalone resources served over ADS (ECDS for the RBAC)', function () {
  this.timeout(30000);
  const NODE = FIXTURES['http-basic'].nodeId;
  let xds: RunningXdsServer;
  let cache: SnapshotCache;
  let client: grpc.Client;
  let ads: RawXdsStream<DecodedSotwResponse>;
  const acked = new Map<string, DecodedSotwResponse>();

  const publish = (compiled: CompiledProxyPolicy): void =>
    cache.setSnapshot(NODE, Snapshot.fromResources(buildProxyResources(compiled, { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG })));

  async function subscribe(typeUrl: string, names: string[]): Promise<DecodedSotwResponse> {
    ads.send({ node: { id: NODE }, type_url: typeUrl, resource_names: names });
    const r = await ads.next();
    assert.equal(r.type_url, typeUrl);
    ads.send({ node: { id: NODE }, type_url: typeUrl, resource_names: names, version_info: r.version_info, response_nonce: r.nonce });
    acked.set(typeUrl, r);
    return r;
  }

  before(async () => {
    cache = new SnapshotCache();
    xds = await startXdsServer({ source: cache, port: 0, host: '127.0.0.1' });
    publish(FIXTURES['http-basic']);
    client = rawClient(xds.port);
    ads = sotwStream(client);
  });

  after(async () => {
    ads?.close();
    client?.close();
    await xds?.close();
  });

  it('serves listeners whose HTTP filter names an ECDS resource that the server then serves', async () => {
    const cds = await subscribe(TypeUrl.Cluster, []);
    assert.deepEqual(
      cds.resources.map((r) => decode('envoy.config.cluster.v3.Cluster', r.value).type),
      ['ORIGINAL_DST', 'ORIGINAL_DST'],
    );
    const lds = await subscribe(TypeUrl.Listener, []);
    const listeners = lds.resources.map((r) => decode('envoy.config.listener.v3.Listener', r.value));
    const inbound = listeners.find((l: any) => l.name === 'meshaccel.inbound');
    assert.equal(inbound.transparent.value, true);
    const hcmAny = inbound.filter_chains[0].filters.find((f: any) => f.name === 'envoy.filters.network.http_connection_manager').typed_config;
    const hcm = decode('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager', hcmAny.value);
    const ecdsNames = hcm.http_filters.filter((f: any) => f.config_discovery).map((f: any) => f.name);
    assert.deepEqual(ecdsNames, ['meshaccel.rbac.inbound.8080']);
    const rds = await subscribe(TypeUrl.RouteConfiguration, [hcm.rds.route_config_name]);
    assert.equal(rds.resources.length, 1);
    const ecds = await subscribe(TypeUrl.ExtensionConfig, ecdsNames);
    assert.equal(ecds.resources.length, 1);
    const tec = decode('envoy.config.core.v3.TypedExtensionConfig', ecds.resources[0].value);
    assert.equal(tec.name, 'meshaccel.rbac.inbound.8080');
    assert.equal(tec.typed_config.type_url, 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC');
    const rbac = decode('envoy.extensions.filters.http.rbac.v3.RBAC', tec.typed_config.value);
    assert.deepEqual(Object.keys(rbac.rules.policies).sort(), ['default/allow-admin#1', 'default/allow-public#0']);
  });

  it('a policy change pushes only the ECDS resource; the listener is not re-sent', async () => {
    const changed: CompiledProxyPolicy = JSON.parse(JSON.stringify(FIXTURES['http-basic']));
    changed.ingress[0].rules = changed.ingress[0].rules.slice(0, 1);
    publish(changed);
    const push = await ads.next();
    assert.equal(push.type_url, TypeUrl.ExtensionConfig, 'the one push is ECDS');
    const tec = decode('envoy.config.core.v3.TypedExtensionConfig', push.resources[0].value);
    const rbac = decode('envoy.extensions.filters.http.rbac.v3.RBAC', tec.typed_config.value);
    assert.deepEqual(Object.keys(rbac.rules.policies), ['default/allow-public#0']);
    ads.send({
      node: { id: NODE },
      type_url: TypeUrl.ExtensionConfig,
      resource_names: ['meshaccel.rbac.inbound.8080'],
      version_info: push.version_info,
      response_nonce: push.nonce,
    });
    await ads.nothingFor(500);
  });
});
