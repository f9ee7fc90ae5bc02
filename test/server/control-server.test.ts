import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import type * as grpc from '@grpc/grpc-js';
import type { RunningControlServer } from '../../src/server/control-server';
import { TypeUrl } from '../../src/resource/type-urls';
import { decodeAny } from '../helpers/envoy-resources';
import { deltaStream } from '../helpers/raw-xds-client';
import { startExampleServer, stopExampleServer } from '../helpers/example-server';

const API_NODE = 'sidecar~10.1.0.10~api-0.shop~shop.svc.cluster.local';
const quiet = { info: () => undefined, warn: () => undefined };

/** `meshaccel serve` end to end: example policy files in, checked Envoy resources out over xDS. */
describe('control server on the file policy store', function () {
  this.timeout(30000);
  let dir: string;
  let server: RunningControlServer;
  let client: grpc.Client;
  const warnings: string[] = [];

  before(async () => {
    ({ dir, server, client } = await startExampleServer('meshaccel-serve-', { adminPort: 0, log: { info: quiet.info, warn: (m) => warnings.push(m) } }));
  });
  after(() => stopExampleServer({ dir, server, client }));

  it('serves a sidecar its RBAC over ECDS and its capture listeners, and re-serves on a policy edit; a bad edit keeps the last good config', async () => {
    const ecds = deltaStream(client);
    ecds.send({ node: { id: API_NODE }, type_url: TypeUrl.ExtensionConfig, resource_names_subscribe: ['*'] });
    const r1 = await ecds.next(5000);
    const names = r1.resources.map((r) => r.name);
    assert.ok(
      names.some((n) => n.includes('8080')),
      `RBAC for port 8080 in ${names.join(', ')}`,
    );
    const rbac = r1.resources.find((r) => r.name.includes('8080'))!;
    const tec = decodeAny(rbac.resource!.type_url, rbac.resource!.value);
    assert.equal((tec.typed_config as { type_url: string }).type_url, 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC');
    ecds.send({ type_url: TypeUrl.ExtensionConfig, response_nonce: r1.nonce });

    const lds = deltaStream(client);
    lds.send({ node: { id: API_NODE }, type_url: TypeUrl.Listener });
    const l1 = await lds.next(5000);
    assert.deepEqual(l1.resources.map((r) => r.name).sort(), ['meshaccel.inbound', 'meshaccel.outbound'], 'standalone mode emits its capture listeners');
    lds.close();

    // A valid edit (a new allowed path) reaches the proxy as a new RBAC version.
    const file = path.join(dir, 'policies/http-api-allowlist.yaml');
    const original = fs.readFileSync(file, 'utf8');
    fs.writeFileSync(file, original.replace('path: /v1/orders', 'path: /v1/orders(/[0-9]+)?'));
    const r2 = await ecds.next(5000);
    assert.ok(
      r2.resources.some((r) => r.name === rbac.name && r.version !== rbac.version),
      'RBAC re-sent with a new version',
    );
    ecds.send({ type_url: TypeUrl.ExtensionConfig, response_nonce: r2.nonce });

    // An invalid regex (lookahead is not RE2) is reported with file and line; nothing is pushed.
    fs.writeFileSync(file, original.replace('path: /v1/orders', 'path: /v1/(?=orders)'));
    await new Promise((r) => setTimeout(r, 1000));
    await ecds.nothingFor(200);
    assert.ok(
      warnings.some((w) => /http-api-allowlist\.yaml:\d+:\d+: .*path.*RE2/i.test(w)),
      `diagnostic names file:line and RE2:\n${warnings.join('\n')}`,
    );
    assert.ok(server.source.errors().length > 0);
    ecds.close();
  });
});

describe('control server: only connected nodes are built', function () {
  this.timeout(30000);
  let dir: string;
  let server: RunningControlServer;
  let client: grpc.Client;

  before(async () => {
    ({ dir, server, client } = await startExampleServer('meshaccel-serve-', { log: quiet, nodeGraceMs: 200 }));
  });
  after(() => stopExampleServer({ dir, server, client }));

  it('a sidecar whose stream ended is forgotten after the grace period and not rebuilt on later edits', async () => {
    const file = path.join(dir, 'policies/http-api-allowlist.yaml');
    const original = fs.readFileSync(file, 'utf8');
    const edited = (): Promise<void> =>
      new Promise((resolve) => {
        server.store.once('update', () => resolve());
      });
    const ecds = deltaStream(client);
    ecds.send({ node: { id: API_NODE }, type_url: TypeUrl.ExtensionConfig, resource_names_subscribe: ['*'] });
    await ecds.next(5000);
    assert.deepEqual(server.snapshots.knownNodes(), [API_NODE]);
    const builds = server.snapshots.buildCount;
    let update = edited();
    fs.writeFileSync(file, original.replace('path: /v1/orders', 'path: /v1/orders(/[0-9]+)?'));
    await update;
    assert.equal(server.snapshots.buildCount, builds + 1, 'a connected node is rebuilt');

    ecds.close();
    for (let i = 0; i < 50 && server.snapshots.knownNodes().length > 0; i++) await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(server.snapshots.knownNodes(), [], 'forgotten once its stream ended and the grace period passed');
    update = edited();
    fs.writeFileSync(file, original.replace('path: /v1/orders', 'path: /v1/(orders|carts)'));
    await update;
    assert.equal(server.snapshots.buildCount, builds + 1, 'a disconnected node is not rebuilt');
  });
});
