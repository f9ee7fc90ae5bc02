import * as assert from 'assert';
import { execFile } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as os from 'os';
import * as path from 'path';
import { Kafka, logLevel, type Consumer, type Producer } from 'kafkajs';
import { compileKafkaPort, type KafkaProxy } from '../../src/kafka/proxy';
import { packageRoot } from '../../src/paths';
import { startFilteredRelay, writeKafkaAcl } from './acl-files';
import { startMockCluster, type MockCluster } from './mock-cluster';

/**
 * Real clients (kafkajs) through the relay with the filter to a real broker implementation
 * (librdkafka's mock cluster). The mock advertises its own address, so every client
 * connection is steered through the relay by kafkajs's socketFactory.
 */

const NODE = 'kafka-node';

const RULES_ORDERS = `              - {role: produce, topic: orders}
              - {role: consume, topic: orders}
              - {apiKey: metadata}`;
const RULES_EVENTS = `              - {role: produce, topic: orders}
              - {role: consume, topic: events}
              - {apiKey: metadata}`;

describe('Kafka filter with real clients (kafkajs → relay → librdkafka mock cluster)', function () {
  this.timeout(120000);
  let mock: MockCluster;
  let proxy: KafkaProxy;
  let dir: string;
  const logs: Array<{ at: number; accepted: number; line: string }> = [];

  const compile = (): ReturnType<typeof compileKafkaPort> => compileKafkaPort([dir], NODE, 9092, 'ingress');

  before(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshaccel-kafka-'));
    writeKafkaAcl(dir, NODE, RULES_ORDERS);
    mock = await startMockCluster(['orders:2', 'secret:1', 'events:1']);
    proxy = await startFilteredRelay(compile(), mock, (level, line) =>
      logs.push({ at: Date.now(), accepted: proxy?.relay.accepted() ?? 0, line: `${level} ${line}` }),
    );
  });

  after(async () => {
    await proxy?.close();
    await mock?.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  function kafka(clientId: string): Kafka {
    const port = proxy.relay.address.port;
    return new Kafka({
      clientId,
      brokers: [`127.0.0.1:${port}`],
      logLevel: logLevel.NOTHING,
      retry: { retries: 2, initialRetryTime: 100 },
      // Every broker the cluster advertises is reached through the relay.
      socketFactory: ({ onConnect }) => net.connect({ host: '127.0.0.1', port }, onConnect),
    });
  }

  async function consumeUntil(consumer: Consumer, topic: string, count: number, ms: number): Promise<string[]> {
    const got: string[] = [];
    await consumer.subscribe({ topic, fromBeginning: true });
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`only ${got.length}/${count} messages within ${ms} ms`)), ms);
      void consumer.run({
        autoCommitInterval: 500,
        eachMessage: async ({ message }) => {
          got.push(String(message.value));
          if (got.length >= count) {
            clearTimeout(timer);
            resolve();
          }
        },
      });
    });
    return got;
  }

  let producer: Producer;

  it('produces and consumes with a consumer group on an allowed topic, and stays connected', async () => {
    producer = kafka('producer-1').producer({ allowAutoTopicCreation: false });
    await producer.connect();
    for (let i = 0; i < 20; i++) await producer.send({ topic: 'orders', messages: [{ key: String(i % 2), value: `order-${i}` }] });
    const consumer = kafka('consumer-1').consumer({ groupId: 'group-1', heartbeatInterval: 300, sessionTimeout: 6000, maxWaitTimeInMs: 200 });
    await consumer.connect();
    const crashes: unknown[] = [];
    consumer.on(consumer.events.CRASH, (e) => crashes.push(e));
    const got = await consumeUntil(consumer, 'orders', 20, 30000);
    assert.deepStrictEqual([...got].sort(), Array.from({ length: 20 }, (_, i) => `order-${i}`).sort());
    // Steady state: heartbeats, fetches and commits for a while, over the same connections.
    const heartbeats: number[] = [];
    consumer.on(consumer.events.HEARTBEAT, () => heartbeats.push(Date.now()));
    const commits: unknown[] = [];
    consumer.on(consumer.events.COMMIT_OFFSETS, (e) => commits.push(e));
    const acceptedBefore = proxy.relay.accepted();
    for (let i = 20; i < 40; i++) {
      await producer.send({ topic: 'orders', messages: [{ value: `order-${i}` }] });
      await new Promise((r) => setTimeout(r, 500));
    }
    assert.strictEqual(proxy.relay.accepted(), acceptedBefore, 'a client reconnected during the steady period');
    assert.ok(heartbeats.length >= 5, `only ${heartbeats.length} heartbeats`);
    assert.ok(commits.length >= 1, 'no offset commits');
    assert.deepStrictEqual(crashes, []);
    assert.strictEqual(proxy.vm.counter('meshaccel_kafka.malformed_closed'), 0);
    assert.strictEqual(proxy.vm.counter('meshaccel_kafka.requests_denied'), 0);
    await consumer.disconnect();
  });

  it('a denied produce surfaces as TOPIC_AUTHORIZATION_FAILED, not a disconnect loop', async () => {
    const acceptedBefore = proxy.relay.accepted();
    await assert.rejects(
      () => producer.send({ topic: 'secret', messages: [{ value: 'x' }] }),
      (err: Error & { type?: string; cause?: { type?: string } }) => {
        const type = err.type ?? err.cause?.type;
        assert.strictEqual(type, 'TOPIC_AUTHORIZATION_FAILED', `${err.name}: ${err.message}`);
        return true;
      },
    );
    assert.ok(proxy.vm.counter('meshaccel_kafka.denied_answered') >= 1);
    assert.strictEqual(proxy.relay.accepted(), acceptedBefore, 'the denial made the client reconnect');
    // The same connection still serves allowed requests.
    await producer.send({ topic: 'orders', messages: [{ value: 'after-denial' }] });
  });

  it('a denied fetch surfaces in the consumer as TOPIC_AUTHORIZATION_FAILED', async () => {
    const consumer = kafka('consumer-2').consumer({ groupId: 'group-2', retry: { retries: 0 } });
    await consumer.connect();
    const crashed = new Promise<Error & { type?: string }>((resolve) =>
      consumer.on(consumer.events.CRASH, (e) => resolve(e.payload.error as Error & { type?: string })),
    );
    await consumer.subscribe({ topic: 'secret', fromBeginning: true });
    void consumer.run({ eachMessage: async () => {} });
    const err = await crashed;
    assert.strictEqual(err.type ?? (err as { cause?: { type?: string } }).cause?.type, 'TOPIC_AUTHORIZATION_FAILED', `${err.name}: ${err.message}`);
    await consumer.disconnect();
  });

  it('a policy change reaches a consumer that stays connected', async () => {
    const consumer = kafka('consumer-3').consumer({ groupId: 'group-3', heartbeatInterval: 300, maxWaitTimeInMs: 200, retry: { retries: 0 } });
    await consumer.connect();
    const crashes: Array<Error & { type?: string }> = [];
    consumer.on(consumer.events.CRASH, (e) => crashes.push(e.payload.error as Error & { type?: string }));
    await producer.send({ topic: 'orders', messages: [{ value: 'before-change' }] });
    await consumeUntil(consumer, 'orders', 1, 30000);
    const acceptedBefore = proxy.relay.accepted();
    const changedAt = Date.now();
    writeKafkaAcl(dir, NODE, RULES_EVENTS);
    const c = compile();
    assert.ok(c.ok);
    assert.ok(proxy.update(c.config));
    // The open consumer connection's next Fetch or OffsetCommit of orders is judged by the new policy.
    const deadline = Date.now() + 15000;
    let denial: (typeof logs)[number] | undefined;
    while (!denial && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 100));
      denial = logs.find((l) => l.at >= changedAt && /denied api_key=(1|8) /.test(l.line) && l.line.includes('client_id=consumer-3'));
    }
    assert.ok(
      denial,
      `no Fetch was denied after the policy change; filter log since: ${logs
        .filter((l) => l.at >= changedAt)
        .map((l) => l.line)
        .join('\n')}`,
    );
    assert.strictEqual(denial.accepted, acceptedBefore, 'the denial came on a new connection, not the open one');
    await consumer.disconnect();
  });

  function rdkafka(...args: string[]): Promise<Record<string, string>> {
    const bin = path.join(packageRoot(), 'test', 'kafka', 'build', 'rdkafka-client');
    return new Promise((resolve, reject) =>
      execFile(bin, [String(proxy.relay.address.port), ...args], { timeout: 60000 }, (err, stdout, stderr) => {
        if (err) return reject(new Error(`rdkafka-client ${args.join(' ')}: ${err.message} ${stderr}`));
        resolve(
          Object.fromEntries(
            stdout
              .trim()
              .split(' ')
              .map((kv) => kv.split('=') as [string, string]),
          ),
        );
      }),
    );
  }

  it('librdkafka: produces, and consumes with a group (commits, heartbeats), without reconnects', async () => {
    writeKafkaAcl(dir, NODE, RULES_ORDERS);
    const c = compile();
    assert.ok(c.ok && proxy.update(c.config));
    const closedBefore = proxy.vm.counter('meshaccel_kafka.malformed_closed') + proxy.vm.counter('meshaccel_kafka.denied_closed');
    const acceptedBefore = proxy.relay.accepted();
    assert.deepStrictEqual(await rdkafka('produce', 'orders', '25'), { delivered: '25', failed: '0', error: 'none' });
    const consumed = await rdkafka('consume', 'orders', '25', 'rd-group', '20');
    assert.strictEqual(consumed.error, 'none');
    assert.ok(Number(consumed.consumed) >= 25, `consumed ${consumed.consumed}`);
    assert.strictEqual(proxy.vm.counter('meshaccel_kafka.malformed_closed') + proxy.vm.counter('meshaccel_kafka.denied_closed'), closedBefore);
    // A bootstrap and a broker connection per client, plus the group coordinator's: no more.
    assert.ok(proxy.relay.accepted() - acceptedBefore <= 6, `${proxy.relay.accepted() - acceptedBefore} connections for two clients`);
  });

  it('librdkafka: a denied produce fails its messages with TOPIC_AUTHORIZATION_FAILED', async () => {
    const r = await rdkafka('produce', 'secret', '3');
    assert.deepStrictEqual(r, { delivered: '0', failed: '3', error: 'TOPIC_AUTHORIZATION_FAILED' });
  });

  it('librdkafka: a denied fetch surfaces in the consumer as TOPIC_AUTHORIZATION_FAILED', async () => {
    const r = await rdkafka('consume', 'secret', '1', 'rd-group-2', '15');
    assert.strictEqual(r.error, 'TOPIC_AUTHORIZATION_FAILED');
  });
});
