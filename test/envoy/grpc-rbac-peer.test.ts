import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { SnapshotCache } from '../../src/xds/cache';
import { Snapshot } from '../../src/xds/snapshot';
import { startXdsServer, type RunningXdsServer } from '../../src/xds/server';
import { buildProxyResources } from '../../src/envoy/proxy-resources';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import type { CompiledProxyPolicy, HttpRule } from '../../src/policy/compiled';
import { call, eventually, freePort, method, SERVICE } from '../helpers/grpc-shop';
import { startShopXdsServer } from '../helpers/grpc-xds-server';

/**
 * The real peer: a grpc-js server behind gRPC's XdsServer receives the Listener our grpc mode
 * compiles from a CompiledProxyPolicy (RBAC inline) from our xDS server, and enforces it on
 * real calls from a plain grpc-js client. A new snapshot flips the verdicts, no restart.
 */

function policy(port: number, pathRegex: string): CompiledProxyPolicy {
  const http: HttpRule[] = [{ method: 'POST', path: pathRegex }];
  return {
    nodeId: 'grpc-server-1',
    workloads: ['default/shop'],
    // Any peer: grpc-js-xds 1.14 sees IPv4 clients of its dual-stack socket as ::ffff:a.b.c.d
    // and never matches them against IPv4 CIDRs (see the last test for address principals).
    ingress: [
      {
        port,
        protocol: 'TCP',
        l7: 'http',
        rules: [{ origin: { policy: 'default/shop-read' }, peers: { any: true, cidrs: [], principals: [] }, l7: { kind: 'http', rules: http } }],
      },
    ],
    egress: [],
  };
}

describe('RBAC enforced by a real gRPC XdsServer (proxyless gRPC mode)', function () {
  this.timeout(60000);
  const NODE = 'grpc-server-1';
  let xds: RunningXdsServer;
  let cache: SnapshotCache;
  let server: grpc.Server;
  let client: grpc.Client;
  let port: number;

  const publish = (pathRegex: string): void => {
    const resources = buildProxyResources(policy(port, pathRegex), { mode: 'grpc', redirect: DEFAULT_REDIRECT_CONFIG, grpcServerHost: '127.0.0.1' });
    cache.setSnapshot(NODE, Snapshot.fromResources(resources));
  };

  before(async () => {
    cache = new SnapshotCache();
    xds = await startXdsServer({ source: cache, port: 0, host: '127.0.0.1' });
    port = await freePort('127.0.0.1');
    publish(`/${SERVICE.replace(/\./g, '\\.')}/Get.*`);
    server = await startShopXdsServer({ xdsPort: xds.port, nodeId: NODE, paths: [method('GetItem'), method('DeleteItem')], binds: [`127.0.0.1:${port}`] });
    client = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
  });

  after(async () => {
    client?.close();
    server?.forceShutdown();
    await xds?.close();
  });

  it('allows the methods the policy selects and denies the others with PERMISSION_DENIED', async () => {
    await eventually('GetItem allowed', async () => (await call(client, 'GetItem')) === grpc.status.OK);
    assert.equal(await call(client, 'DeleteItem'), grpc.status.PERMISSION_DENIED);
    const status = xds.controlPlane.status.get(NODE);
    assert.ok(
      status?.types.some((t) => t.typeUrl.endsWith('Listener') && t.ackedVersion),
      'Listener ACKed by gRPC',
    );
  });

  it('flips the verdicts when a new snapshot changes the policy, without restarting the server', async () => {
    publish(`/${SERVICE.replace(/\./g, '\\.')}/Delete.*`);
    await eventually('DeleteItem allowed after the change', async () => (await call(client, 'DeleteItem')) === grpc.status.OK);
    assert.equal(await call(client, 'GetItem'), grpc.status.PERMISSION_DENIED);
  });

  it('denies everything when the policy selects another peer address', async () => {
    const resources = buildProxyResources(
      {
        ...policy(port, '.*'),
        ingress: [
          {
            port,
            protocol: 'TCP',
            l7: 'http',
            rules: [{ origin: { policy: 'default/other' }, peers: { any: false, cidrs: ['10.9.9.9/32'], principals: [] }, l7: { kind: 'http', rules: [] } }],
          },
        ],
      },
      { mode: 'grpc', redirect: DEFAULT_REDIRECT_CONFIG, grpcServerHost: '127.0.0.1' },
    );
    cache.setSnapshot(NODE, Snapshot.fromResources(resources));
    // Wait on the verdict this snapshot changes (DeleteItem was allowed by the previous one);
    // GetItem was already denied, so polling on it would not wait for the new policy at all.
    await eventually('DeleteItem denied', async () => (await call(client, 'DeleteItem')) === grpc.status.PERMISSION_DENIED);
    assert.equal(await call(client, 'GetItem'), grpc.status.PERMISSION_DENIED);
  });
});
