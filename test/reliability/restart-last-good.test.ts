import * as assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'child_process';
import { createHash } from 'crypto';
import * as fs from 'fs';
import * as http from 'http';
import * as net from 'net';
import * as path from 'path';
import type * as grpc from '@grpc/grpc-js';
import { TypeUrl } from '../../src/resource/type-urls';
import { deltaStream, rawClient, sotwStream, type DecodedDeltaResponse, type DecodedSotwResponse, type RawXdsStream } from '../helpers/raw-xds-client';
import { ROOT, tmpDir } from '../policy/helpers';

/**
 * Issue #12 item 6, through real `meshaccel serve` processes and real xDS streams: a restart
 * while one file was invalid or unreadable served every proxy 0 Listener, Cluster, ECDS and
 * Route resources, and told Delta clients to remove all of them. The last good set of files is
 * persisted under --state-dir and served when the files fail at start-up; with nothing (usable)
 * persisted, no configuration is served at all rather than an empty one.
 */

const NODE = 'sidecar~10.1.0.10~api-0.shop~shop.svc.cluster.local';
const TYPES = [TypeUrl.Listener, TypeUrl.Cluster, TypeUrl.ExtensionConfig, TypeUrl.RouteConfiguration];
const STEP_MS = 8000;
/** Starting a server loads Envoy's protos and compiles the examples: about 1 s, far longer on a loaded machine. */
const START_MS = 30000;
/** Root reads a file whatever its mode: the servers run as nobody so that chmod 000 makes a file unreadable. */
const NOBODY = 65534;
const asRoot = process.getuid?.() === 0;

