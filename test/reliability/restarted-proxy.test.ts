import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'child_process';
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import { TypeUrl } from '../../src/resource/type-urls';
import { deltaStream } from '../helpers/raw-xds-client';
import { startExampleServer, stopExampleServer, type ExampleServer } from '../helpers/example-server';

const NODE = 'node-proxy-1';

/**
 * #12: a proxy restarted with new metadata while its old connection is half-open (the old
 * process gone without a FIN) must get its configuration within seconds, not when keepalives
 * end the old stream (about 40 s); a live proxy keeps its binding against an impostor (defect 4,
 * node-binding.test.ts).
 */
describe('reliability: a restarted proxy takes its node id over from its half-open old stream', function () {
  this.timeout(60_000);
  let bed: ExampleServer;
  let old: ChildProcess | undefined;
  const infos: string[] = [];

  before(async () => {
    bed = await startExampleServer('meshaccel-restart-', { log: { info: (m) => infos.push(m), warn: () => undefined } });
  });
  after(async () => {
    old?.kill('SIGKILL');
    await stopExampleServer(bed);
  });

  it('serves the restarted proxy a few seconds after its new claim when the old connection does not answer a PING', async () => {
    // The old proxy: node-proxy-1 without metadata (bound to nothing, 0 Listeners).
    old = spawn(process.execPath, [path.join(__dirname, 'half-open-proxy.js'), String(bed.server.xds.port), NODE], { stdio: ['ignore', 'pipe', 'inherit'] });
    const served = await new Promise<string>((resolve, reject) => {
      old?.stdout?.once('data', (b: Buffer) => resolve(b.toString().trim()));
      old?.once('exit', (code) => reject(new Error(`old proxy exited ${code}`)));
    });
    assert.equal(served, 'served 0');
    old.kill('SIGSTOP');

    // Restarted with the metadata of node-1: its Listeners, within the PING timeout (2 s) and a margin.
    const t0 = Date.now();
    const restarted = deltaStream(bed.client);
    restarted.send({ node: { id: NODE, metadata: { fields: { NODE_NAME: { stringValue: 'node-1' } } } }, type_url: TypeUrl.Listener });
    const r = await Promise.race([
      restarted.next(10_000),
      restarted.ended.then((st) => Promise.reject(new Error(`refused: ${grpc.status[st.code]}: ${st.details}`))),
    ]);
    const ms = Date.now() - t0;
    assert.deepEqual(r.resources.map((x) => x.name).sort(), ['meshaccel.inbound', 'meshaccel.outbound']);
    // The PING timeout is 2 s; the rest is building node-1's first snapshot on a shared machine.
    // Keepalive alone would take about 40 s.
    assert.ok(ms < 10_000, `served after ${ms} ms`);
    assert.ok(infos.some((m) => /node "node-proxy-1" taken over from its dead stream/.test(m)));
    restarted.close();
  });
});
