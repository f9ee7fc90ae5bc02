import * as assert from 'assert';
import { execFile, spawn, type ChildProcess } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { packageRoot } from '../../src/paths';
import { startMockCluster, type MockCluster } from './mock-cluster';

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as net.AddressInfo).port;
      s.close(() => resolve(port));
    });
  });
}

function kcat(args: string[]): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile('kcat', args, { timeout: 20000 }, (err, stdout, stderr) =>
      err ? reject(new Error(`kcat ${args.join(' ')}: ${err.message} ${stderr}`)) : resolve(stdout),
    ),
  );
}

describe('meshaccel kafka proxy (CLI) with kcat', function () {
  this.timeout(60000);
  let mock: MockCluster;
  let child: ChildProcess;
  let port: number;
  let dir: string;

  before(async function () {
    if (!fs.existsSync('/usr/bin/kcat')) return this.skip();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshaccel-kafka-cli-'));
    fs.writeFileSync(
      path.join(dir, 'all.yaml'),
      `apiVersion: meshaccel.io/v1alpha1
kind: Workload
metadata: {name: kafka-0, labels: {app: kafka}}
spec: {addresses: [10.20.0.1], proxy: {nodeId: broker}}
---
apiVersion: meshaccel.io/v1alpha1
kind: L7Policy
metadata: {name: produce-orders}
spec:
  endpointSelector: {matchLabels: {app: kafka}}
  ingress:
    - toPorts:
        - ports: [{port: 9092}]
          rules:
            kafka:
              - {role: produce, topic: orders}
`,
    );
    mock = await startMockCluster(['orders:1', 'secret:1']);
    port = await freePort();
    child = spawn(
      process.execPath,
      [
        path.join(packageRoot(), 'bin', 'meshaccel'),
        'kafka',
        'proxy',
        '--policy',
        dir,
        '--node',
        'broker',
        '--listen',
        `127.0.0.1:${port}`,
        '--upstream',
        `${mock.host}:${mock.port}`,
        '--port',
        '9092',
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    await new Promise<void>((resolve, reject) => {
      child.stdout!.on('data', (d: Buffer) => {
        if (d.toString().includes('kafka proxy (test host, not a data plane)')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`kafka proxy exited with ${code}`)));
    });
  });

  after(async () => {
    child?.kill('SIGTERM');
    await mock?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('metadata for an allowed topic comes from the broker through the filter', async () => {
    const out = JSON.parse(await kcat(['-b', `127.0.0.1:${port}`, '-L', '-t', 'orders', '-J'])) as {
      topics: Array<{ topic: string; partitions: unknown[]; error?: string }>;
    };
    assert.strictEqual(out.topics[0].topic, 'orders');
    assert.strictEqual(out.topics[0].error, undefined);
    assert.strictEqual(out.topics[0].partitions.length, 1);
  });

  it("metadata for a denied topic: the broker's answer with that topic authorization-failed", async () => {
    const out = JSON.parse(await kcat(['-b', `127.0.0.1:${port}`, '-L', '-t', 'secret', '-J'])) as {
      brokers: unknown[];
      topics: Array<{ topic: string; error?: string }>;
    };
    assert.ok(out.brokers.length >= 1, 'the broker list of the real answer is kept');
    assert.strictEqual(out.topics[0].topic, 'secret');
    assert.match(out.topics[0].error ?? '', /authoriz/i);
  });
});
