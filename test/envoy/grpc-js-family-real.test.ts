import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import * as grpc from '@grpc/grpc-js';
import { startControlServer, type RunningControlServer } from '../../src/server/control-server';
import { silentLogger } from '../../src/log';
import { TypeUrl } from '../../src/resource/type-urls';
import { loadFiles } from '../../src/policy/loader';
import { PolicyEngine } from '../../src/policy/engine';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { formatTrace, traceConnection } from '../../src/trace/trace';
import type { GrpcImplementation } from '../../src/envoy/builders/grpc-js-peers';
import { call, eventually, freePort, method } from '../helpers/grpc-shop';
import { decodeAny } from '../helpers/envoy-resources';
import { startServerProcess, type ServerProcess } from '../helpers/grpc-js-server-process';
import { ROOT, tmpDir } from '../policy/helpers';

/**
 * Address families at a real XdsServer of @grpc/grpc-js-xds, served by meshaccel's control
 * server in grpc mode from policy files, called by real grpc-js clients from 127.0.0.1 (IPv4)
 * and ::1 (IPv6). The server runs in a process of its own, so its death is seen, not suffered.
 * - The peer as it is (what meshaccel served it before, and still serves grpc-go/java nodes,
 *   `grpcServerImplementation: 'other'`): it listens on [::], sees the IPv4 client as
 *   ::ffff:127.0.0.1, so a deny naming 127.0.0.1 lets it through, and an IPv6 range in its RBAC
 *   ends the process on the first IPv4 call. If grpc-js fixes either, these tests say so.
 * - What meshaccel serves it now (the node's user agent says grpc-js): no IPv6 range, no deny
 *   rule that would not apply; allow rules can only deny more than written (never allow more),
 *   the server survives every call, and what it cannot enforce is refused at its field by
 *   `policy check --mode grpc` and by `serve` (the last good Listener keeps serving).
 */

const NODE = 'family-srv';
const GET = method('GetItem');
const DELETE = method('DeleteItem');

function workloads(): string {
  const w = (name: string, addresses: string[], nodeId: string): string =>
    `apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata: {name: ${name}, namespace: shop, labels: {app: ${name}}}\nspec:\n  addresses: [${addresses.map((a) => `"${a}"`).join(', ')}]\n  serviceAccount: ${name}\n  proxy: {nodeId: ${nodeId}}\n`;
  return [w('srv', ['192.0.2.10', '2001:db8::10'], NODE), w('client4', ['127.0.0.1'], 'client4'), w('client6', ['::1'], 'client6')].join('---\n');
}

function policy(name: string, spec: string): string {
  return `apiVersion: meshaccel.io/v1alpha1\nkind: L7Policy\nmetadata: {name: ${name}, namespace: shop}\nspec:\n  endpointSelector: {matchLabels: {app: srv}}\n${spec}`;
}

/** Written whole and renamed into place, as README says policy files should be changed. */
function put(dir: string, file: string, text: string): void {
  fs.writeFileSync(path.join(dir, `.${file}.tmp`), text);
  fs.renameSync(path.join(dir, `.${file}.tmp`), path.join(dir, file));
}

function meshaccel(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'meshaccel'), ...args], { encoding: 'utf8', cwd: ROOT });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Every CIDR in the RBAC filters `NODE` is served now. */
function servedRanges(server: RunningControlServer): string[] {
  const text = servedRbac(server);
  return [...text.matchAll(/"address_prefix":"([^"]+)","prefix_len":\{"value":(\d+)\}/g)].map((m) => `${m[1]}/${m[2]}`);
}

/** The RBAC filters of the one Listener `NODE` is served now, as JSON. */
function servedRbac(server: RunningControlServer): string {
  const listeners = [...(server.snapshots.getSnapshot(NODE)?.resources(TypeUrl.Listener).values() ?? [])];
  assert.equal(listeners.length, 1, 'one Listener served');
  const l = decodeAny(TypeUrl.Listener, listeners[0].value) as {
    default_filter_chain: { filters: { typed_config: { type_url: string; value: Uint8Array } }[] };
  };
  const hcmAny = l.default_filter_chain.filters[0].typed_config;
  const hcm = decodeAny(hcmAny.type_url, hcmAny.value) as { http_filters: { typed_config: { type_url: string; value: Uint8Array } }[] };
  return hcm.http_filters.map((f) => JSON.stringify(decodeAny(f.typed_config.type_url, f.typed_config.value))).join('\n');
}

