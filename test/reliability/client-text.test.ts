import * as assert from 'node:assert/strict';
import { execFile } from 'child_process';
import * as http from 'http';
import * as path from 'path';
import { SnapshotCache } from '../../src/xds/cache';
import { startXdsServer, type RunningXdsServer } from '../../src/xds/server';
import { startAdminServer, type AdminServer } from '../../src/xds/admin-http';
import { TypeUrl } from '../../src/resource/type-urls';
import { packageRoot } from '../../src/paths';
import { rawClient, sotwStream } from '../helpers/raw-xds-client';
import { paddedSnapshot } from './harness';
import type * as grpc from '@grpc/grpc-js';

function get(port: number, hostHeader: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port, path: '/status', headers: { host: hostHeader } }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      })
      .on('error', reject);
  });
}

const FORGED = 'sidecar-a\n2026-01-01T00:00:00.000Z policy version 999: 0 proxies changed\u001b[2J\u001b]0;owned\u0007';
/** Printable, but reorders what a terminal shows after it. */
const REVERSING = 'sidecar-b\u202egnp.exe';
const ESC = /[\u0000-\u0008\u000b-\u001f\u007f]/;

/** #12 item 10: client strings reach logs and `meshaccel status` cut and escaped; the admin endpoint answers only its own names. */
describe('reliability: client strings and the admin endpoint', function () {
  this.timeout(60_000);
  let xds: RunningXdsServer;
  let admin: AdminServer;
  let client: grpc.Client;
  const logs: string[] = [];

  before(async () => {
    const cache = new SnapshotCache({ nodeHash: () => 'all' });
    cache.setSnapshot('all', paddedSnapshot(0, 2, 128));
    const log = { info: (m: string) => logs.push(m), warn: (m: string) => logs.push(m) };
    xds = await startXdsServer({ source: cache, port: 0, host: '127.0.0.1', log });
    admin = await startAdminServer({ nodes: () => xds.controlPlane.nodes() }, 0);
    client = rawClient(xds.port);
  });
  after(async () => {
    client.close();
    await admin.close();
    await xds.close();
  });

  it('answers /status only to a loopback Host (DNS rebinding gets 403)', async () => {
    for (const host of ['attacker.example', 'attacker.example:18001', '127.0.0.1.attacker.example', 'localhost.']) {
      const r = await get(admin.port, host);
      assert.equal(r.status, 403, `Host "${host}" got ${r.status}`);
      assert.doesNotMatch(r.body, /nodes/);
    }
    for (const host of [`127.0.0.1:${admin.port}`, `localhost:${admin.port}`, 'localhost', `[::1]:${admin.port}`]) {
      assert.equal((await get(admin.port, host)).status, 200, `Host "${host}"`);
    }
  });

  it('a node id with a newline and escape codes is refused, and forges no log line', async () => {
    logs.length = 0;
    const s = sotwStream(client);
    s.send({ node: { id: FORGED, locality: {} }, type_url: TypeUrl.Cluster });
    const st = await Promise.race([
      s.ended,
      new Promise<never>((_, reject) => setTimeout(() => reject(new Error('the stream was not refused within 5 s')), 5000)),
    ]);
    assert.equal(st.code, 3 /* INVALID_ARGUMENT */);
    assert.match(st.details, /node\.id contains control characters \("sidecar-a\\n2026-01-01T00:00:00\.000Z policy version 999/);
    assert.doesNotMatch(st.details, ESC);
    assert.ok(logs.length > 0, 'the refusal was logged');
    for (const line of logs) {
      assert.ok(!line.includes('\n'), `a log message spans lines: ${JSON.stringify(line)}`);
      assert.doesNotMatch(line, ESC, `a log message carries control characters: ${JSON.stringify(line)}`);
    }
  });

  it('user agents, NACK messages and node ids reach logs, gRPC status and `meshaccel status` escaped', async () => {
    logs.length = 0;
    const s = sotwStream(client);
    s.send({ node: { id: REVERSING, user_agent_name: 'envoy\u001b[31m red', locality: {} }, type_url: TypeUrl.Cluster });
    const r = await s.next();
    s.send({
      type_url: TypeUrl.Cluster,
      response_nonce: r.nonce,
      error_detail: { code: 3, message: 'bad\n2026-01-01T00:00:00.000Z policy version 1000\u001b[0m' },
    });
    // Then something the server logs with the node id: a request it refuses.
    s.send({ type_url: 'type.googleapis.com/not.a.Type\n\u001b[1mforged' });
    const st = await s.ended;
    assert.doesNotMatch(st.details, ESC);
    assert.ok(st.details.includes('not.a.Type\\n\\x1b[1mforged'), st.details);
    for (const line of logs) {
      assert.ok(!line.includes('\n'), `a log message spans lines: ${JSON.stringify(line)}`);
      assert.doesNotMatch(line, ESC, `a log message carries control characters: ${JSON.stringify(line)}`);
      assert.ok(!line.includes('\u202e'), `a log message carries a direction override: ${JSON.stringify(line)}`);
    }
    assert.ok(
      logs.some((l) => l.includes('sidecar-b\\u202egnp.exe')),
      logs.join('\n'),
    );

    const out = await new Promise<string>((resolve, reject) =>
      execFile(process.execPath, [path.join(packageRoot(), 'bin/meshaccel'), 'status', '--admin', `http://127.0.0.1:${admin.port}`], (err, stdout) =>
        err ? reject(err) : resolve(stdout),
      ),
    );
    assert.doesNotMatch(out, ESC, `meshaccel status printed control characters: ${JSON.stringify(out)}`);
    assert.ok(!out.includes('\u202e'), `meshaccel status printed a direction override: ${JSON.stringify(out)}`);
    const lines = out.split('\n');
    assert.ok(!lines.some((l) => /^\s*2026-01-01T00:00:00.000Z policy version/.test(l)), `a forged line in:\n${out}`);
    assert.ok(out.includes('sidecar-b\\u202egnp.exe'), out);
    assert.ok(out.includes('envoy\\x1b[31m red'), out);
    assert.ok(out.includes('bad\\n2026-01-01T00:00:00.000Z policy version 1000\\x1b[0m'), out);
  });
});
