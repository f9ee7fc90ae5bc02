import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { SnapshotCache } from '../../src/xds/cache';
import { Snapshot } from '../../src/xds/snapshot';
import { startXdsServer, type RunningXdsServer } from '../../src/xds/server';
import { buildProxyResources } from '../../src/envoy/proxy-resources';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { PolicyEngine } from '../../src/policy/engine';
import type { L7PolicySpec, Resource } from '../../src/policy/model';
import { call, eventually, freePort, method } from '../helpers/grpc-shop';
import { startShopXdsServer } from '../helpers/grpc-xds-server';

/**
 * L3/L4 rules in gRPC mode on real calls: policies compiled by the engine (no L7 rules), served
 * by our xDS server as a Listener with the RBAC inline, enforced by gRPC's XdsServer on calls from
 * a plain grpc-js client. These are the Listeners grpc-go/java servers are served (addresses of
 * both families, deny rules by address), judged by grpc-js's RBAC engine where it judges them as
 * written: over IPv6 loopback only, so the client's address is ::1 (grpc-js-xds 1.14 sees IPv4
 * clients as ::ffff:a.b.c.d; what a grpc-js node is served instead: grpc-js-family-real.test.ts).
 */

const NODE = 'grpc-l4-server';

function world(spec: L7PolicySpec): Resource[] {
  return [
    { kind: 'Workload', name: 'client', namespace: 'shop', labels: { app: 'client' }, spec: { addresses: ['::1'], proxy: { nodeId: 'client' } } },
    { kind: 'Workload', name: 'other', namespace: 'shop', labels: { app: 'other' }, spec: { addresses: ['fd00::9'], proxy: { nodeId: 'other' } } },
    { kind: 'Workload', name: 'srv', namespace: 'shop', labels: { app: 'srv' }, spec: { addresses: ['fd00::5'], proxy: { nodeId: NODE } } },
    { kind: 'L7Policy', name: 'srv-policy', namespace: 'shop', spec },
  ];
}

describe('L3/L4 rules enforced by a real gRPC XdsServer (grpc mode, engine-compiled)', function () {
  this.timeout(60000);
  let xds: RunningXdsServer;
  let cache: SnapshotCache;
  let server: grpc.Server;
  let client: grpc.Client;
  let port: number;
  const engine = new PolicyEngine();

  const publish = (spec: L7PolicySpec): void => {
    engine.sync(world(spec));
    assert.deepEqual(engine.commit().conflicts, []);
    const compiled = engine.proxy(NODE);
    assert.ok(compiled);
    cache.setSnapshot(
      NODE,
      Snapshot.fromResources(
        buildProxyResources(compiled, {
          mode: 'grpc',
          redirect: DEFAULT_REDIRECT_CONFIG,
          grpcServerHost: '::1',
          servedPorts: [port],
          grpcServerImplementation: 'other',
        }),
      ),
    );
  };
  const select = { matchLabels: { app: 'srv' } };

  before(async () => {
    cache = new SnapshotCache();
    xds = await startXdsServer({ source: cache, port: 0, host: '127.0.0.1' });
    port = await freePort('::1');
    publish({
      endpointSelector: select,
      ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port, protocol: 'TCP' }] }] }],
    });
    server = await startShopXdsServer({ xdsPort: xds.port, nodeId: NODE, paths: [method('GetItem')], binds: [`[::1]:${port}`] });
    client = new grpc.Client(`[::1]:${port}`, grpc.credentials.createInsecure());
  });

  after(async () => {
    client?.close();
    server?.forceShutdown();
    await xds?.close();
  });

  it('an L4 rule admits its peer (by address) on its port', async () => {
    await eventually('GetItem allowed', async () => (await call(client, 'GetItem')) === grpc.status.OK);
  });

  it('a rule for another peer: the selected server is default deny', async () => {
    publish({ endpointSelector: select, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'other' } }], toPorts: [{ ports: [{ port, protocol: 'TCP' }] }] }] });
    await eventually('GetItem denied', async () => (await call(client, 'GetItem')) === grpc.status.PERMISSION_DENIED);
  });

  it('an L3 rule (all ports) admits its peer again', async () => {
    publish({ endpointSelector: select, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }] });
    await eventually('GetItem allowed', async () => (await call(client, 'GetItem')) === grpc.status.OK);
  });

  it('a deny rule wins over that allow', async () => {
    publish({
      endpointSelector: select,
      ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }],
      ingressDeny: [{ fromCIDR: ['::1/128'], toPorts: [{ ports: [{ port, protocol: 'TCP' }] }] }],
    });
    await eventually('GetItem denied', async () => (await call(client, 'GetItem')) === grpc.status.PERMISSION_DENIED);
  });

  it('a rule on another port leaves this one denied', async () => {
    publish({ endpointSelector: select, ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }] }] });
    await eventually('GetItem allowed', async () => (await call(client, 'GetItem')) === grpc.status.OK);
    publish({
      endpointSelector: select,
      ingress: [{ fromEndpoints: [{ matchLabels: { app: 'client' } }], toPorts: [{ ports: [{ port: port === 65535 ? 1 : port + 1, protocol: 'TCP' }] }] }],
    });
    await eventually('GetItem denied', async () => (await call(client, 'GetItem')) === grpc.status.PERMISSION_DENIED);
  });
});
