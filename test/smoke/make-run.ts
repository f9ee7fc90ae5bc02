/**
 * The README's first command as a new user runs it: `make run` must build, say where it
 * listens, serve a Listener over ADS to an xDS client that ACKs it, and stop cleanly on
 * Ctrl-C (SIGINT). Run by .ci/run after the test suite; exits non-zero naming the step that
 * did not happen.
 */
import { spawn } from 'child_process';
import * as path from 'path';
import { decodeAny } from '../helpers/envoy-resources';
import { freePort } from '../helpers/grpc-shop';
import { rawClient, sotwStream } from '../helpers/raw-xds-client';

const ROOT = path.join(__dirname, '../../..');
const NODE = 'sidecar~10.1.0.10~api-0.shop~shop.svc.cluster.local';
const LISTENER = 'type.googleapis.com/envoy.config.listener.v3.Listener';

function within<T>(ms: number, step: string, p: Promise<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`${step}: did not happen within ${ms / 1000} s`)), ms);
    p.then(
      (v) => (clearTimeout(t), resolve(v)),
      (e: unknown) => (clearTimeout(t), reject(e)),
    );
  });
}

async function main(): Promise<void> {
  const [xdsPort, adminPort] = [await freePort('127.0.0.1'), await freePort('127.0.0.1')];
  const started = Date.now();
  const child = spawn('make', ['--no-print-directory', 'run', `XDS_PORT=${xdsPort}`, `ADMIN_PORT=${adminPort}`], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  const listening = new Promise<string>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      output += d.toString();
      const m = output.match(/listening on (\S+)/);
      if (m) resolve(m[1]);
    };
    child.stdout.on('data', onData);
    child.stderr.on('data', onData);
    void exited.then((code) => reject(new Error(`make run exited (${code}) before listening:\n${output.slice(-2000)}`)));
  });
  try {
    const address = await within(180_000, 'make run says where it listens', listening);
    console.log(`smoke: make run listening on ${address} after ${((Date.now() - started) / 1000).toFixed(1)} s`);

    const client = rawClient(xdsPort);
    const lds = sotwStream(client);
    lds.send({ node: { id: NODE, locality: {} }, type_url: LISTENER });
    const response = await within(10_000, 'an ADS Listener response', lds.next(10_000));
    const names = response.resources.map((r) => String(decodeAny(r.type_url, r.value).name));
    if (!names.includes('meshaccel.inbound')) throw new Error(`LDS answered ${JSON.stringify(names)}, not the capture listeners`);
    lds.send({ node: { id: NODE, locality: {} }, type_url: LISTENER, version_info: response.version_info, response_nonce: response.nonce });
    console.log(`smoke: LDS version ${response.version_info} served ${names.join(', ')} and ACKed`);

    const status = await within(
      10_000,
      'the admin status endpoint',
      fetch(`http://127.0.0.1:${adminPort}/status`).then((r) => r.text()),
    );
    if (!status.includes(NODE)) throw new Error(`/status does not list ${NODE}:\n${status.slice(0, 1000)}`);
    lds.close();
    client.close();

    process.kill(-child.pid!, 'SIGINT');
    const code = await within(15_000, 'make run stops on SIGINT', exited);
    if (!/shutting down/.test(output)) throw new Error(`make run exited (${code}) without shutting down cleanly:\n${output.slice(-2000)}`);
    console.log('smoke: make run stopped cleanly on SIGINT');
  } finally {
    if (child.exitCode === null) {
      try {
        process.kill(-child.pid!, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(`smoke: FAILED: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
