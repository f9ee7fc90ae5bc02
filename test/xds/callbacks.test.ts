import * as assert from 'node:assert/strict';
import { SnapshotCache } from '../../src/xds/cache';
import { Snapshot } from '../../src/xds/snapshot';
import { startXdsServer, type RunningXdsServer } from '../../src/xds/server';
import type { NackRecord, RequestInfo, ResponseInfo, StreamInfo, XdsCallbacks } from '../../src/xds/callbacks';
import type { NodeInfo } from '../../src/xds/cache';
import { TypeUrl } from '../../src/resource/type-urls';
import { clientText, consoleLogger, withLevels } from '../../src/log';
import { edsCluster } from '../helpers/envoy-resources';
import { deltaStream, rawClient, sotwStream } from '../helpers/raw-xds-client';
import type * as grpc from '@grpc/grpc-js';

/** Records every callback as one line, for asserting the sequence a stream produces. */
class Recorder implements XdsCallbacks {
  readonly events: string[] = [];
  readonly responses: ResponseInfo[] = [];
  onStreamOpen(s: StreamInfo, node: NodeInfo, key: string): void {
    this.events.push(`open ${s.protocol} ${node.id} ${key}`);
  }
  onStreamClose(s: StreamInfo, node: NodeInfo | undefined): void {
    this.events.push(`close ${s.protocol} ${node?.id ?? '-'}`);
  }
  onRequest(_s: StreamInfo, _node: NodeInfo, r: RequestInfo): void {
    this.events.push(`request ${r.typeUrl.split('.').pop()} nonce=${r.responseNonce ? 'yes' : 'no'} wildcard=${r.wildcard}`);
  }
  onResponse(_s: StreamInfo, _node: NodeInfo, r: ResponseInfo): void {
    this.responses.push(r);
    this.events.push(`response ${r.typeUrl.split('.').pop()} ${r.resources}`);
  }
  onAck(_s: StreamInfo, _node: NodeInfo, typeUrl: string): void {
    this.events.push(`ack ${typeUrl.split('.').pop()}`);
  }
  onNack(_s: StreamInfo, _node: NodeInfo, typeUrl: string, nack: NackRecord): void {
    this.events.push(`nack ${typeUrl.split('.').pop()} ${nack.message}`);
  }
}

async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('xDS callbacks', function () {
  this.timeout(20_000);
  let xds: RunningXdsServer;
  let client: grpc.Client;
  const a = new Recorder();
  const b = new Recorder();
  const thrower: XdsCallbacks = {
    onRequest: () => {
      throw new Error('observer bug');
    },
  };
  const logged: string[] = [];

  before(async () => {
    const cache = new SnapshotCache();
    cache.setSnapshot('n1', Snapshot.fromResources([edsCluster('x'), edsCluster('y')]));
    xds = await startXdsServer({
      source: cache,
      port: 0,
      host: '127.0.0.1',
      callbacks: [a, thrower, b],
      log: { info: () => undefined, warn: (m) => logged.push(m) },
    });
    client = rawClient(xds.port);
  });
  after(async () => {
    client.close();
    await xds.close();
  });

  it('calls every observer, in order, for open, request, response, ACK, NACK and close; one that throws is logged and skipped', async () => {
    const s = sotwStream(client);
    s.send({ node: { id: 'n1' }, type_url: TypeUrl.Cluster });
    const r = await s.next();
    s.send({ type_url: TypeUrl.Cluster, version_info: r.version_info, response_nonce: r.nonce });
    await until(() => a.events.includes('ack Cluster'));
    s.close();
    await until(() => a.events.some((e) => e.startsWith('close')));
    assert.deepEqual(a.events, [
      'open sotw n1 n1',
      'request Cluster nonce=no wildcard=true',
      'response Cluster 2',
      'ack Cluster',
      'request Cluster nonce=yes wildcard=true',
      'close sotw n1',
    ]);
    assert.deepEqual(b.events, a.events);
    const res = a.responses[0];
    assert.equal(res.version, r.version_info);
    assert.equal(res.nonce, r.nonce);
    assert.ok(res.bytes > 0 && res.durationMs >= 0);
    assert.ok(logged.some((m) => /xds callback onRequest threw: observer bug/.test(m)));
    // The registry is one of the observers.
    assert.equal(xds.controlPlane.status.get('n1')?.types[0].ackedVersion, r.version_info);
  });

  it('reports Delta NACKs and a stream refused before it identified a node closes with no node', async () => {
    a.events.length = 0;
    const d = deltaStream(client);
    d.send({ node: { id: 'n1' }, type_url: TypeUrl.Cluster });
    const r = await d.next();
    d.send({ type_url: TypeUrl.Cluster, response_nonce: r.nonce, error_detail: { code: 3, message: 'no thanks' } });
    await until(() => a.events.includes('nack Cluster no thanks'));
    d.close();
    const bad = sotwStream(client);
    bad.send({ type_url: TypeUrl.Cluster });
    await bad.ended;
    await until(() => a.events.includes('close sotw -'));
    assert.ok(!a.events.some((e) => e.startsWith('open sotw')), 'no open for a stream without a node');
  });
});

describe('log', () => {
  it('clientText makes any string one bounded line of plain text', () => {
    assert.equal(clientText('plain id~10.0.0.1'), 'plain id~10.0.0.1');
    assert.equal(clientText('a\nb\r\tc\u001b[2J\u0007\\'), 'a\\nb\\r\\tc\\x1b[2J\\x07\\\\');
    assert.equal(clientText('\u202eevil\u2028'), '\\u202eevil\\u2028');
    assert.equal(clientText('x'.repeat(250)), `${'x'.repeat(200)}...(50 more characters)`);
    assert.equal(clientText('😀'.repeat(3), 3), '😀...(4 more characters)');
    assert.equal(clientText('\ud800x'), '\\ud800x');
  });

  it('withLevels fills in debug and error; consoleLogger drops what is below its level', () => {
    const seen: string[] = [];
    const l = withLevels({ info: (m) => seen.push(`info ${m}`), warn: (m) => seen.push(`warn ${m}`) });
    l.debug('d');
    l.error('e');
    assert.deepEqual(seen, ['warn e']);
    const out: string[] = [];
    const orig = console.log;
    console.log = (s: string) => out.push(s);
    try {
      consoleLogger('info').debug('hidden');
      consoleLogger('debug').debug('shown');
    } finally {
      console.log = orig;
    }
    assert.equal(out.length, 1);
    assert.match(out[0], /DEBUG shown$/);
  });
});
