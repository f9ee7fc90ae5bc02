import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as http from 'http';
import * as path from 'path';
import { monitorEventLoopDelay } from 'perf_hooks';
import type * as grpc from '@grpc/grpc-js';
import { TypeUrl } from '../../src/resource/type-urls';
import { startControlServer, type RunningControlServer } from '../../src/server/control-server';
import { rawClient, sotwStream, testNode } from '../helpers/raw-xds-client';
import { tmpDir } from '../policy/helpers';
import { note } from './harness';

/**
 * Issue #12 item 9: a 10,000-document file held the event loop for 8.8 s, so no xDS stream and
 * no `/status` was answered while it loaded. Here ten files of 1,000 documents each (the per-file
 * cap) appear in a directory `serve` watches, and are then rewritten, while a healthy proxy keeps
 * opening ADS streams and an operator keeps reading `/status`: both must be answered throughout,
 * and the server's event loop must never stall for long. Parsing and validating on the event
 * loop (as before) stalls it for seconds per reload.
 */

const FILES = 10;
const DOCUMENTS = 1000;
/** Documents per file that are policies (the rest are workloads). */
const POLICIES = 50;
/**
 * The longest the event loop may stall: generous for a machine loaded several times over (about
 * 500 ms measured at a load of 15 on 2 cores; 30 s when parsing ran on the event loop).
 */
const MAX_STALL_MS = 1000;
/** The longest a probe (an ADS response, a `/status` answer) may take. */
const MAX_PROBE_MS = 2000;
const HEALTHY = 'healthy-proxy';

/** File `f`'s 1,000 documents; `variant` changes the text of every one and the labels of file 0's workloads. */
function fileText(f: number, variant: number): string {
  const docs: string[] = [`# generation ${variant}\n`];
  for (let i = 0; i < DOCUMENTS; i++) {
    const n = f * DOCUMENTS + i;
    // Workloads come in groups of ten sharing an app label; policy i selects the i-th group of its file.
    const group = Math.floor(n / 10);
    const groupOf = (k: number): number => f * 100 + POLICIES / 10 + (k % (100 - POLICIES / 10));
    if (i < POLICIES) {
      docs.push(
        `apiVersion: meshaccel.io/v1alpha1\nkind: L7Policy\nmetadata:\n  name: p-${n}\nspec:\n  endpointSelector: {matchLabels: {app: a${groupOf(i)}}}\n` +
          `  ingress:\n    - fromEndpoints: [{matchLabels: {app: a${groupOf(i + 50)}}}]\n      toPorts:\n        - ports: [{port: 8080, protocol: TCP}]\n` +
          `          rules:\n            http:\n              - method: GET\n                path: "/f${f}/p${i}/v${variant}(/[0-9]+)?"\n`,
      );
    } else {
      const app = f === 0 && variant % 2 === 1 ? `b${group}` : `a${group}`;
      docs.push(
        `apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata:\n  name: w-${n}\n  labels: {app: ${app}}\n` +
          `spec:\n  addresses: ["10.${(n >> 16) & 255}.${(n >> 8) & 255}.${n & 255}"]\n  proxy: {nodeId: node-${n}}\n`,
      );
    }
  }
  return docs.join('---\n');
}

function writeSet(dir: string, variant: number): void {
  for (let f = 0; f < FILES; f++) {
    // Written whole and renamed into place, as the README says files should be changed.
    const file = path.join(dir, `set-${f}.yaml`);
    fs.writeFileSync(`${file}.tmp`, fileText(f, variant));
    fs.renameSync(`${file}.tmp`, file);
  }
}

function getStatus(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = http.get({ host: '127.0.0.1', port, path: '/status', timeout: 60_000 }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('timeout', () => req.destroy(new Error('/status timed out')));
    req.on('error', reject);
  });
}

interface Probes {
  xds: number[];
  status: number[];
  /** When each round of probes was answered: a stalled server shows as a long gap, even between probes. */
  answeredAt: number[];
  problems: string[];
}

