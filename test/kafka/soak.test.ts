import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as net from 'node:net';
import * as os from 'node:os';
import * as path from 'node:path';
import { Kafka, logLevel, type Consumer } from 'kafkajs';
import { compileKafkaPort, type KafkaProxy } from '../../src/kafka/proxy';
import { startFilteredRelay, writeKafkaAcl } from './acl-files';
import { startMockCluster, type MockCluster } from './mock-cluster';
import { RD_DENIED_TOPIC, runRdkafkaSoak, type RdkafkaSoakRun } from './rdkafka-soak';

/**
 * Soak: a kafkajs producer and a consumer group through the relay with the Kafka filter to
 * librdkafka's mock cluster, for SOAK_SECONDS (150 in `make test`; `make soak-kafka MINUTES=N`
 * for longer). Mid-run a second consumer joins the group and later leaves it: two rebalances.
 * Asserted: the long-lived clients (producer, first consumer) never open a second connection
 * and none of their connections closes (counted at their socket factories and at the relay,
 * whose accepted connections grow only by the second consumer's), heartbeats and offset commits
 * flow throughout, every produced message is consumed, and the filter denies and closes nothing.
 * In the same seconds, on a relay and mock cluster of its own, the librdkafka soak
 * (rdkafka-soak.ts) runs a long-lived librdkafka producer and consumer group, with a denied
 * topic and a policy change on the way.
 */

const NODE = 'kafka-soak';
const SECONDS = Number(process.env.SOAK_SECONDS ?? 150);

