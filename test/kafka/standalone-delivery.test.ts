import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { buildProxyResourceJson, encodeGenerated, type GeneratedResource } from '../../src/envoy/proxy-resources';
import { KAFKA_WASM_TYPE_URL } from '../../src/kafka/delivery';
import { kafkaFilterWasmPath } from '../../src/kafka/proxy';
import { packageRoot } from '../../src/paths';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import { PolicyEngine } from '../../src/policy/engine';
import { listYamlFiles, loadFiles } from '../../src/policy/loader';
import { TypeUrl } from '../../src/resource/type-urls';
import type { StreamProperties } from '../../src/wasm-host/proxy-wasm-host';
import { vm } from './harness';
import * as k from '../../src/kafka/wire';

/**
 * Standalone mode serves the Kafka filter: the example policy (orders produce to `orders`,
 * billing consumes it) compiled for the broker's proxy gives a Kafka chain on 9092 and its ECDS
 * resource, the whole build passes `meshaccel envoy check`, and the configuration served in
 * that resource, run through the real .wasm, forwards and refuses what the policy says.
 */

const ROOT = packageRoot();
const BROKER_NODE = 'metadata:{"NODE_NAME":"node-1"}';
const BROKER = '10.1.0.30:9092';
const ORDERS = '10.1.0.40:41000';
const BILLING = '10.1.0.50:42000';
const FRONTEND = '10.1.0.20:43000';
const TOPIC_AUTHORIZATION_FAILED = 29;
const MODULE = { localPath: kafkaFilterWasmPath() };

function brokerPolicy(): CompiledProxyPolicy {
  const files = [path.join(ROOT, 'examples', 'policies'), path.join(ROOT, 'examples', 'workloads')].flatMap(listYamlFiles);
  const loaded = loadFiles(files, undefined, { mode: 'standalone' });
  assert.deepEqual(loaded.diagnostics, []);
  const engine = new PolicyEngine();
  engine.sync(loaded.resources);
  assert.deepEqual(engine.commit().conflicts, []);
  const compiled = engine.proxy(BROKER_NODE);
  assert.ok(compiled, `no proxy ${BROKER_NODE}`);
  return compiled;
}

/** `previous`: the resources of the proxy's previous snapshot (what the server's NodeSnapshotBuilder passes). */
function build(compiled: CompiledProxyPolicy, previous?: readonly GeneratedResource[]): GeneratedResource[] {
  const previousExtensionConfigs = previous && new Set(previous.filter((r) => r.typeUrl === TypeUrl.ExtensionConfig).map((r) => r.name));
  return buildProxyResourceJson(compiled, { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG, kafkaModule: MODULE, previousExtensionConfigs }).resources;
}

const kafkaNames = (resources: readonly GeneratedResource[]): string[] =>
  resources.filter((r) => r.typeUrl === TypeUrl.ExtensionConfig && r.name.startsWith('meshaccel.kafka.')).map((r) => r.name);

/** The policy with its Kafka rules removed, their L3/L4 parts left. */
function withoutKafkaRules(compiled: CompiledProxyPolicy): CompiledProxyPolicy {
  const l4only: CompiledProxyPolicy = JSON.parse(JSON.stringify(compiled));
  for (const p of l4only.ingress) {
    if (p.l7 !== 'kafka') continue;
    delete p.l7;
    for (const r of p.rules) delete r.l7;
  }
  return l4only;
}

function find(resources: readonly GeneratedResource[], typeUrl: string, name: string): GeneratedResource {
  const r = resources.find((x) => x.typeUrl === typeUrl && x.name === name);
  assert.ok(r, `${name} not built: ${resources.map((x) => x.name).join(', ')}`);
  return r;
}

/** The plugin configuration bytes an ECDS Kafka resource carries. */
function servedConfig(r: GeneratedResource): Buffer {
  const typed = r.json.typed_config as { '@type': string; config: { configuration: { value: string } } };
  assert.equal(typed['@type'], KAFKA_WASM_TYPE_URL);
  return Buffer.from(typed.config.configuration.value, 'base64');
}

