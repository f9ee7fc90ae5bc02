import * as assert from 'assert';
import * as k from '../../src/kafka/wire';
import { anyPeer, PRODUCE_KEYS, run, vm } from './harness';

/**
 * The filter reads the host's buffer in 2 KiB windows and judges allowed frames where they lie
 * (judgeInPlace in wasm/kafka-filter/assembly/index.ts, the windowed reader in reader.ts):
 * frames and fields straddling a window's end, frames larger than a window, topic lists longer
 * than one, and a denial after many allowed frames in one read are judged as frame by frame.
 */

const LONG = 'o'.repeat(200);
const rules = [
  anyPeer([
    { apiKeys: PRODUCE_KEYS, topic: 'orders' },
    { apiKeys: PRODUCE_KEYS, topic: LONG },
  ]),
];

function produce(version: number, corr: number, topic: string, recordBytes: number, clientId: string): Buffer {
  return k.request(0, version, corr, clientId, (w) => {
    if (version >= 3) w.str(null);
    w.i16(-1).i32(30000);
    w.array([[topic, [0, 1]]] as const, (w, [name, parts]) => {
      w.str(name);
      w.array(parts, (w, p) => w.i32(p).bytes(Buffer.alloc(recordBytes, 7)).tags());
      w.tags();
    });
    w.tags();
  });
}

/** Allowed frames of every shape the windows must handle, about 100 KiB in all. */
function allowedFrames(): Buffer[] {
  const frames: Buffer[] = [];
  for (let i = 0; i < 90; i++) {
    const client = 'c'.repeat((i * 37) % 600);
    const topic = i % 2 ? LONG : 'orders';
    if (i % 3 === 0) frames.push(produce(7, i, topic, (i * 97) % 3000, client));
    else if (i % 3 === 1) frames.push(produce(9, i, topic, (i * 131) % 2500, client));
    else
      frames.push(
        k.metadata(
          4,
          i,
          Array.from({ length: (i * 7) % 40 }, (_, t) => (t % 2 ? LONG : 'orders')),
          client,
        ),
      );
  }
  return frames;
}

const allowed = (): number => vm().counter('meshaccel_kafka.requests_allowed');
const read = (): number => vm().streamBytesRead;

describe('Kafka filter: frames judged in place, across the windows it reads', () => {
  it('many allowed frames in one read pass unchanged, each counted once', () => {
    const frames = allowedFrames();
    const before = { allowed: allowed(), read: read() };
    const all = Buffer.concat(frames);
    const o = run(rules, [all]);
    assert.strictEqual(o.closed, false);
    assert.ok(o.forwarded.equals(all), 'the forwarded bytes differ from the requests');
    assert.strictEqual(allowed() - before.allowed, frames.length);
    // Judged in place: a window per frame at most, never the whole read (the copying path's way).
    assert.ok(read() - before.read < all.length, `the filter copied ${read() - before.read} bytes of a ${all.length}-byte read in`);
  });

  it('a denial after them in the same read: the allowed frames pass, the denied one is replaced by its carrier', () => {
    const frames = allowedFrames();
    const after = produce(7, 1001, 'orders', 100, 'cli');
    const o = run(rules, [Buffer.concat([...frames, produce(7, 1000, 'other', 3000, 'cli'), after])]);
    assert.strictEqual(o.closed, false);
    assert.ok(
      o.forwarded.equals(Buffer.concat([...frames, k.carrierApiVersions(1000), after])),
      'the forwarded bytes are not the allowed frames and the carrier',
    );
  });

  it('the same bytes in reads of 1000 bytes (frames split across reads) pass unchanged', () => {
    const all = Buffer.concat(allowedFrames());
    const chunks: Buffer[] = [];
    for (let at = 0; at < all.length; at += 1000) chunks.push(all.subarray(at, at + 1000));
    const o = run(rules, chunks);
    assert.strictEqual(o.closed, false);
    assert.ok(o.forwarded.equals(all));
  });

  it('a malformed frame after allowed ones closes the connection', () => {
    const bad = produce(7, 2000, 'orders', 10, 'cli');
    bad.writeInt32BE(0x7fffffff, bad.length - 10 - 4); // the last partition's records length
    const o = run(rules, [Buffer.concat([...allowedFrames(), bad])]);
    assert.strictEqual(o.closed, true);
  });
});
