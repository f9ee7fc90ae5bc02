import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import * as fs from 'fs';
import { SnapshotCache } from '../../src/xds/cache';
import { Snapshot } from '../../src/xds/snapshot';
import { startXdsServer, type RunningXdsServer } from '../../src/xds/server';
import { TypeUrl } from '../../src/resource/type-urls';
import { edsCluster, endpoints } from '../helpers/envoy-resources';
import { rawClient, sotwStream, deltaStream, testNode, xdsServerPerTest } from '../helpers/raw-xds-client';
import { makeTestPki, type TestPki } from '../helpers/certs';

const node = testNode;

describe('xDS server under bad input', function () {
  this.timeout(30000);
  const bed = xdsServerPerTest({ limits: { maxNamesPerType: 5000 } }, (cache) =>
    cache.setSnapshot('good', Snapshot.fromResources([edsCluster('a'), endpoints('a', [1])])),
  );

  /** A healthy stream opened first must keep working whatever the bad one does. */
  async function healthyStream() {
    const s = sotwStream(bed.client);
    s.send({ node: node('good'), type_url: TypeUrl.Cluster });
    const r = await s.next();
    s.send({ type_url: TypeUrl.Cluster, version_info: r.version_info, response_nonce: r.nonce });
    return s;
  }

  let probes = 0;
  async function stillHealthy(s: Awaited<ReturnType<typeof healthyStream>>) {
    const probe = `probe-${++probes}`;
    bed.cache.setSnapshot('good', Snapshot.fromResources([edsCluster('a'), edsCluster(probe)]));
    const r = await s.next();
    assert.equal(r.resources.length, 2);
    assert.ok(
      r.resources.some((a) => Buffer.from(a.value).includes(probe)),
      `healthy stream got ${probe}`,
    );
    s.send({ type_url: TypeUrl.Cluster, version_info: r.version_info, response_nonce: r.nonce });
  }

  it('ends a stream asking for an unknown type_url with INVALID_ARGUMENT naming it', async () => {
    const good = await healthyStream();
    const bad = sotwStream(bed.client);
    bad.send({ node: node('good'), type_url: 'type.googleapis.com/not.a.Type' });
    const st = await bad.ended;
    assert.equal(st.code, grpc.status.INVALID_ARGUMENT);
    assert.match(st.details, /unknown type_url "type.googleapis.com\/not.a.Type"/);
    await stillHealthy(good);
    good.close();
  });

  it('rejects a first request without node.id, a node id changed mid-stream, and undecodable bytes', async () => {
    const good = await healthyStream();
    const noNode = sotwStream(bed.client);
    noNode.send({ type_url: TypeUrl.Cluster });
    assert.match((await noNode.ended).details, /must carry node.id/);

    const changed = deltaStream(bed.client);
    changed.send({ node: node('good'), type_url: TypeUrl.Cluster });
    await changed.next();
    changed.send({ node: node('other'), type_url: TypeUrl.Cluster });
    const st = await changed.ended;
    assert.equal(st.code, grpc.status.INVALID_ARGUMENT);
    assert.match(st.details, /node id changed/);

    const garbage = bed.client.makeBidiStreamRequest(
      '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
      (b: Buffer) => b,
      (b: Buffer) => b,
    );
    garbage.on('error', () => undefined);
    const ended = new Promise<grpc.StatusObject>((resolve) => garbage.on('status', resolve));
    garbage.write(Buffer.from([0xff, 0xff, 0xff, 0xff, 0x0f]));
    const gst = await ended;
    assert.equal(gst.code, grpc.status.INVALID_ARGUMENT);
    assert.match(gst.details, /undecodable/);
    await stillHealthy(good);
    good.close();
  });

  it('survives thousands of subscribe/unsubscribe requests and caps the name set', async () => {
    const good = await healthyStream();
    const churn = deltaStream(bed.client);
    churn.send({ node: node('good'), type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: ['a'] });
    await churn.next();
    for (let i = 0; i < 3000; i++) {
      churn.send({ type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: [`x${i}`], resource_names_unsubscribe: i > 0 ? [`x${i - 1}`] : [] });
    }
    // Each subscription to a missing name is answered once in removed_resources.
    let answered = 0;
    while (answered < 3000) answered += (await churn.next(5000)).removed_resources.length;
    assert.equal(answered, 3000);
    // Every unsubscribe took effect: only 'a' and the last name are left.
    const eds = bed.xds.controlPlane.status.get('good')!.types.find((t) => t.typeUrl === TypeUrl.ClusterLoadAssignment)!;
    assert.equal(eds.subscribedNames, 2);
    await stillHealthy(good);

    const flood = deltaStream(bed.client);
    flood.send({ node: node('good'), type_url: TypeUrl.ClusterLoadAssignment, resource_names_subscribe: Array.from({ length: 6000 }, (_, i) => `n${i}`) });
    const st = await flood.ended;
    assert.equal(st.code, grpc.status.RESOURCE_EXHAUSTED);
    await stillHealthy(good);
    churn.close();
    good.close();
  });

  it('close() returns while a client still holds its stream open', async () => {
    const x = await startXdsServer({ source: bed.cache, port: 0, host: '127.0.0.1' });
    const client = rawClient(x.port);
    const s = sotwStream(client);
    s.send({ node: node('good'), type_url: TypeUrl.Cluster });
    await s.next();
    const closed = await Promise.race([x.close().then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 5000))]);
    s.close();
    client.close();
    assert.ok(closed, 'close() still pending 5 s after it was called');
  });

  it('forgets a client that vanishes mid-push', async () => {
    const s = sotwStream(bed.client);
    s.send({ node: node('vanishing'), type_url: TypeUrl.Cluster });
    await new Promise((r) => setTimeout(r, 100));
    s.call.cancel();
    bed.cache.setSnapshot('vanishing', Snapshot.fromResources([edsCluster('z')]));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(bed.xds.controlPlane.status.get('vanishing')?.streams, 0);
    const good = await healthyStream();
    good.close();
  });
});