/** One request through the served configuration: what went upstream and what the client got back. */
function judge(config: Buffer, source: string, request: Buffer, corr: number): { forwarded: Buffer; toClient: Buffer; closed: boolean } {
  const v = vm();
  const root = v.configure(config);
  assert.notEqual(root, undefined, 'the .wasm refused the served configuration');
  let closed = false;
  const props: StreamProperties = { 'source.address': source, 'destination.address': BROKER };
  const s = v.newConnection(root as number, props, () => {
    closed = true;
  });
  const forwarded = s.downstream(request);
  // A denied request goes upstream as an ApiVersions carrier; its response becomes the denial.
  const toClient = forwarded.equals(request) ? Buffer.alloc(0) : s.upstream(k.apiVersionsResponse(corr));
  s.finish();
  return { forwarded, toClient, closed };
}

describe('standalone mode serves the Kafka filter on Kafka ports', () => {
  const compiled = brokerPolicy();
  const resources = build(compiled);

  it('the capture listener has a 9092 chain: network RBAC, the ECDS Kafka filter (deny-all default), tcp_proxy to ORIGINAL_DST', () => {
    const listener = find(resources, TypeUrl.Listener, 'meshaccel.inbound').json as {
      filter_chains: Array<{
        name: string;
        filter_chain_match?: { destination_port?: number };
        filters: Array<{ name: string; config_discovery?: { type_urls: string[] }; typed_config?: { cluster?: string } }>;
      }>;
    };
    const chain = listener.filter_chains.find((c) => c.filter_chain_match?.destination_port === 9092);
    assert.ok(chain, 'no chain for 9092');
    assert.equal(chain.name, 'inbound|9092|kafka');
    assert.deepEqual(
      chain.filters.map((f) => f.name),
      ['meshaccel.l4deny.inbound', 'meshaccel.l4.inbound.9092', 'meshaccel.kafka.inbound.9092', 'envoy.filters.network.tcp_proxy'],
    );
    assert.deepEqual(chain.filters[2].config_discovery?.type_urls, [KAFKA_WASM_TYPE_URL]);
    assert.equal(chain.filters[3].typed_config?.cluster, 'meshaccel.inbound.passthrough');
    const ecds = find(resources, TypeUrl.ExtensionConfig, 'meshaccel.kafka.inbound.9092');
    // orders-0 shares the broker's proxy and no policy selects it: its default allow is on every port, its address only.
    assert.deepEqual(
      ecds.origins.map((o) => o.policy),
      ['shop/kafka-orders', '(default allow: no policy selects this workload in this direction)'],
    );
  });

  it('every resource of the build passes the schema check, and `meshaccel envoy check` on it', () => {
    assert.equal(encodeGenerated(resources).length, resources.length);
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshaccel-kafka-'));
    try {
      const file = path.join(dir, 'resources.json');
      fs.writeFileSync(file, JSON.stringify(resources.map((r) => ({ '@type': r.typeUrl, ...r.json }))));
      const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'meshaccel'), 'envoy', 'check', file], { cwd: ROOT, encoding: 'utf8', timeout: 30000 });
      assert.equal(r.status, 0, r.stdout + r.stderr);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('the served configuration, run through the .wasm, allows and denies what the policy says', () => {
    const config = servedConfig(find(resources, TypeUrl.ExtensionConfig, 'meshaccel.kafka.inbound.9092'));
    const orders: k.Topics = [['orders', [0]]];
    const other: k.Topics = [['payments', [0]]];
    // orders: produce to orders, nothing else.
    assert.deepEqual(judge(config, ORDERS, k.produce(3, 1, orders), 1).forwarded, k.produce(3, 1, orders));
    assert.equal(
      judge(config, ORDERS, k.produce(3, 2, other), 2).toClient.toString('hex'),
      k.produceResponse(3, 2, other, TOPIC_AUTHORIZATION_FAILED).toString('hex'),
    );
    assert.equal(
      judge(config, ORDERS, k.fetch(11, 3, orders), 3).toClient.toString('hex'),
      k.fetchResponse(11, 3, orders, TOPIC_AUTHORIZATION_FAILED).toString('hex'),
    );
    // billing (client id billing): consume orders; not produce, not with another client id.
    assert.deepEqual(judge(config, BILLING, k.fetch(11, 4, orders, 'billing'), 4).forwarded, k.fetch(11, 4, orders, 'billing'));
    assert.equal(
      judge(config, BILLING, k.fetch(11, 5, orders, 'other'), 5).toClient.toString('hex'),
      k.fetchResponse(11, 5, orders, TOPIC_AUTHORIZATION_FAILED).toString('hex'),
    );
    assert.equal(
      judge(config, BILLING, k.produce(3, 6, orders, -1, 'billing'), 6).toClient.toString('hex'),
      k.produceResponse(3, 6, orders, TOPIC_AUTHORIZATION_FAILED).toString('hex'),
    );
    // frontend: no rule names it.
    assert.equal(
      judge(config, FRONTEND, k.produce(3, 7, orders), 7).toClient.toString('hex'),
      k.produceResponse(3, 7, orders, TOPIC_AUTHORIZATION_FAILED).toString('hex'),
    );
  });

  it('envoy render --kafka-filter and serve --kafka-filter name the module Envoy loads (absolute), and serve refuses it in grpc mode (istio mode loads it too)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshaccel-kafka-'));
    const cli = (...args: string[]): ReturnType<typeof spawnSync> =>
      spawnSync(process.execPath, [path.join(ROOT, 'bin', 'meshaccel'), ...args], { cwd: dir, encoding: 'utf8', timeout: 30000 });
    try {
      const file = path.join(dir, 'compiled.json');
      fs.writeFileSync(file, JSON.stringify(compiled));
      const r = cli('envoy', 'render', file, '--kafka-filter', 'filters/kafka.wasm');
      assert.equal(r.status, 0, String(r.stderr));
      const names = new Set((String(r.stdout).match(/"filename": "[^"]*"/g) ?? []).map((m) => m.slice(13, -1)));
      assert.deepEqual([...names], [path.join(fs.realpathSync(dir), 'filters', 'kafka.wasm')]);
      const refused = cli('serve', '--mode', 'grpc', '--kafka-filter', '/opt/kafka.wasm', '--port', '0', '--admin-port', '0');
      assert.equal(refused.status, 2, String(refused.stderr));
      assert.match(String(refused.stderr), /--kafka-filter does not apply to grpc mode/);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a port that loses its last Kafka rule keeps its resource, now allowing every request, in every later build', () => {
    const after = build(withoutKafkaRules(compiled), resources);
    const listener = find(after, TypeUrl.Listener, 'meshaccel.inbound').json as {
      filter_chains: Array<{ filter_chain_match?: { destination_port?: number } }>;
    };
    assert.ok(!listener.filter_chains.some((c) => c.filter_chain_match?.destination_port === 9092), 'the Kafka chain is gone');
    const kept = find(after, TypeUrl.ExtensionConfig, 'meshaccel.kafka.inbound.9092');
    encodeGenerated(after);
    const other: k.Topics = [['payments', [0]]];
    const r = judge(servedConfig(kept), FRONTEND, k.produce(3, 1, other), 1);
    assert.deepEqual(r.forwarded, k.produce(3, 1, other));
    assert.equal(r.closed, false);
    // The kept resource is in the next previous snapshot: it stays while the port has rules.
    assert.deepEqual(kafkaNames(build(withoutKafkaRules(compiled), after)), ['meshaccel.kafka.inbound.9092']);
  });

  it('only ports that had Kafka rules get a Kafka resource: not other ports with rules, not a first build, not a port without rules', () => {
    assert.deepEqual(kafkaNames(resources), ['meshaccel.kafka.inbound.9092'], 'a port with L3/L4 or HTTP rules only gets no Kafka resource');
    // Never served to this proxy (a first build, e.g. after it was forgotten): the restriction it never had is not kept.
    assert.deepEqual(kafkaNames(build(withoutKafkaRules(compiled))), []);
    // A port with no rules left loses its resource (its default deny is what deny-all means).
    const noRules: CompiledProxyPolicy = { ...compiled, ingress: compiled.ingress.filter((p) => p.port !== 9092) };
    assert.deepEqual(kafkaNames(build(noRules, resources)), []);
    // HTTP proxies of the examples: no Kafka resource at all.
    const files = [path.join(ROOT, 'examples', 'policies'), path.join(ROOT, 'examples', 'workloads')].flatMap(listYamlFiles);
    const engine = new PolicyEngine();
    engine.sync(loadFiles(files, undefined, { mode: 'standalone' }).resources);
    engine.commit();
    for (const [node, proxy] of engine.proxies()) {
      if (node === BROKER_NODE) continue;
      const built = build(proxy);
      assert.deepEqual(kafkaNames(build(proxy, built)), [], `${node} has no Kafka port`);
    }
  });
});
