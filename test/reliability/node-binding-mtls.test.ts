import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import { TypeUrl } from '../../src/resource/type-urls';
import { bindingDenial, BindingGrantsError, loadBindingGrants } from '../../src/server/binding-grants';
import { makeTestPki, type TestPki } from '../helpers/certs';
import { deltaStream, rawClient } from '../helpers/raw-xds-client';
import { startExampleServer, stopExampleServer, type ExampleServer } from '../helpers/example-server';

const onNode = (id: string, nodeName?: string): Record<string, unknown> => ({
  id,
  metadata: nodeName === undefined ? { fields: {} } : { fields: { NODE_NAME: { stringValue: nodeName } } },
});

const LEDGER = `apiVersion: meshaccel.io/v1alpha1
kind: Workload
metadata:
  name: ledger-0
  namespace: ops
  labels:
    app: ledger
spec:
  addresses: [10.2.0.60]
  serviceAccount: ledger
  proxy:
    nodeMetadata:
      NODE_NAME: node-1
`;

/**
 * #12 item 4 under mTLS: the certificate decides which workloads a node's metadata may bind.
 * In the examples, NODE_NAME: node-1 binds shop/kafka-0 (service account kafka) and
 * shop/orders-0 (orders). The per-node proxy `node-proxy-1` is granted namespace shop.
 */