/** A proxy that opens a fresh ADS stream and an operator that reads /status, over and over, timing each answer. */
async function probe(client: grpc.Client, adminPort: number, listeners: number, running: () => boolean, out: Probes): Promise<void> {
  while (running()) {
    let t = performance.now();
    const stream = sotwStream(client);
    try {
      stream.send({ node: testNode(HEALTHY), type_url: TypeUrl.Listener });
      const r = await stream.next(60_000);
      out.xds.push(performance.now() - t);
      if (r.resources.length !== listeners) out.problems.push(`a response with ${r.resources.length} of ${listeners} Listeners`);
    } catch (err) {
      out.problems.push(`ADS: ${(err as Error).message}`);
    } finally {
      stream.close();
    }
    t = performance.now();
    try {
      const code = await getStatus(adminPort);
      out.status.push(performance.now() - t);
      if (code !== 200) out.problems.push(`/status answered ${code}`);
    } catch (err) {
      out.problems.push(`/status: ${(err as Error).message}`);
    }
    out.answeredAt.push(performance.now());
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function waitForVersion(server: RunningControlServer, version: number, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (server.source.current().version < version) {
    if (Date.now() > deadline)
      throw new Error(`policy version ${version} not reached within ${timeoutMs} ms: ${server.source.errors().slice(0, 3).join('; ')}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('robust: large file sets load without stalling xDS or /status (#12 item 9)', function () {
  this.timeout(600_000);
  let dir: string;
  let server: RunningControlServer | undefined;
  let client: grpc.Client | undefined;

  before(() => {
    dir = tmpDir('off-loop');
    fs.writeFileSync(
      path.join(dir, 'healthy.yaml'),
      `apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata:\n  name: healthy\n  labels: {app: healthy}\nspec:\n  addresses: [10.250.0.1]\n  proxy: {nodeId: ${HEALTHY}}\n`,
    );
  });

  after(async () => {
    client?.close();
    await server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it(`while ${FILES} files of ${DOCUMENTS} documents load and reload, ADS streams and /status are answered throughout and the loop never stalls ${MAX_STALL_MS} ms`, async () => {
    const log = { info: () => undefined, warn: (m: string) => note(m), error: (m: string) => note(m), debug: () => undefined };
    let t = performance.now();
    server = await startControlServer({ directories: [dir], mode: 'standalone', host: '127.0.0.1', port: 0, adminPort: 0, log });
    note(`initial load: ${Math.round(performance.now() - t)} ms`);
    assert.equal(server.source.current().version, 1, server.source.errors().slice(0, 3).join('; '));
    const adminPort = server.admin?.port as number;
    client = rawClient(server.xds.port);

    const first = sotwStream(client);
    first.send({ node: testNode(HEALTHY), type_url: TypeUrl.Listener });
    const listeners = (await first.next(60_000)).resources.length;
    first.close();
    assert.ok(listeners > 0, 'the healthy proxy is served Listeners');

    const loop = monitorEventLoopDelay({ resolution: 10 });
    const probes: Probes = { xds: [], status: [], answeredAt: [], problems: [] };
    let running = true;
    loop.enable();
    const probing = probe(client, adminPort, listeners, () => running, probes);
    t = performance.now();
    try {
      // Loaded (the files appear), then reloaded (every file rewritten).
      for (const [variant, version] of [
        [0, 2],
        [1, 3],
      ]) {
        writeSet(dir, variant);
        await waitForVersion(server, version, 300_000);
      }
    } finally {
      running = false;
      await probing;
      loop.disable();
    }
    const stallMs = loop.max / 1e6;
    const worst = (xs: number[]): number => Math.round(Math.max(0, ...xs));
    const gaps = probes.answeredAt.slice(1).map((at, i) => at - probes.answeredAt[i]);
    note(
      `load and reload: ${Math.round(performance.now() - t)} ms; longest event-loop stall ${Math.round(stallMs)} ms; ` +
        `${probes.xds.length} ADS probes (worst ${worst(probes.xds)} ms), ${probes.status.length} /status (worst ${worst(probes.status)} ms), longest wait between answers ${worst(gaps)} ms`,
    );
    assert.deepEqual(probes.problems, [], 'every probe was answered, with the complete configuration');
    assert.ok(
      probes.xds.length >= 5 && probes.status.length >= 5,
      `probes answered during the reloads: ${probes.xds.length} ADS, ${probes.status.length} /status`,
    );
    assert.ok(stallMs < MAX_STALL_MS, `the event loop stalled for ${Math.round(stallMs)} ms`);
    assert.ok(worst(probes.xds) < MAX_PROBE_MS, `an ADS response took ${worst(probes.xds)} ms`);
    assert.ok(worst(probes.status) < MAX_PROBE_MS, `/status took ${worst(probes.status)} ms`);
    assert.ok(worst(gaps) < MAX_PROBE_MS * 2, `${worst(gaps)} ms passed between two answers`);

    // The reload was applied: file 0's workloads have their second labels, so policy p-1 selects
    // none of them any more, and the other files' policies have their v1 paths.
    assert.doesNotMatch(JSON.stringify(server.store.policyForNode('node-60')?.ingress ?? []), /\/f0\/p1\//);
    assert.match(JSON.stringify(server.store.policyForNode('node-1060')?.ingress ?? []), /\/f1\/p1\/v1/);
  });
});
