/**
 * Load generator for bench-redirect, run inside the client namespace:
 *   loadgen conn HOST PORT SECONDS CONCURRENCY  -> connections/s (connect, 1-byte echo, reset)
 *   loadgen rr   HOST PORT SECONDS CONCURRENCY  -> requests/s (64-byte echo on kept connections)
 * Prints one JSON line {ops, seconds, rate, errors, cpuUs} (cpuUs: this process's user+system CPU).
 */
import * as net from 'net';

const [mode, host, portText, secondsText, concText] = process.argv.slice(2);
const port = Number(portText);
const seconds = Number(secondsText);
const concurrency = Number(concText);
const deadline = Date.now() + seconds * 1000;
let ops = 0;
let errors = 0;

function oneConnection(): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    s.setNoDelay(true);
    s.once('connect', () => s.write('x'));
    s.once('data', () => {
      ops++;
      // RST instead of FIN: no TIME_WAIT on the generator, so ephemeral ports last the run.
      s.resetAndDestroy();
      resolve();
    });
    s.once('error', () => {
      errors++;
      s.destroy();
      resolve();
    });
  });
}

async function connWorker(): Promise<void> {
  while (Date.now() < deadline) await oneConnection();
}

async function rrWorker(): Promise<void> {
  const s = net.connect({ host, port });
  s.setNoDelay(true);
  await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
  const payload = Buffer.alloc(64, 0x61);
  await new Promise<void>((resolve) => {
    let got = 0;
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got < payload.length) return;
      got -= payload.length;
      ops++;
      if (Date.now() >= deadline) {
        s.destroy();
        resolve();
        return;
      }
      s.write(payload);
    });
    s.on('error', () => {
      errors++;
      resolve();
    });
    s.write(payload);
  });
}

async function main(): Promise<void> {
  const start = Date.now();
  // Startup CPU is not part of the measurement.
  process.cpuUsage();
  const worker = mode === 'conn' ? connWorker : rrWorker;
  await Promise.all(Array.from({ length: concurrency }, () => worker().catch(() => void errors++)));
  const elapsed = (Date.now() - start) / 1000;
  const cpu = process.cpuUsage();
  process.stdout.write(JSON.stringify({ ops, seconds: elapsed, rate: ops / elapsed, errors, cpuUs: cpu.user + cpu.system }) + '\n');
}

main().catch((err: Error) => {
  process.stdout.write(JSON.stringify({ fatal: err.message }) + '\n');
  process.exit(1);
});
