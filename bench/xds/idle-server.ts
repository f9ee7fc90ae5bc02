import * as path from 'path';

/**
 * One measurement of bench-xds's memory per idle stream, in a fresh process: an xDS server of
 * the build under `root` (this tree's dist, or another build's for a side-by-side run) serving
 * bench-xds's snapshot. It reports its memory before any stream, waits until the parent's
 * clients have ACKed every type on every stream, settles (two forced GCs), and reports again.
 * Usage (forked, with --expose-gc): idle-server DIST_ROOT STREAMS TYPES
 */
interface Memory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
}

function settled(): Memory {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return { rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal };
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function main(): Promise<void> {
  const [root, streams, types] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
  const { SnapshotCache } = require(path.join(root, 'src/xds/cache')) as typeof import('../../src/xds/cache');
  const { startXdsServer } = require(path.join(root, 'src/xds/server')) as typeof import('../../src/xds/server');
  const { benchSnapshot } = require(path.join(root, 'bench/xds/resources')) as typeof import('./resources');
  const cache = new SnapshotCache({ nodeHash: () => 'sidecars' });
  cache.setSnapshot('sidecars', benchSnapshot(0));
  const xds = await startXdsServer({ source: cache, port: 0, host: '127.0.0.1' });
  let acks = 0;
  xds.controlPlane.status.on('ack', () => acks++);
  benchSnapshot(1);
  await sleep(300);
  const before = settled();
  process.send?.({ port: xds.port });
  while (acks < streams * types) await sleep(50);
  await sleep(1000);
  const idle = settled();
  process.send?.({ before, idle });
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
