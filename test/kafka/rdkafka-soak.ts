import { spawn, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as readline from 'node:readline';
import { compileKafkaPort, type KafkaProxy } from '../../src/kafka/proxy';
import { packageRoot } from '../../src/paths';
import { startFilteredRelay, writeKafkaAcl } from './acl-files';
import { startMockCluster } from './mock-cluster';

/**
 * The librdkafka soak (test/kafka/rdkafka-soak.c driven from here): a long-lived librdkafka
 * producer and consumer group through its own relay with the Kafka filter to its own mock
 * cluster, for `seconds`. On the way: one record to a denied topic (the producer must see
 * TOPIC_AUTHORIZATION_FAILED), a second consumer that joins and leaves the group (two
 * rebalances), and a policy change that withdraws the consumer's topic and then restores it
 * (the consumer must see the denial, and then catch up, on the connections it has).
 */

const NODE = 'kafka-soak-rd';
export const RD_TOPIC = 'rd-orders';
export const RD_DENIED_TOPIC = 'rd-secret';
const ALLOWED = `              - {role: produce, topic: ${RD_TOPIC}}
              - {role: consume, topic: ${RD_TOPIC}}`;
// The consumer's topic withdrawn: its Fetch and OffsetCommit of rd-orders are denied, its
// group requests (no topics) still allowed, and the producer's rules unchanged.
const WITHDRAWN = `              - {role: produce, topic: ${RD_TOPIC}}
              - {role: consume, topic: rd-elsewhere}`;

export type Counters = Record<string, number>;

export interface RdkafkaSoakRun {
  seconds: number;
  /** Counters once warmed up, and at the end (after the drain). */
  baseline: Counters;
  final: Counters;
  /** The client's event lines, stamped when they arrived. */
  events: Array<{ at: number; line: string }>;
  /** Connections the relay accepted between the baseline and the end. */
  acceptedDuringRun: number;
  /** When the policy withdrew the consumer's topic, and when it was restored. */
  withdrawnAt: number;
  restoredAt: number;
  /** The first denial the consumer saw after the withdrawal (undefined: none within 30 s). */
  denialSeen: { at: number; line: string } | undefined;
  /** Joins of the second consumer and what the first did around them. */
  c1AssignsBeforeJoin: number;
  c1AssignsBeforeLeave: number;
  filterCounters: Counters;
  stderr: string;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

function parseCounters(line: string): Counters {
  return Object.fromEntries(
    line
      .split(' ')
      .slice(1)
      .map((kv) => kv.split('='))
      .map(([k, v]) => [k, Number(v)]),
  );
}

export async function runRdkafkaSoak(seconds: number): Promise<RdkafkaSoakRun> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshaccel-kafka-rdsoak-'));
  const mock = await startMockCluster([`${RD_TOPIC}:4`, `${RD_DENIED_TOPIC}:1`]);
  let proxy: KafkaProxy | undefined;
  let child: ChildProcess | undefined;
  const compile = (rules: string): ReturnType<typeof compileKafkaPort> => {
    writeKafkaAcl(dir, NODE, rules);
    return compileKafkaPort([dir], NODE, 9092, 'ingress');
  };
  try {
    proxy = await startFilteredRelay(compile(ALLOWED), mock);
    const bin = path.join(packageRoot(), 'test', 'kafka', 'build', 'rdkafka-soak');
    const proc = spawn(bin, [String(proxy.relay.address.port), RD_TOPIC, RD_DENIED_TOPIC, 'rd-soak-group'], { stdio: ['pipe', 'pipe', 'pipe'] });
    child = proc;
    let stderr = '';
    proc.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
    const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)));
    const events: RdkafkaSoakRun['events'] = [];
    const waiters: Array<{ match: (line: string) => boolean; resolve: (line: string) => void }> = [];
    readline.createInterface({ input: proc.stdout! }).on('line', (line) => {
      events.push({ at: Date.now(), line });
      for (const w of waiters.splice(0)) {
        if (w.match(line)) w.resolve(line);
        else waiters.push(w);
      }
    });
    /** The next line `match` accepts (from now on), or undefined after `ms`. */
    const next = (match: (line: string) => boolean, ms: number): Promise<string | undefined> =>
      Promise.race([new Promise<string>((resolve) => waiters.push({ match, resolve })), exited.then(() => undefined), sleep(ms).then(() => undefined)]);
    const send = (cmd: string): void => void proc.stdin!.write(`${cmd}\n`);
    const status = async (): Promise<Counters> => {
      const line = next((l) => l.startsWith('status '), 10000);
      send('status');
      const got = await line;
      if (!got) throw new Error(`rdkafka-soak gave no status; stderr: ${stderr}`);
      return parseCounters(got);
    };
    if (!(await next((l) => l === 'ready', 10000))) throw new Error(`rdkafka-soak did not start: ${stderr}`);
    // Warm-up: the consumer has joined and consumes; the connections it needs are open.
    const warmDeadline = Date.now() + 60000;
    while ((await status()).consumed === 0 && Date.now() < warmDeadline) await sleep(1000);
    await sleep(3000);
    const baseline = await status();
    const acceptedBefore = proxy.relay.accepted();
    const start = Date.now();
    const at = (share: number): Promise<void> => sleep(Math.max(0, start + seconds * 1000 * share - Date.now()));

    await at(0.15);
    send('probe');
    await next((l) => l.startsWith(`event delivery client=producer topic=${RD_DENIED_TOPIC}`), 20000);

    await at(0.3);
    const c1AssignsBeforeJoin = (await status()).c1_assigns;
    send('join');
    // A loaded machine can take longer than the plan to admit the second consumer.
    await next((l) => l.startsWith('event rebalance client=consumer-2 what=assign'), seconds * 250 + 60000);
    await at(0.55);
    const c1AssignsBeforeLeave = (await status()).c1_assigns;
    const left = next((l) => l === 'event left client=consumer-2', 60000);
    // The withdrawal must find the group stable: a consumer (re)assigned while its topic is
    // withdrawn cannot read its committed offsets, and librdkafka does not retry that read.
    const regrouped = next((l) => l === 'event rebalance client=consumer-1 what=assign partitions=4', seconds * 250 + 60000);
    send('leave');
    await left;
    await regrouped;

    await at(0.7);
    const withdrawn = compile(WITHDRAWN);
    if (!withdrawn.ok || !proxy.update(withdrawn.config)) throw new Error('the withdrawing policy was refused');
    const withdrawnAt = Date.now();
    const denial = await next((l) => /^event (consume|commit) client=consumer-1 err=TOPIC_AUTHORIZATION_FAILED/.test(l), 30000);
    const denialSeen = denial ? events.find((e) => e.line === denial && e.at >= withdrawnAt) : undefined;
    await at(0.8);
    await sleep(3000); // a few denied fetches and commits, on the same connections
    const restored = compile(ALLOWED);
    if (!restored.ok || !proxy.update(restored.config)) throw new Error('the restoring policy was refused');
    const restoredAt = Date.now();

    await at(1);
    const finalLine = next((l) => l.startsWith('final '), 60000);
    send('stop');
    const fin = await finalLine;
    if (!fin) throw new Error(`rdkafka-soak printed no final counters; stderr: ${stderr}`);
    const acceptedDuringRun = proxy.relay.accepted() - acceptedBefore;
    proc.stdin!.end();
    await Promise.race([exited, sleep(20000)]);
    return {
      seconds,
      baseline,
      final: parseCounters(fin),
      events,
      acceptedDuringRun,
      withdrawnAt,
      restoredAt,
      denialSeen,
      c1AssignsBeforeJoin,
      c1AssignsBeforeLeave,
      filterCounters: Object.fromEntries(proxy.vm.counters),
      stderr,
    };
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await proxy?.close();
    await mock.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