interface Client {
  kafka: Kafka;
  connects: number;
  closes: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

describe(`Kafka soak: kafkajs and librdkafka producers and consumer groups through the filter for ${SECONDS} s`, function () {
  this.timeout((SECONDS + 120) * 1000);
  let rdSoak: Promise<RdkafkaSoakRun | Error>;
  let mock: MockCluster;
  let proxy: KafkaProxy;
  let dir: string;
  const sockets = new Set<net.Socket>();

  before(async () => {
    // Concurrently with the kafkajs soak: the two share nothing but the machine.
    rdSoak = runRdkafkaSoak(SECONDS).catch((err: unknown) => (err instanceof Error ? err : new Error(String(err))));
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshaccel-kafka-soak-'));
    writeKafkaAcl(dir, NODE, '              - {role: produce, topic: orders}\n              - {role: consume, topic: orders}');
    mock = await startMockCluster(['orders:4']);
    proxy = await startFilteredRelay(compileKafkaPort([dir], NODE, 9092, 'ingress'), mock);
  });

  after(async () => {
    await rdSoak;
    for (const s of sockets) s.destroy();
    await proxy?.close();
    await mock?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function client(clientId: string): Client {
    const port = proxy.relay.address.port;
    const c: Client = { connects: 0, closes: 0, kafka: undefined as unknown as Kafka };
    c.kafka = new Kafka({
      clientId,
      brokers: [`127.0.0.1:${port}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 5, initialRetryTime: 200 },
      socketFactory: ({ onConnect }) => {
        c.connects++;
        const s = net.connect({ host: '127.0.0.1', port }, onConnect);
        sockets.add(s);
        s.on('close', () => {
          c.closes++;
          sockets.delete(s);
        });
        return s;
      },
    });
    return c;
  }

  function track(consumer: Consumer): { heartbeats: number; commits: number; joins: number; crashes: unknown[] } {
    const t = { heartbeats: 0, commits: 0, joins: 0, crashes: [] as unknown[] };
    consumer.on(consumer.events.HEARTBEAT, () => t.heartbeats++);
    consumer.on(consumer.events.COMMIT_OFFSETS, () => t.commits++);
    consumer.on(consumer.events.GROUP_JOIN, () => t.joins++);
    consumer.on(consumer.events.CRASH, (e) => t.crashes.push(e.payload.error));
    return t;
  }

  it('stays connected through heartbeats, commits and two rebalances, and loses no message', async () => {
    const consumerOptions = { groupId: 'soak-group', heartbeatInterval: 1000, sessionTimeout: 10000, rebalanceTimeout: 20000, maxWaitTimeInMs: 250 };
    const got = new Set<string>();
    const eachMessage = async ({ message }: { message: { value: Buffer | null } }): Promise<void> => void got.add(String(message.value));

    const producerClient = client('soak-producer');
    const producer = producerClient.kafka.producer({ allowAutoTopicCreation: false });
    await producer.connect();
    const c1 = client('soak-consumer-1');
    const consumer1 = c1.kafka.consumer(consumerOptions);
    const t1 = track(consumer1);
    await consumer1.connect();
    await consumer1.subscribe({ topic: 'orders', fromBeginning: true });
    await consumer1.run({ autoCommitInterval: 1000, eachMessage });

    let sent = 0;
    const send = async (): Promise<void> => {
      await producer.send({ topic: 'orders', messages: [{ key: String(sent % 8), value: `m-${sent}` }] });
      sent++;
    };
    // Warm-up: the first consumer has joined and consumes; the connections it needs are open.
    const warmDeadline = Date.now() + 60000;
    while (got.size === 0 && Date.now() < warmDeadline) {
      await send();
      await sleep(200);
    }
    assert.ok(got.size > 0, 'nothing consumed during warm-up');
    await sleep(3000);
    const baseline = { producer: producerClient.connects, consumer1: c1.connects, accepted: proxy.relay.accepted(), joins: t1.joins };
    const mark = { heartbeats: t1.heartbeats, commits: t1.commits };
    const start = Date.now();
    const at = (share: number): number => start + SECONDS * 1000 * share;

    let c2: Client | undefined;
    let consumer2: Consumer | undefined;
    let t2: ReturnType<typeof track> | undefined;
    let left2 = 0;
    // A loaded machine can take longer than the plan to admit the second consumer: its leave
    // waits (up to a minute more) for its join, and the run for its leave.
    const joinGrace = 60000;
    while (Date.now() < at(1) || (consumer2 && !left2)) {
      await send();
      if (!c2 && Date.now() >= at(0.3)) {
        c2 = client('soak-consumer-2');
        consumer2 = c2.kafka.consumer(consumerOptions);
        t2 = track(consumer2);
        await consumer2.connect();
        await consumer2.subscribe({ topic: 'orders', fromBeginning: true });
        await consumer2.run({ autoCommitInterval: 1000, eachMessage });
      }
      if (consumer2 && !left2 && Date.now() >= at(0.65) && (t2!.joins >= 1 || Date.now() >= at(0.65) + joinGrace)) {
        assert.ok(t2!.joins >= 1, 'the second consumer never joined the group');
        await consumer2.disconnect();
        left2 = t1.joins;
      }
      await sleep(100);
    }
    // Drain: what was sent is consumed.
    const drainDeadline = Date.now() + 30000;
    while (got.size < sent && Date.now() < drainDeadline) await sleep(200);
    const heartbeats = t1.heartbeats - mark.heartbeats;
    const commits = t1.commits - mark.commits;
    const summary = `${SECONDS} s: sent ${sent}, consumed ${got.size}, heartbeats ${heartbeats}, commits ${commits}, first consumer's joins ${t1.joins - baseline.joins}, connections: producer ${producerClient.connects} (closed ${producerClient.closes}), consumer-1 ${c1.connects} (closed ${c1.closes}), consumer-2 ${c2?.connects}, relay accepted ${proxy.relay.accepted() - baseline.accepted} during the run`;
    console.log(`      ${summary}`);

    assert.equal(producerClient.connects, baseline.producer, `the producer reconnected: ${summary}`);
    assert.equal(c1.connects, baseline.consumer1, `the first consumer reconnected: ${summary}`);
    assert.equal(producerClient.closes + c1.closes, 0, `a long-lived connection closed: ${summary}`);
    assert.equal(proxy.relay.accepted() - baseline.accepted, c2?.connects, `the relay accepted connections beyond the second consumer's: ${summary}`);
    // Rebalances: the first consumer rejoined when the second joined, and again when it left.
    assert.ok(left2 - baseline.joins >= 1 && t1.joins - left2 >= 1, `rebalances not seen: ${summary}`);
    assert.ok(heartbeats >= SECONDS / 3, `too few heartbeats: ${summary}`);
    assert.ok(commits >= SECONDS / 10, `too few commits: ${summary}`);
    assert.equal(got.size, sent, `messages lost: ${summary}`);
    assert.deepEqual([...t1.crashes, ...(t2?.crashes ?? [])], []);
    for (const counter of ['requests_denied', 'malformed_closed', 'denied_closed', 'upstream_protocol_closed'])
      assert.equal(proxy.vm.counter(`meshaccel_kafka.${counter}`), 0, `${counter}: ${summary}`);
    await consumer1.disconnect();
    await producer.disconnect();
  });

  it('librdkafka: stays connected through heartbeats, commits, two rebalances, a denied topic and a policy change, and loses no record', async () => {
    const r = await rdSoak;
    if (r instanceof Error) throw r;
    const { baseline: b, final: f } = r;
    const delta = (k: string): number => f[k] - b[k];
    const summary = `${SECONDS} s: delivered ${f.delivered} (failed ${f.failed}), consumed ${f.consumed} (+${f.duplicates} again), heartbeats ${delta('c1_heartbeats')}, commits ${delta('c1_commits')} (failed ${delta('c1_commit_errors')}), consumer-1 assigns ${b.c1_assigns}/${r.c1AssignsBeforeJoin}/${r.c1AssignsBeforeLeave}/${f.c1_assigns} (warm/join/leave/end), consumer-2 assigns ${f.c2_assigns}, connections opened/closed: producer ${f.p_connects}/${f.p_closes}, consumer-1 ${f.c1_connects}/${f.c1_closes} (librdkafka's stats: disconnects ${f.p_stats_disconnects}+${f.c1_stats_disconnects}), consumer-2 ${f.c2_connects}, relay accepted ${r.acceptedDuringRun} during the run; probe ${f.probe_failed ? 'failed' : 'delivered'}; denial after the policy change ${r.denialSeen ? `after ${r.denialSeen.at - r.withdrawnAt} ms` : 'not seen'}; filter: ${r.filterCounters['meshaccel_kafka.requests_allowed']} allowed, ${r.filterCounters['meshaccel_kafka.requests_denied']} denied (answered ${r.filterCounters['meshaccel_kafka.denied_answered']})`;
    console.log(`      ${summary}`);
    const lines = r.events.map((e) => e.line);
    const unexpected = r.events.filter(
      (e) =>
        /^event (error|consume|commit|produce|delivery)/.test(e.line) &&
        // The probe's denial, and the consumer's while its topic was withdrawn.
        !e.line.startsWith(`event delivery client=producer topic=${RD_DENIED_TOPIC} err=TOPIC_AUTHORIZATION_FAILED`) &&
        // The broker's own answer to a commit while the group rebalances (passed unchanged).
        !/^event commit client=consumer-\d err=REBALANCE_IN_PROGRESS$/.test(e.line) &&
        !(/client=consumer-1 err=TOPIC_AUTHORIZATION_FAILED/.test(e.line) && e.at >= r.withdrawnAt && e.at <= r.restoredAt + 10000),
    );
    const shown = unexpected
      .slice(0, 3)
      .map((e) => e.line)
      .join(' | ');
    assert.equal(unexpected.length, 0, `${unexpected.length} unexpected errors (${shown}${unexpected.length > 3 ? ' ...' : ''}): ${summary}`);
    assert.ok(f.delivered >= SECONDS * 5, `too few records delivered: ${summary}`);
    assert.equal(f.failed, 0, `deliveries failed: ${summary}`);
    assert.equal(f.consumed, f.delivered, `records lost: ${summary}`);
    for (const k of ['p_connects', 'p_closes', 'p_stats_disconnects', 'c1_connects', 'c1_closes', 'c1_stats_disconnects'])
      assert.equal(f[k], b[k], `${k} changed during the run: ${summary}`);
    assert.equal(r.acceptedDuringRun, f.c2_connects, `the relay accepted connections beyond the second consumer's: ${summary}`);
    assert.ok(delta('c1_heartbeats') >= SECONDS / 3, `too few heartbeats: ${summary}`);
    assert.ok(delta('c1_commits') >= SECONDS / 10, `too few commits: ${summary}`);
    // Rebalances: the first consumer was assigned again when the second joined, and when it left.
    assert.ok(f.c2_assigns >= 1, `the second consumer never joined: ${summary}`);
    assert.ok(r.c1AssignsBeforeLeave > r.c1AssignsBeforeJoin && f.c1_assigns > r.c1AssignsBeforeLeave, `rebalances not seen: ${summary}`);
    assert.ok(lines.includes(`event delivery client=producer topic=${RD_DENIED_TOPIC} err=TOPIC_AUTHORIZATION_FAILED`), `the denied topic: ${summary}`);
    assert.ok(r.denialSeen, `the policy change did not reach the connected consumer: ${summary}`);
    assert.ok(r.filterCounters['meshaccel_kafka.requests_denied'] >= 2, `the filter denied nothing: ${summary}`);
    for (const counter of ['malformed_closed', 'denied_closed', 'upstream_protocol_closed'])
      assert.equal(r.filterCounters[`meshaccel_kafka.${counter}`], 0, `${counter}: ${summary}`);
  });
});