function cannotRun(): string | undefined {
  const lo = spawnSync('ip', ['-6', 'addr', 'show', 'lo'], { encoding: 'utf8' });
  return /inet6 ::1\//.test(lo.stdout ?? '') ? undefined : 'needs ::1 on lo (IPv6 loopback) for the IPv6 client';
}

describe('address families at a real grpc-js XdsServer (grpc mode, served from policy files)', function () {
  this.timeout(120000);
  let port: number;
  const dirs: string[] = [];
  const servers: ServerProcess[] = [];
  const controls: RunningControlServer[] = [];
  const clients: grpc.Client[] = [];
  let v4: grpc.Client;
  let v6: grpc.Client;

  before(async function () {
    const reason = cannotRun();
    if (reason) {
      this.test?.parent?.tests.forEach((t) => (t.title += ` (skipped: ${reason})`));
      this.skip();
    }
    port = await freePort('::');
  });

  const newClients = (): void => {
    v4 = new grpc.Client(`127.0.0.1:${port}`, grpc.credentials.createInsecure());
    v6 = new grpc.Client(`[::1]:${port}`, grpc.credentials.createInsecure());
    clients.push(v4, v6);
  };

  after(async () => {
    for (const c of clients) c.close();
    for (const s of servers) await s.stop();
    for (const c of controls) await c.close();
    for (const d of dirs) fs.rmSync(d, { recursive: true, force: true });
  });

  async function serve(
    files: Record<string, string>,
    implementation?: GrpcImplementation,
  ): Promise<{ dir: string; control: RunningControlServer; server: ServerProcess }> {
    // One server on the port at a time: the earlier ones go first.
    for (const c of clients.splice(0)) c.close();
    for (const s of servers.splice(0)) await s.stop();
    for (const c of controls.splice(0)) await c.close();
    const dir = tmpDir('grpc-family');
    dirs.push(dir);
    put(dir, 'workloads.yaml', workloads());
    for (const [f, t] of Object.entries(files)) put(dir, f, t);
    const control = await startControlServer({
      directories: [dir],
      mode: 'grpc',
      host: '127.0.0.1',
      port: 0,
      grpcServerHost: '::',
      servedPorts: [port],
      grpcServerImplementation: implementation,
      log: silentLogger,
    });
    controls.push(control);
    const server = await startServerProcess({ xdsPort: control.xds.port, nodeId: NODE, paths: [GET, DELETE], binds: [`[::]:${port}`] });
    servers.push(server);
    newClients();
    return { dir, control, server };
  }

  /** Applies a change to the files and waits until the store has taken it (or refused it) and every node was rebuilt. */
  async function change(control: RunningControlServer, dir: string, edit: () => void, refused = false): Promise<void> {
    const version = control.source.current().version;
    const errors = control.source.errors().length;
    edit();
    await eventually('the change was taken', async () => control.source.current().version > version || control.source.errors().length !== errors, 10000);
    await control.snapshots.settled();
    if (!refused) assert.deepEqual(control.source.errors(), []);
  }

  /** Trace's verdict (grpc mode, the XdsServer as `implementation` sees the client) over the same files. */
  function traced(dir: string, fromIp: string, implementation: GrpcImplementation = 'grpc-js', rpc = GET): { allowed: boolean; text: string } {
    const files = fs
      .readdirSync(dir)
      .filter((f) => f.endsWith('.yaml'))
      .map((f) => path.join(dir, f));
    const loaded = loadFiles(files, undefined, { mode: 'grpc' });
    assert.deepEqual(loaded.diagnostics, []);
    const engine = new PolicyEngine();
    engine.sync(loaded.resources);
    engine.commit();
    const r = traceConnection(engine, { from: { ip: fromIp }, to: { workload: 'Workload/shop/srv' }, port, http: { path: rpc } }, DEFAULT_REDIRECT_CONFIG, {
      mode: 'grpc',
      grpcServers: implementation,
    });
    return { allowed: r.allowed, text: formatTrace(r) };
  }

  describe('the peer as it is: what non-grpc-js servers are served, served to grpc-js', () => {
    it('a deny rule naming the IPv4 client does not apply to it (fail open); the same deny for ::1 does', async () => {
      const allowAll = '  ingress:\n    - fromEntities: [all]\n';
      const { dir, control, server } = await serve(
        { 'deny.yaml': policy('deny-v4', `${allowAll}  ingressDeny:\n    - fromCIDR: ["127.0.0.1/32"]\n`) },
        'other',
      );
      assert.equal(await call(v4, 'GetItem'), grpc.status.OK, 'the denied IPv4 client got through');
      assert.equal(traced(dir, '127.0.0.1', 'other').allowed, false, 'as written (and as grpc-go enforces it) it is denied');
      await change(control, dir, () => put(dir, 'deny.yaml', policy('deny-v4', `${allowAll}  ingressDeny:\n    - fromCIDR: ["::1/128"]\n`)));
      await eventually('the IPv6 deny applies', async () => (await call(v6, 'GetItem')) === grpc.status.PERMISSION_DENIED);
      assert.ok(server.alive());
    });

    it('an IPv6 range in its RBAC ends the server process on the first IPv4 call', async () => {
      const { server } = await serve({ 'allow.yaml': policy('allow-v6', '  ingress:\n    - fromCIDR: ["::1/128"]\n') }, 'other');
      assert.equal(await call(v6, 'GetItem'), grpc.status.OK, 'the IPv6 client is allowed by its range');
      const status = await call(v4, 'GetItem');
      const exit = await Promise.race([server.exited, new Promise<undefined>((r) => setTimeout(() => r(undefined), 10000))]);
      assert.ok(exit, `the server survived an IPv4 call against an IPv6 range (status ${status}): has grpc-js fixed parseIPv6?`);
      assert.notEqual(status, grpc.status.OK);
      assert.match(exit.stderr, /SyntaxError: Cannot convert 0x127\.0\.0\.1 to a BigInt/);
      assert.match(exit.stderr, /cidr\.js/);
    });
  });

  describe('what meshaccel serves a node whose user agent says grpc-js', () => {
    const allows =
      '  ingress:\n' +
      '    - fromEntities: [all]\n' +
      `      toPorts: [{ports: [{port: "PORT"}], rules: {http: [{path: "${GET.replace(/\./g, '\\\\.')}"}]}}]\n` +
      '    - fromEndpoints: [{matchLabels: {app: client4}}, {matchLabels: {app: client6}}]\n' +
      '      fromCIDR: ["127.0.0.0/8"]\n' +
      '      fromEntities: [world]\n' +
      '      toPorts: [{ports: [{port: "PORT"}], rules: {http: [{path: "/meshaccel\\\\.test\\\\.Shop/Delete.*"}]}}]\n';
    let dir: string;
    let control: RunningControlServer;
    let server: ServerProcess;
    const text = (t: string): string => t.replace(/PORT/g, String(port));

    before(async function () {
      if (!port) this.skip();
      ({ dir, control, server } = await serve({ 'allow.yaml': policy('allow', text(allows)) }));
    });

    it('serves it no IPv6 range (world keeps 0.0.0.0/0, the workloads their IPv4 addresses and principals)', () => {
      const ranges = servedRanges(control);
      assert.ok(ranges.includes('0.0.0.0/0') && ranges.includes('127.0.0.0/8') && ranges.includes('127.0.0.1/32'), ranges.join(' '));
      assert.deepEqual(
        ranges.filter((r) => r.includes(':')),
        [],
      );
    });

    it('answers IPv4 and IPv6 clients and survives: allowed by a rule for any peer, denied (not allowed more) by address rules', async () => {
      await eventually('GetItem from IPv4', async () => (await call(v4, 'GetItem')) === grpc.status.OK);
      assert.equal(await call(v6, 'GetItem'), grpc.status.OK);
      // The clients' own workloads are allowed DeleteItem by address (or by principal, over mTLS): not on grpc-js.
      assert.equal(await call(v4, 'DeleteItem'), grpc.status.PERMISSION_DENIED, servedRbac(control));
      assert.equal(await call(v6, 'DeleteItem'), grpc.status.PERMISSION_DENIED, servedRbac(control));
      assert.ok(server.alive());
      for (const [ip, rpc, real] of [
        ['127.0.0.1', GET, true],
        ['::1', GET, true],
        ['127.0.0.1', DELETE, false],
        ['::1', DELETE, false],
      ] as const) {
        assert.equal(traced(dir, ip, 'grpc-js', rpc).allowed, real, `trace of ${rpc} from ${ip} at grpc-js`);
        // As written (what grpc-go enforces) it is allowed: grpc-js denies more, never less.
        assert.equal(traced(dir, ip, 'other', rpc).allowed, true, `trace of ${rpc} from ${ip} as written`);
      }
    });

    it("trace in grpc mode gives the server's verdicts and says how grpc-js sees the client", () => {
      const t4 = traced(dir, '127.0.0.1');
      assert.equal(t4.allowed, true, t4.text);
      assert.match(t4.text, /note: an XdsServer of @grpc\/grpc-js-xds sees this IPv4 client as ::ffff:127\.0\.0\.1, which no IPv4 range matches/);
      assert.match(traced(dir, '::1').text, /is served no IPv6 range/);
    });

    it('a deny rule for every peer is served and applies to both families', async () => {
      await change(control, dir, () => put(dir, 'deny.yaml', policy('deny-all', '  ingressDeny:\n    - fromEntities: [all]\n')));
      await eventually('IPv4 denied', async () => (await call(v4, 'GetItem')) === grpc.status.PERMISSION_DENIED);
      assert.equal(await call(v6, 'GetItem'), grpc.status.PERMISSION_DENIED);
      await change(control, dir, () => fs.rmSync(path.join(dir, 'deny.yaml')));
      await eventually('allowed again', async () => (await call(v4, 'GetItem')) === grpc.status.OK);
    });

    const refusedCases: { name: string; file: string; spec: string; field: string; message: RegExp }[] = [
      {
        name: 'a deny rule naming the IPv4 client',
        file: 'deny.yaml',
        spec: '  ingressDeny:\n    - fromCIDR: ["127.0.0.1/32"]\n',
        field: 'spec.ingressDeny[0].fromCIDR[0]',
        message:
          /127\.0\.0\.1\/32: an XdsServer of @grpc\/grpc-js-xds sees an IPv4 client as ::ffff:a\.b\.c\.d, which matches no IPv4 range: this deny would not apply/,
      },
      {
        name: 'a deny rule naming workloads',
        file: 'deny.yaml',
        spec: '  ingressDeny:\n    - fromEndpoints: [{matchLabels: {app: client4}}]\n',
        field: 'spec.ingressDeny[0].fromEndpoints[0]',
        message: /a plaintext client by its address alone/,
      },
      {
        name: 'an allow rule naming an IPv6 range',
        file: 'v6.yaml',
        spec: '  ingress:\n    - fromCIDR: ["::1/128"]\n',
        field: 'spec.ingress[0].fromCIDR[0]',
        message: /::1\/128: .*checking one against an IPv6 range throws and ends the server process/,
      },
    ];
    for (const c of refusedCases) {
      it(`refuses ${c.name} at ${c.field}: policy check --mode grpc, and serve for this node (the last good Listener keeps serving)`, async () => {
        const before = servedRanges(control);
        const acked = control.xds.controlPlane.status.get(NODE)?.types.find((t) => t.typeUrl === TypeUrl.Listener)?.ackedVersion;
        await change(control, dir, () => put(dir, c.file, policy(c.file.replace('.yaml', ''), c.spec)), true);
        const file = path.join(dir, c.file);
        const failure = control.snapshots.buildFailures().find((f) => f.nodeId === NODE);
        assert.ok(failure, 'the build for the grpc-js node was refused');
        assert.match(
          failure.message,
          new RegExp(`${file.replace(/[.]/g, '\\.')}:\\d+: shop/${c.file.replace('.yaml', '')} ${c.field.replace(/[.[\]]/g, '\\$&')}: `),
        );
        assert.match(failure.message, c.message);
        assert.deepEqual(servedRanges(control), before, 'the last good Listener is still the one served');
        assert.equal(control.xds.controlPlane.status.get(NODE)?.types.find((t) => t.typeUrl === TypeUrl.Listener)?.ackedVersion, acked);
        assert.equal(await call(v4, 'GetItem'), grpc.status.OK);
        assert.equal(await call(v6, 'GetItem'), grpc.status.OK);

        const check = meshaccel('policy', 'check', '--mode', 'grpc', dir);
        assert.equal(check.status, 1, check.stdout);
        const line = check.stderr.split('\n').find((l) => l.includes(c.field)) ?? '';
        assert.match(
          line,
          new RegExp(
            `^${file.replace(/[.]/g, '\\.')}:\\d+:\\d+: document 1 \\(L7Policy shop/${c.file.replace('.yaml', '')}\\): ${c.field.replace(/[.[\]]/g, '\\$&')}: `,
          ),
        );
        assert.match(line, c.message);
        const other = meshaccel('policy', 'check', '--mode', 'grpc', '--grpc-servers', 'other', dir);
        assert.equal(other.status, 0, other.stderr);

        await change(control, dir, () => fs.rmSync(file));
        await eventually('served again', async () => !control.snapshots.buildFailures().some((f) => f.nodeId === NODE));
        assert.ok(server.alive(), 'the XdsServer process is alive');
      });
    }
  });
});