describe('reliability: under mTLS the certificate decides which bindings a node may claim', function () {
  this.timeout(60_000);
  let pki: TestPki;
  let bed: ExampleServer;
  const warnings: string[] = [];

  before(async () => {
    pki = makeTestPki();
    bed = await startExampleServer('meshaccel-mtls-binding-', {
      log: { info: () => undefined, warn: (m) => warnings.push(m) },
      tls: { certFile: pki.serverCert, keyFile: pki.serverKey, clientCaFile: pki.caCert },
      bindingGrants: [{ identity: 'node-proxy-1', namespaces: ['shop'], serviceAccounts: [], workloads: [] }],
    });
  });
  after(async () => {
    await stopExampleServer(bed);
    pki.cleanup();
  });

  function tlsClient(identity: string): grpc.Client {
    const c = pki.client(identity);
    const creds = grpc.credentials.createSsl(fs.readFileSync(pki.caCert), fs.readFileSync(c.key), fs.readFileSync(c.cert));
    return rawClient(bed.server.xds.port, creds, { 'grpc.ssl_target_name_override': 'localhost' });
  }

  it('serves the granted per-node proxy, refuses other certificates claiming its metadata, and withholds a later edit binding an ungranted workload', async () => {
    const proxyClient = tlsClient('node-proxy-1');
    const lds = deltaStream(proxyClient);
    lds.send({ node: onNode('node-proxy-1', 'node-1'), type_url: TypeUrl.Listener });
    const l1 = await lds.next(5000);
    assert.deepEqual(l1.resources.map((r) => r.name).sort(), ['meshaccel.inbound', 'meshaccel.outbound']);
    lds.send({ type_url: TypeUrl.Listener, response_nonce: l1.nonce });
    const cds = deltaStream(proxyClient);
    cds.send({ node: onNode('node-proxy-1', 'node-1'), type_url: TypeUrl.Cluster });
    const c1 = await cds.next(5000);
    assert.ok(c1.resources.length > 0);
    cds.send({ type_url: TypeUrl.Cluster, response_nonce: c1.nonce });

    // A valid certificate of one workload's service account, and one granted nothing, each
    // claiming node-1's metadata: refused, naming the first workload they may not bind.
    for (const [identity, granted] of [
      ['spiffe://cluster.local/ns/shop/sa/orders', 'shop/kafka-0 (service account kafka)'],
      ['node-proxy-2', 'shop/kafka-0 (service account kafka)'],
    ]) {
      const c = tlsClient(identity);
      const hostile = deltaStream(c);
      hostile.send({ node: onNode(identity, 'node-1'), type_url: TypeUrl.Listener });
      const st = await Promise.race([hostile.ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);
      assert.ok(st, `the claim of ${identity} was refused`);
      assert.equal(grpc.status[st.code], 'PERMISSION_DENIED');
      assert.match(
        st.details,
        new RegExp(`node "${identity}" may not bind workload ${granted.replace(/[()]/g, '\\$&')} through metadata \\{"NODE_NAME":"node-1"\\}`),
      );
      c.close();
    }
    assert.ok(
      warnings.some((w) => /PERMISSION_DENIED: node "node-proxy-2" may not bind workload shop\/kafka-0/.test(w)),
      'the refusal is logged',
    );
    // The SPIFFE ID of a service account binds that service account's workloads by itself.
    const own = tlsClient('spiffe://cluster.local/ns/shop/sa/orders');
    const ownStream = deltaStream(own);
    ownStream.send({ node: onNode('spiffe://cluster.local/ns/shop/sa/orders'), type_url: TypeUrl.Listener });
    assert.ok(Array.isArray((await ownStream.next(5000)).resources));
    ownStream.close();
    own.close();
    await lds.nothingFor(300);
    await cds.nothingFor(10);

    // The operator binds a workload of namespace ops to node-1: node-proxy-1 is not granted ops,
    // so that configuration is withheld and the proxy keeps the one it has.
    const ledger = path.join(bed.dir, 'workloads', 'ledger.yaml');
    fs.writeFileSync(`${ledger}.tmp`, LEDGER);
    fs.renameSync(`${ledger}.tmp`, ledger);
    const t0 = Date.now();
    while (!warnings.some((w) => /new configuration withheld/.test(w)) && Date.now() - t0 < 15_000) await new Promise((r) => setTimeout(r, 50));
    const withheld = warnings.filter((w) => /new configuration withheld/.test(w));
    assert.ok(withheld.length > 0, 'the edit reached the node and was withheld');
    assert.match(withheld[0], /node "node-proxy-1" may not bind workload ops\/ledger-0 \(service account ledger\)/);
    await lds.nothingFor(500);
    await cds.nothingFor(10);

    // Taking the binding out again lets the node follow the files once more.
    fs.rmSync(ledger);
    const t1 = Date.now();
    const ledgerBound = (): boolean => bed.server.store.workloadsBoundTo('node-proxy-1', { NODE_NAME: 'node-1' }).some((w) => w.workload.name === 'ledger-0');
    while (ledgerBound() && Date.now() - t1 < 15_000) await new Promise((r) => setTimeout(r, 50));
    assert.ok(!ledgerBound(), 'the removal was applied');
    lds.close();
    cds.close();
    proxyClient.close();
  });

  it('lets a new stream of the same certificate identity supersede the old one, which ends with ABORTED', async () => {
    const before = tlsClient('node-proxy-1');
    const oldStream = deltaStream(before);
    oldStream.send({ node: onNode('node-proxy-1'), type_url: TypeUrl.Listener });
    assert.equal((await oldStream.next(5000)).resources.length, 0, 'bound to nothing without metadata');
    const after = tlsClient('node-proxy-1');
    const restarted = deltaStream(after);
    restarted.send({ node: onNode('node-proxy-1', 'node-1'), type_url: TypeUrl.Listener });
    const st = await Promise.race([oldStream.ended, new Promise<undefined>((r) => setTimeout(() => r(undefined), 5000))]);
    assert.ok(st, 'the old stream was ended');
    assert.equal(grpc.status[st.code], 'ABORTED');
    assert.match(st.details, /superseded by a new stream of the same certificate identity by stream \d+ from /);
    assert.equal((await restarted.next(5000)).resources.length, 2);
    restarted.close();
    before.close();
    after.close();
  });

  it('escapes client strings in the denial', () => {
    const denial = bindingDenial(
      'evil\n[info] policy version 999\u001b[31m',
      ['evil\n'],
      [
        {
          binding: 'metadata:{"NODE_NAME":"node-1"}',
          workload: { kind: 'Workload', name: 'kafka-0', namespace: 'shop', labels: {}, spec: { addresses: [], proxy: {} } },
        },
      ],
      { trustDomain: 'cluster.local', grants: [] },
    );
    assert.ok(denial);
    assert.doesNotMatch(denial, /[\n\u001b]/);
    assert.match(denial, /node "evil\\n\[info\] policy version 999\\x1b\[31m" may not bind workload shop\/kafka-0 \(service account default\)/);
  });

  it('reads a grants file and refuses a bad one with file, line and field', () => {
    const dir = fs.mkdtempSync(path.join(pki.dir, 'grants-'));
    const good = path.join(dir, 'good.yaml');
    fs.writeFileSync(good, 'grants:\n  - identity: node-proxy-1\n    nodeMetadata: {NODE_NAME: node-1}\n  - identity: gw\n    namespaces: [ops]\n');
    assert.deepEqual(loadBindingGrants(good), [
      { identity: 'node-proxy-1', namespaces: [], serviceAccounts: [], workloads: [], nodeMetadata: { NODE_NAME: 'node-1' } },
      { identity: 'gw', namespaces: ['ops'], serviceAccounts: [], workloads: [], nodeMetadata: undefined },
    ]);
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(bad, 'grants:\n  - identity: gw\n    serviceAccounts: [ops]\n    namespace: [ops]\n');
    assert.throws(
      () => loadBindingGrants(bad),
      (err: unknown) =>
        err instanceof BindingGrantsError &&
        /bad\.yaml:3:\d+: grants\[0\]\.serviceAccounts: must be a list of namespace\/name strings/.test(err.message) &&
        /bad\.yaml:4:\d+: grants\[0\]\.namespace: unknown field/.test(err.message),
    );
  });
});
