/**
 * make bench-kafka: Kafka through the test relay with the Kafka filter against the same relay
 * without it, side by side in one run (rounds alternate), to librdkafka's mock cluster:
 *
 *  - produce: kafkajs, acks=1, 1 KiB records, 16 per send, 4 sends in flight; records/s and
 *    the p99 of a send's latency;
 *  - fetch: a kafkajs consumer group reading those records from the beginning; records/s and
 *    the p99 of a fetch's duration (kafkajs's FETCH instrumentation);
 *  - the filter alone: ns per request for the filter's downstream callback on the host (V8,
 *    the engine Envoy uses by default), for a 16-record Produce of 1 KiB records, a Fetch and a
 *    Heartbeat, plus the upstream callback for a response.
 *
 * Targets: filter/plain throughput >= 0.9 for 1 KiB records; < 2 µs per request in the filter.
 * The mock cluster and kafkajs share the 2 CPUs with the relay, so compare the ratios.
 */
import * as net from 'net';
import { Kafka, logLevel, type Producer } from 'kafkajs';
import { encodeKafkaFilterConfig, type KafkaFilterConfig } from '../../src/kafka/filter-config';
import { KafkaProxy, loadKafkaFilter } from '../../src/kafka/proxy';
import { startMockCluster } from '../../test/kafka/mock-cluster';
import * as k from '../../src/kafka/wire';

const RECORD = Buffer.alloc(1024, 'x');
const PER_SEND = 16;
const IN_FLIGHT = 4;
const SENDS_PER_ROUND = Number(process.env.SENDS ?? 100);
const ROUNDS = 3;

const CONFIG: KafkaFilterConfig = {
  name: 'ingress:9092',
  direction: 'ingress',
  port: 9092,
  maxFrameBytes: 100 * 1024 * 1024,
  rules: [
    {
      origin: 'bench',
      anyPeer: false,
      peers: ['127.0.0.0/8'],
      principals: [],
      kafka: [
        { apiKeys: [0, 3, 18], topic: 'bench' },
        { apiKeys: [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18], topic: 'bench' },
      ],
    },
  ],
};

function p99(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(s.length * 0.99))];
}

function kafkaVia(port: number, clientId: string): Kafka {
  return new Kafka({
    clientId,
    brokers: [`127.0.0.1:${port}`],
    logLevel: logLevel.NOTHING,
    socketFactory: ({ onConnect }) => net.connect({ host: '127.0.0.1', port }, onConnect),
  });
}

async function produceRound(producer: Producer): Promise<{ rate: number; p99: number }> {
  const lat: number[] = [];
  const start = process.hrtime.bigint();
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < SENDS_PER_ROUND) {
      next++;
      const t = process.hrtime.bigint();
      await producer.send({ topic: 'bench', acks: 1, messages: Array.from({ length: PER_SEND }, () => ({ value: RECORD })) });
      lat.push(Number(process.hrtime.bigint() - t) / 1e6);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  return { rate: (SENDS_PER_ROUND * PER_SEND) / secs, p99: p99(lat) };
}

/**
 * What the topic holds now: librdkafka's mock keeps a bounded log per partition and drops the
 * oldest records beyond it, so a consumer from the beginning sees fewer than were produced.
 */
async function recordsHeld(kafka: Kafka): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const offsets = await admin.fetchTopicOffsets('bench');
    return offsets.reduce((sum, o) => sum + Number(o.high) - Number(o.low), 0);
  } finally {
    await admin.disconnect();
  }
}

async function fetchAll(port: number, group: string): Promise<{ rate: number; p99: number; records: number }> {
  const kafka = kafkaVia(port, `bench-consumer-${group}`);
  const total = await recordsHeld(kafka);
  const consumer = kafka.consumer({ groupId: group, maxBytes: 4 << 20, maxWaitTimeInMs: 100 });
  const durations: number[] = [];
  consumer.on(consumer.events.FETCH, (e) => durations.push(e.payload.duration));
  await consumer.connect();
  await consumer.subscribe({ topic: 'bench', fromBeginning: true });
  let got = 0;
  let start = 0n;
  await new Promise<void>((resolve) => {
    void consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (start === 0n) start = process.hrtime.bigint();
        got += batch.messages.length;
        if (got >= total) resolve();
      },
    });
  });
  const secs = Number(process.hrtime.bigint() - start) / 1e9;
  await consumer.disconnect();
  return { rate: got / secs, p99: p99(durations), records: got };
}

