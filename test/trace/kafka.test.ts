import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as path from 'path';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { PolicyEngine } from '../../src/policy/engine';
import { listYamlFiles, loadFiles } from '../../src/policy/loader';
import { traceConnection, type TraceResult } from '../../src/trace/trace';
import type { KafkaRequestSpec } from '../../src/kafka/request-frame';
import { ROOT } from '../policy/helpers';

/**
 * `policy trace --kafka`: the request is judged by the built Kafka filter (.wasm) with the
 * configuration the broker's proxy is served, and the trace names the deciding rule (file:line,
 * section index, kafka index) or the default deny, and what the client receives.
 */

const engine = new PolicyEngine();
before(() => {
  const files = ['examples/policies', 'examples/workloads'].flatMap((d) => listYamlFiles(path.join(ROOT, d)));
  const loaded = loadFiles(files);
  assert.deepEqual(loaded.diagnostics, []);
  engine.sync(loaded.resources);
  assert.deepEqual(engine.commit().conflicts, []);
});

function trace(from: string, kafka: KafkaRequestSpec, port = 9092): TraceResult {
  return traceConnection(engine, { from: { workload: `Workload/${from}` }, to: { workload: 'Workload/shop/kafka-0' }, port, kafka }, DEFAULT_REDIRECT_CONFIG);
}

const FILE = /\(\S*examples\/policies\/kafka-produce-consume\.yaml:\d+\)/.source;

describe('policy trace --kafka runs the Kafka filter', function () {
  this.timeout(60000);

  const cases: Array<{ name: string; from: string; kafka: KafkaRequestSpec; allowed: boolean; decided: RegExp; client: RegExp }> = [
    {
      name: 'produce to an allowed topic: the rule, its section index and kafka index',
      from: 'shop/orders-0',
      kafka: { request: 'produce', topics: ['orders'] },
      allowed: true,
      decided: new RegExp(`Kafka Produce v9 allowed by shop/kafka-orders ${FILE} spec\\.ingress\\[0\\] kafka\\[0\\]`),
      client: /forwarded unchanged/,
    },
    {
      name: 'one denied topic among several: default deny, the topic named, TOPIC_AUTHORIZATION_FAILED',
      from: 'shop/orders-0',
      kafka: { request: 'produce', topics: ['orders', 'payments'], apiVersion: 3 },
      allowed: false,
      decided: /Kafka Produce v3 denied: topic payments is allowed by no rule whose other fields match \(default deny\)/,
      client: /a Produce v3 response with error TOPIC_AUTHORIZATION_FAILED \(29\)/,
    },
    {
      name: 'consume by the right client id, by API key number',
      from: 'shop/billing-0',
      kafka: { request: 1, topics: ['orders'], clientId: 'billing', apiVersion: 11 },
      allowed: true,
      decided: new RegExp(`Kafka Fetch v11 allowed by shop/kafka-orders ${FILE} spec\\.ingress\\[1\\] kafka\\[0\\]`),
      client: /forwarded unchanged/,
    },
    {
      name: 'consume with another client id: no rule, GROUP_AUTHORIZATION_FAILED for a group key',
      from: 'shop/billing-0',
      kafka: { request: 'joingroup', clientId: 'someone' },
      allowed: false,
      decided: /no rule allows this API key, version and client id \(default deny\)/,
      client: /JoinGroup v5 response with error GROUP_AUTHORIZATION_FAILED \(30\)/,
    },
    {
      name: 'a key that gets no synthesized answer: the connection is closed',
      from: 'shop/billing-0',
      kafka: { request: 'describeconfigs', topics: ['orders'], clientId: 'billing' },
      allowed: false,
      decided: /DescribeConfigs v4 denied/,
      client: /a closed connection/,
    },
    {
      name: 'Metadata for a denied topic: the merged answer',
      from: 'shop/orders-0',
      kafka: { request: 'metadata', topics: ['payments'] },
      allowed: false,
      decided: /Metadata v12 denied: topic payments/,
      client: /Metadata v12 response with error TOPIC_AUTHORIZATION_FAILED \(29\)/,
    },
    {
      name: 'Fetch v13 names topics by id: no Metadata response named it, so it is denied under a topic rule',
      from: 'shop/billing-0',
      kafka: { request: 'consume', topics: ['orders'], clientId: 'billing', apiVersion: 13 },
      allowed: false,
      decided: /names topic id:[0-9a-f]{32} by an id no Metadata response on this port has named/,
      client: /TOPIC_AUTHORIZATION_FAILED \(29\)/,
    },
    {
      name: 'a key every rule of the peer allows (apiKey apiversions)',
      from: 'shop/orders-0',
      kafka: { request: 'apiversions', clientId: 'x' },
      allowed: true,
      decided: new RegExp(`ApiVersions v3 allowed by shop/kafka-orders ${FILE} spec\\.ingress\\[0\\] kafka\\[0\\]`),
      client: /forwarded unchanged/,
    },
  ];
  for (const c of cases) {
    it(c.name, () => {
      const r = trace(c.from, c.kafka);
      assert.equal(r.allowed, c.allowed, r.decidedBy);
      assert.match(r.decidedBy, c.decided);
      assert.match(r.decidedBy, c.client);
    });
  }

  it('a peer the L3/L4 rules refuse never reaches the filter', () => {
    const r = trace('shop/frontend-0', { request: 'produce', topics: ['orders'] });
    assert.equal(r.allowed, false);
    assert.ok(!r.sides.some((s) => s.filters.some((f) => f.kafka)), 'the filter judged a refused connection');
  });

  it('the CLI takes --kafka, --topic, --client-id, --api-version and refuses what is not a request', () => {
    const cli = (...args: string[]): ReturnType<typeof spawnSync> =>
      spawnSync(
        process.execPath,
        [path.join(ROOT, 'bin', 'meshaccel'), 'policy', 'trace', '--policies', 'examples/policies', '--workloads', 'examples/workloads', ...args],
        {
          encoding: 'utf8',
          cwd: ROOT,
        },
      );
    const to = ['--from', 'shop/billing-0', '--to', 'shop/kafka-0', '--port', '9092'];
    const ok = cli(...to, '--kafka', 'consume', '--topic', 'orders', '--client-id', 'billing', '--api-version', '12');
    assert.equal(ok.status, 0, String(ok.stderr));
    assert.match(String(ok.stdout), /^  L7 meshaccel\.kafka\.inbound\.9092: Kafka Fetch v12 pass \(shop\/kafka-orders .*kafka\[0\]\)$/m);
    assert.match(String(ok.stdout), /^ALLOWED: /m);
    const denied = cli(...to, '--kafka', 'produce', '--topic', 'orders', '--client-id', 'billing');
    assert.match(String(denied.stdout), /^DENIED: .*TOPIC_AUTHORIZATION_FAILED \(29\)/m);
    assert.equal(cli(...to, '--kafka', 'nosuchkey').status, 2);
    assert.equal(cli(...to, '--topic', 'orders').status, 2);
    assert.equal(cli(...to, '--kafka', 'produce', '--api-version', 'x').status, 2);
  });
});