interface Serve {
  child: ChildProcess;
  port: number;
  adminPort: number;
  output(): string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

/** `meshaccel serve` on the directories, until it says where it listens. */
async function startServe(policies: string, workloads: string, stateDir: string): Promise<Serve> {
  const adminPort = await freePort();
  const args = [
    path.join(ROOT, 'bin', 'meshaccel'),
    'serve',
    '--host',
    '127.0.0.1',
    '--port',
    '0',
    '--admin-port',
    String(adminPort),
    '--state-dir',
    stateDir,
    '--policies',
    policies,
    '--workloads',
    workloads,
  ];
  const child = spawn(process.execPath, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...(asRoot ? { uid: NOBODY, gid: NOBODY } : {}) });
  let out = '';
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start within ${START_MS} ms:\n${out}`)), START_MS);
    const check = (): void => {
      const m = /listening on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolve(Number(m[1]));
      }
    };
    child.stdout?.on('data', check);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`serve exited with ${code}:\n${out}`));
    });
  });
  return {
    child,
    port,
    adminPort,
    output: () => out,
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}

function status(adminPort: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    http
      .get({ host: '127.0.0.1', port: adminPort, path: '/status' }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve(JSON.parse(body) as Record<string, unknown>));
      })
      .on('error', reject);
  });
}

type Served = Map<string, string[]>;

/** Listeners and clusters are wildcard in SotW; ECDS and routes are asked for by name, as Envoy does. */
const BY_NAME: readonly string[] = [TypeUrl.ExtensionConfig, TypeUrl.RouteConfiguration];

/** The names the example node's listeners refer to, for a SotW client that has seen no Delta answer. */
const EXAMPLE_NAMES: Versions = new Map<string, Record<string, string>>([
  [TypeUrl.ExtensionConfig, { 'meshaccel.rbac.inbound.8080': '', 'meshaccel.rbac.inbound.9100': '' }],
  [TypeUrl.RouteConfiguration, { 'meshaccel.inbound': '', 'meshaccel.outbound': '' }],
]);

function sotwRequest(type: string, versions: Versions): Record<string, unknown> {
  return { node: { id: NODE }, type_url: type, resource_names: BY_NAME.includes(type) ? Object.keys(versions.get(type) ?? {}).sort() : [] };
}

/** What a SotW ADS client is served: for each type, digests of the serialized resources, sorted. */
async function sotwServed(client: grpc.Client, versions: Versions): Promise<{ served: Served; stream: RawXdsStream<DecodedSotwResponse> }> {
  const stream = sotwStream(client);
  const served: Served = new Map();
  for (const type of TYPES) {
    stream.send(sotwRequest(type, versions));
    const r = await stream.next(STEP_MS);
    assert.equal(r.type_url, type);
    served.set(type, r.resources.map((x) => createHash('sha256').update(x.value).digest('hex').slice(0, 16)).sort());
    // An ACK repeats the names: a SotW request with none unsubscribes from a by-name type.
    stream.send({ ...sotwRequest(type, versions), version_info: r.version_info, response_nonce: r.nonce });
  }
  return { served, stream };
}

type Versions = Map<string, Record<string, string>>;

/** A Delta ADS client subscribing to everything; `known` is what it holds (initial_resource_versions). */
function deltaSubscribe(client: grpc.Client, known?: Versions): RawXdsStream<DecodedDeltaResponse> {
  const stream = deltaStream(client);
  for (const type of TYPES) {
    stream.send({ node: { id: NODE }, type_url: type, resource_names_subscribe: ['*'], initial_resource_versions: known?.get(type) ?? {} });
  }
  return stream;
}

async function deltaResponses(stream: RawXdsStream<DecodedDeltaResponse>): Promise<Map<string, DecodedDeltaResponse>> {
  const byType = new Map<string, DecodedDeltaResponse>();
  while (byType.size < TYPES.length) {
    const r = await stream.next(STEP_MS);
    assert.ok(!byType.has(r.type_url), `one response per type, got a second for ${r.type_url}`);
    byType.set(r.type_url, r);
    stream.send({ type_url: r.type_url, response_nonce: r.nonce });
  }
  return byType;
}

describe('robust: a restarted serve keeps serving the last good configuration (#12 item 6)', function () {
  this.timeout(90000);
  let dir: string;
  let policies: string;
  let workloads: string;
  let stateDir: string;
  const running: Serve[] = [];
  const clients: grpc.Client[] = [];
  const streams: Array<{ close(): void }> = [];

  beforeEach(() => {
    dir = tmpDir('restart-last-good');
    policies = path.join(dir, 'policies');
    workloads = path.join(dir, 'workloads');
    stateDir = path.join(dir, 'state');
    fs.cpSync(path.join(ROOT, 'examples', 'policies'), policies, { recursive: true });
    fs.cpSync(path.join(ROOT, 'examples', 'workloads'), workloads, { recursive: true });
    if (asRoot) {
      fs.chownSync(dir, NOBODY, NOBODY);
      for (const f of fs.readdirSync(dir, { recursive: true, encoding: 'utf8' })) fs.chownSync(path.join(dir, f), NOBODY, NOBODY);
    }
  });
  afterEach(async () => {
    for (const s of streams.splice(0)) s.close();
    for (const c of clients.splice(0)) c.close();
    for (const s of running.splice(0)) await s.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  const serve = async (): Promise<Serve> => {
    const s = await startServe(policies, workloads, stateDir);
    running.push(s);
    return s;
  };
  const connect = (s: Serve): grpc.Client => {
    const c = rawClient(s.port);
    clients.push(c);
    return c;
  };
  const track = <T extends { close(): void }>(s: T): T => {
    streams.push(s);
    return s;
  };

  /** A first server on good files: what a SotW and a Delta client are served, before the restart. */
  async function beforeRestart(): Promise<{ served: Served; versions: Versions }> {
    const first = await serve();
    const client = connect(first);
    const delta = track(deltaSubscribe(client));
    const versions: Versions = new Map();
    for (const [type, r] of await deltaResponses(delta)) versions.set(type, Object.fromEntries(r.resources.map((x) => [x.name, x.version])));
    const { served, stream } = await sotwServed(client, versions);
    track(stream);
    for (const type of TYPES) assert.ok((served.get(type) ?? []).length > 0, `the example node is served some ${type}`);
    assert.deepEqual(
      [...served.values()].map((r) => r.length),
      [...versions.values()].map((v) => Object.keys(v).length),
      'SotW and Delta serve the same resources',
    );
    // A crash, not a clean stop: nothing may depend on shutting down in order.
    await first.stop();
    return { served, versions };
  }

  /** After the restart: the same resources to a SotW client, and nothing new and nothing removed to the Delta client. */
  async function assertServedAsBefore(s: Serve, before: { served: Served; versions: Versions }): Promise<void> {
    const client = connect(s);
    const { served, stream } = await sotwServed(client, before.versions);
    track(stream);
    assert.deepEqual(served, before.served, 'SotW: the resources served before the restart');
    const delta = track(deltaSubscribe(client, before.versions));
    for (const [type, r] of await deltaResponses(delta)) {
      assert.deepEqual(r.removed_resources, [], `Delta ${type}: nothing removed`);
      assert.deepEqual(
        r.resources.map((x) => [x.name, x.version]),
        [],
        `Delta ${type}: nothing to update, the client already has these versions`,
      );
    }
    await delta.nothingFor(300);
  }

  it('restarted with one file invalid: both clients keep exactly what they had, and serve says it serves the persisted set because of that file', async () => {
    const before = await beforeRestart();
    const broken = path.join(policies, 'http-api-allowlist.yaml');
    fs.writeFileSync(broken, fs.readFileSync(broken, 'utf8').replace('path: /v1/orders', 'path: /v1/(?=orders)'));
    const s = await serve();
    await assertServedAsBefore(s, before);
    assert.match(
      s.output(),
      /WARN serving the last good configuration persisted at \S+ \(5 files\) because the files on disk fail .*; 1 file failed \(.*http-api-allowlist\.yaml\)/,
    );
    const st = await status(s.adminPort);
    assert.match(String(st.policyServing), /^serving the last good configuration persisted at .*http-api-allowlist\.yaml/);
    assert.ok(
      (st.policyErrors as string[]).some((e) => /http-api-allowlist\.yaml:\d+:\d+: .*RE2/.test(e)),
      JSON.stringify(st.policyErrors),
    );

    // Fixed, the files serve again (the persisted set is replaced, not kept for ever).
    const sotw = track(sotwStream(connect(s)));
    sotw.send(sotwRequest(TypeUrl.ExtensionConfig, before.versions));
    const r1 = await sotw.next(STEP_MS);
    sotw.send({ ...sotwRequest(TypeUrl.ExtensionConfig, before.versions), version_info: r1.version_info, response_nonce: r1.nonce });
    fs.writeFileSync(broken, fs.readFileSync(broken, 'utf8').replace('path: /v1/(?=orders)', 'path: /v1/orders(/[0-9]+)?'));
    const r2 = await sotw.next(STEP_MS);
    assert.notEqual(r2.version_info, r1.version_info);
    assert.equal(r2.resources.length, r1.resources.length);
    assert.equal((await status(s.adminPort)).policyServing, 'the policy files');
    // ...and persisted in place of the set it replaced.
    const [stateFile] = fs.readdirSync(stateDir).filter((f) => f.endsWith('.json'));
    const record = JSON.parse(fs.readFileSync(path.join(stateDir, stateFile), 'utf8')) as { files: { file: string; text: string }[] };
    assert.match(record.files.find((f) => f.file === broken)?.text ?? '', /path: \/v1\/orders\(\/\[0-9\]\+\)\?/);
  });

  it('restarted with one file unreadable: both clients keep exactly what they had, and serve names the file', async function () {
    const before = await beforeRestart();
    const unreadable = path.join(workloads, fs.readdirSync(workloads).filter((f) => f.endsWith('.yaml'))[0]);
    fs.chmodSync(unreadable, 0o000);
    const s = await serve();
    await assertServedAsBefore(s, before);
    assert.match(
      s.output(),
      /WARN serving the last good configuration persisted at \S+ \(5 files\) because the files on disk fail \(1 error; first: .*EACCES.*\); .*1 file failed \(/,
    );
    assert.ok(s.output().includes(`1 file failed (${unreadable})`), s.output());
  });

  it('restarted with a file truncated to nothing while it was down: holds it as suspect against the persisted text, as a running server does', async () => {
    const before = await beforeRestart();
    const truncated = path.join(workloads, 'shop.yaml');
    fs.writeFileSync(truncated, '');
    const s = await serve();
    await assertServedAsBefore(s, before);
    assert.match(s.output(), /shop\.yaml:1:1: suspect change held, its last good content keeps serving: the file shrank to no documents/);
  });

  it('restarted with nothing persisted and a bad file: serves no configuration at all (not an empty one), then the files once they pass', async () => {
    const broken = path.join(policies, 'http-api-allowlist.yaml');
    const good = fs.readFileSync(broken, 'utf8');
    fs.writeFileSync(broken, good.replace('path: /v1/orders', 'path: /v1/(?=orders)'));
    const s = await serve();
    const client = connect(s);
    const sotw = track(sotwStream(client));
    for (const type of TYPES) sotw.send(sotwRequest(type, EXAMPLE_NAMES));
    const delta = track(deltaSubscribe(client));
    await sotw.nothingFor(1500);
    await delta.nothingFor(200);
    assert.match(
      s.output(),
      /WARN initial policy load failed: 1 file failed \(.*http-api-allowlist\.yaml\); no persisted configuration to serve: no configuration persisted in .*; serving no configuration/,
    );
    const st = await status(s.adminPort);
    assert.match(String(st.policyServing), /^no configuration: the initial load failed/);
    assert.ok((st.policyErrors as string[]).some((e) => /http-api-allowlist\.yaml:\d+:\d+: .*RE2/.test(e)));

    // Once the file passes, the waiting clients get the whole configuration.
    fs.writeFileSync(broken, good);
    for (let i = 0; i < TYPES.length; i++) {
      const r = await sotw.next(STEP_MS);
      assert.ok(r.resources.length > 0, `${r.type_url} served once the files pass`);
    }
    for (const [type, r] of await deltaResponses(delta)) assert.deepEqual(r.removed_resources, [], `Delta ${type}: nothing removed`);
  });

  it('refuses a corrupted state file with the reason and never serves it', async () => {
    await beforeRestart();
    const [stateFile] = fs.readdirSync(stateDir).filter((f) => f.endsWith('.json'));
    const file = path.join(stateDir, stateFile);
    // Tampered with: a policy in it now allows another path, its digest no longer matches.
    const record = JSON.parse(fs.readFileSync(file, 'utf8')) as { files: { file: string; text: string }[] };
    const entry = record.files.find((f) => f.file.endsWith('http-api-allowlist.yaml'));
    assert.ok(entry);
    entry.text = entry.text.replace('path: /v1/orders', 'path: /admin');
    fs.writeFileSync(file, JSON.stringify(record));
    if (asRoot) fs.chownSync(file, NOBODY, NOBODY);
    const broken = path.join(workloads, fs.readdirSync(workloads).filter((f) => f.endsWith('.yaml'))[0]);
    fs.appendFileSync(broken, '\n---\nkind: Workload\n');

    const s = await serve();
    const client = connect(s);
    const sotw = track(sotwStream(client));
    for (const type of TYPES) sotw.send(sotwRequest(type, EXAMPLE_NAMES));
    await sotw.nothingFor(1500);
    assert.match(
      s.output(),
      /WARN initial policy load failed: 1 file failed \(.*\); no persisted configuration to serve: .*last-good-[0-9a-f]+\.json is corrupt: the text of .*http-api-allowlist\.yaml does not match its digest; serving no configuration/,
    );
    assert.match(String((await status(s.adminPort)).policyServing), /is corrupt: the text of .*http-api-allowlist\.yaml does not match its digest/);
  });
});