function filterNanos(): Record<string, number> {
  const vm = loadKafkaFilter(() => {});
  const root = vm.configure(encodeKafkaFilterConfig(CONFIG)) as number;
  const stream = vm.newConnection(root, { 'source.address': '127.0.0.1:5000', 'destination.address': '127.0.0.1:9092' }, () => {});
  const produce = k.request(0, 7, 1, 'bench', (w) => {
    w.str(null).i16(1).i32(30000);
    w.array([['bench', [0]]] as const, (w, [name, parts]) => {
      w.str(name);
      w.array(parts, (w, p) => w.i32(p).bytes(Buffer.alloc(PER_SEND * (RECORD.length + 20))));
    });
  });
  const fetchReq = k.fetch(11, 1, [['bench', [0, 1]]]);
  const heartbeat = k.heartbeat(3, 1);
  const resp = k.produceResponse(7, 1, [['bench', [0]]], 0);
  const out: Record<string, number> = {};
  // Batches below the filter's in-flight limit: requests, then their responses.
  const BATCH = 1000;
  const BATCHES = 100;
  for (const [name, frame] of [
    ['produce (16 x 1 KiB)', produce],
    ['fetch', fetchReq],
    ['heartbeat', heartbeat],
  ] as const) {
    let down = 0n;
    let up = 0n;
    for (let b = 0; b < BATCHES + 10; b++) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < BATCH; i++) if (stream.downstream(frame).length !== frame.length) throw new Error('the filter did not forward a benchmark request');
      const t1 = process.hrtime.bigint();
      for (let i = 0; i < BATCH; i++) if (stream.upstream(resp).length !== resp.length) throw new Error('the filter did not pass a benchmark response');
      const t2 = process.hrtime.bigint();
      if (b >= 10) {
        down += t1 - t0;
        up += t2 - t1;
      }
    }
    out[`${name}: request`] = Number(down) / (BATCH * BATCHES);
    out[`${name}: its response`] = Number(up) / (BATCH * BATCHES);
  }
  if (vm.failure || stream.closed) throw new Error(`the benchmark connection failed: ${vm.failure?.message ?? 'closed'}`);
  stream.finish();
  return out;
}

async function main(): Promise<void> {
  if (process.env.FILTER_ONLY) {
    for (const [name, ns] of Object.entries(filterNanos())) console.log(`  ${name.padEnd(36)} ${ns.toFixed(0).padStart(6)} ns`);
    return;
  }
  const mock = await startMockCluster(['bench:2']);
  const filtered = await KafkaProxy.start({
    listenHost: '127.0.0.1',
    listenPort: 0,
    upstreamHost: mock.host,
    upstreamPort: mock.port,
    config: CONFIG,
    log: () => {},
  });
  const plain = await KafkaProxy.start({ listenHost: '127.0.0.1', listenPort: 0, upstreamHost: mock.host, upstreamPort: mock.port, noFilter: true });
  const producers = {
    filter: kafkaVia(filtered.relay.address.port, 'bench-producer').producer(),
    plain: kafkaVia(plain.relay.address.port, 'bench-producer').producer(),
  };
  await producers.filter.connect();
  await producers.plain.connect();
  const results: Record<'filter' | 'plain', { produce: Array<{ rate: number; p99: number }>; fetch: Array<{ rate: number; p99: number; records: number }> }> = {
    filter: { produce: [], fetch: [] },
    plain: { produce: [], fetch: [] },
  };
  // Warm-up both paths, then alternate rounds so drift hits both alike.
  process.stderr.write('warm-up\n');
  await produceRound(producers.plain);
  await produceRound(producers.filter);
  let produced = 2 * SENDS_PER_ROUND * PER_SEND;
  for (let r = 0; r < ROUNDS; r++) {
    for (const which of r % 2 ? (['plain', 'filter'] as const) : (['filter', 'plain'] as const)) {
      results[which].produce.push(await produceRound(producers[which]));
      process.stderr.write(`produce ${which} round ${r}: ${JSON.stringify(results[which].produce.at(-1))}\n`);
      produced += SENDS_PER_ROUND * PER_SEND;
    }
  }
  for (let r = 0; r < ROUNDS; r++) {
    for (const which of r % 2 ? (['plain', 'filter'] as const) : (['filter', 'plain'] as const)) {
      const port = (which === 'filter' ? filtered : plain).relay.address.port;
      results[which].fetch.push(await fetchAll(port, `g-${which}-${r}`));
      process.stderr.write(`fetch ${which} round ${r}: ${JSON.stringify(results[which].fetch.at(-1))}\n`);
    }
  }
  await producers.filter.disconnect();
  await producers.plain.disconnect();
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
  const line = (what: 'produce' | 'fetch'): void => {
    const f = results.filter[what];
    const p = results.plain[what];
    const fr = median(f.map((x) => x.rate));
    const pr = median(p.map((x) => x.rate));
    console.log(
      `${what.padEnd(8)} plain ${pr.toFixed(0).padStart(7)} rec/s p99 ${median(p.map((x) => x.p99)).toFixed(2)} ms | filter ${fr.toFixed(0).padStart(7)} rec/s p99 ${median(f.map((x) => x.p99)).toFixed(2)} ms | filter/plain ${(fr / pr).toFixed(3)} (target >= 0.9)`,
    );
  };
  const fetched = results.filter.fetch.map((f) => f.records).join('/');
  console.log(
    `Kafka through the relay, 1 KiB records, ${ROUNDS} alternating rounds each (medians); ${produced} records produced, ${fetched} read per fetch round (what the mock's bounded log still held)`,
  );
  line('produce');
  line('fetch');
  const counters = [...filtered.vm.counters].map(([name, v]) => `${name}=${v}`).join(' ');
  console.log(`filter counters: ${counters}`);
  await filtered.close();
  await plain.close();
  await mock.stop();
  console.log("filter alone on the host (V8), ns per callback, including the host's ABI calls (target < 2000 ns per request):");
  for (const [name, ns] of Object.entries(filterNanos())) console.log(`  ${name.padEnd(36)} ${ns.toFixed(0).padStart(6)} ns`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