describe('xDS server with mTLS', function () {
  this.timeout(30000);
  let pki: TestPki;
  let xds: RunningXdsServer;
  const cache = new SnapshotCache();

  before(async () => {
    pki = makeTestPki();
    cache.setSnapshot('sidecar-a', Snapshot.fromResources([edsCluster('for-a')]));
    xds = await startXdsServer({
      source: cache,
      port: 0,
      host: '127.0.0.1',
      tls: { certFile: pki.serverCert, keyFile: pki.serverKey, clientCaFile: pki.caCert },
    });
  });
  after(async () => {
    await xds.close();
    pki.cleanup();
  });

  function tlsClient(identity: string): grpc.Client {
    const c = pki.client(identity);
    const creds = grpc.credentials.createSsl(fs.readFileSync(pki.caCert), fs.readFileSync(c.key), fs.readFileSync(c.cert));
    return rawClient(xds.port, creds, { 'grpc.ssl_target_name_override': 'localhost' });
  }

  it('serves a node whose certificate names it', async () => {
    const c = tlsClient('sidecar-a');
    const s = sotwStream(c);
    s.send({ node: node('sidecar-a'), type_url: TypeUrl.Cluster });
    assert.equal((await s.next()).resources.length, 1);
    s.close();
    c.close();
  });

  it('gives nothing to a node whose certificate names someone else', async () => {
    const c = tlsClient('sidecar-b');
    const s = sotwStream(c);
    s.send({ node: node('sidecar-a'), type_url: TypeUrl.Cluster });
    const st = await s.ended;
    assert.equal(st.code, grpc.status.PERMISSION_DENIED);
    assert.match(st.details, /does not match the client certificate identities \(sidecar-b/);
    c.close();
  });

  it('refuses a client without a certificate at the TLS layer', async () => {
    const c = rawClient(xds.port, grpc.credentials.createSsl(fs.readFileSync(pki.caCert)), { 'grpc.ssl_target_name_override': 'localhost' });
    const s = sotwStream(c);
    s.send({ node: node('sidecar-a'), type_url: TypeUrl.Cluster });
    const st = await s.ended;
    assert.equal(st.code, grpc.status.UNAVAILABLE);
    c.close();
  });
});
