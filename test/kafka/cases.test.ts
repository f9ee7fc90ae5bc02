import * as assert from 'assert';
import type { KafkaFilterRule } from '../../src/kafka/filter-config';
import type { StreamProperties } from '../../src/wasm-host/proxy-wasm-host';
import { anyPeer, CONSUME_KEYS, DEFAULT_PROPS, PRODUCE_KEYS, run, vm } from './harness';
import * as k from '../../src/kafka/wire';

const TOPIC = 29;
const GROUP = 30;

const produceOrders = [anyPeer([{ apiKeys: PRODUCE_KEYS, topic: 'orders' }])];
const consumeOrders = [anyPeer([{ apiKeys: CONSUME_KEYS, topic: 'orders' }])];
const consumeAny = [anyPeer([{ apiKeys: CONSUME_KEYS }])];
const allowAll = [anyPeer([])];
const twoTopics = [
  anyPeer([
    { apiKeys: [0], topic: 'a' },
    { apiKeys: [0], topic: 'b' },
  ]),
];
const billingOnly = [anyPeer([{ apiKeys: [], clientID: 'billing' }])];
const apiVersions3 = [anyPeer([{ apiKeys: [18], apiVersion: 3 }])];
const createOrders = [anyPeer([{ apiKeys: [19, 20, 21, 32], topic: 'orders' }])];
const describeConfigsAny = [anyPeer([{ apiKeys: [32] }])];

type Expect =
  | { forward: true }
  | { respond: Buffer; corr: number }
  | { merge: { version: number; corr: number; denied: ReadonlyArray<string | readonly [Buffer, string | null]> } }
  | { silent: true }
  | { close: true };

interface Case {
  name: string;
  rules: KafkaFilterRule[];
  request: Buffer | Buffer[];
  expect: Expect;
  props?: StreamProperties;
  maxFrameBytes?: number;
}

const FORWARD = { forward: true } as const;
const CLOSE = { close: true } as const;
const ordersP: k.Topics = [['orders', [0, 1]]];
const otherP: k.Topics = [['other', [0]]];
const tid = k.uuid(7);

function len(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
}

const CASES: Case[] = [
  // Produce, old and flexible versions; role expansion (produce = 0, 3, 18)
  { name: 'produce v3 to an allowed topic', rules: produceOrders, request: k.produce(3, 1, ordersP), expect: FORWARD },
  {
    name: 'produce v3 to another topic: 29 in every partition',
    rules: produceOrders,
    request: k.produce(3, 2, otherP),
    expect: { respond: k.produceResponse(3, 2, otherP, TOPIC), corr: 2 },
  },
  { name: 'produce v0 to an allowed topic', rules: produceOrders, request: k.produce(0, 3, ordersP), expect: FORWARD },
  { name: 'produce v0 denied', rules: produceOrders, request: k.produce(0, 4, otherP), expect: { respond: k.produceResponse(0, 4, otherP, TOPIC), corr: 4 } },
  { name: 'produce v9 (flexible) allowed', rules: produceOrders, request: k.produce(9, 5, ordersP), expect: FORWARD },
  {
    name: 'produce v9 (flexible) denied',
    rules: produceOrders,
    request: k.produce(9, 6, otherP),
    expect: { respond: k.produceResponse(9, 6, otherP, TOPIC), corr: 6 },
  },
  {
    name: 'produce v8 denied (record_errors, error_message)',
    rules: produceOrders,
    request: k.produce(8, 7, otherP),
    expect: { respond: k.produceResponse(8, 7, otherP, TOPIC), corr: 7 },
  },
  { name: 'produce acks=0 denied: dropped, no response expected', rules: produceOrders, request: k.produce(3, 8, otherP, 0), expect: { silent: true } },
  {
    name: 'produce with one allowed and one denied topic is denied',
    rules: produceOrders,
    request: k.produce(3, 9, [
      ['orders', [0]],
      ['other', [1]],
    ]),
    expect: {
      respond: k.produceResponse(
        3,
        9,
        [
          ['orders', [0]],
          ['other', [1]],
        ],
        TOPIC,
      ),
      corr: 9,
    },
  },
  {
    name: 'several topics each allowed by a different rule',
    rules: twoTopics,
    request: k.produce(7, 10, [
      ['a', [0]],
      ['b', [0]],
    ]),
    expect: FORWARD,
  },
  {
    name: 'several topics, one allowed by no rule',
    rules: twoTopics,
    request: k.produce(7, 11, [
      ['a', [0]],
      ['c', [0]],
    ]),
    expect: {
      respond: k.produceResponse(
        7,
        11,
        [
          ['a', [0]],
          ['c', [0]],
        ],
        TOPIC,
      ),
      corr: 11,
    },
  },
  {
    name: 'produce is not in the consume role',
    rules: consumeOrders,
    request: k.produce(3, 12, ordersP),
    expect: { respond: k.produceResponse(3, 12, ordersP, TOPIC), corr: 12 },
  },
  // Fetch, old, flexible, topic ids
  { name: 'fetch v4 allowed by the consume role', rules: consumeOrders, request: k.fetch(4, 20, ordersP), expect: FORWARD },
  { name: 'fetch v11 denied', rules: consumeOrders, request: k.fetch(11, 21, otherP), expect: { respond: k.fetchResponse(11, 21, otherP, TOPIC), corr: 21 } },
  { name: 'fetch v0 denied', rules: consumeOrders, request: k.fetch(0, 22, otherP), expect: { respond: k.fetchResponse(0, 22, otherP, TOPIC), corr: 22 } },
  { name: 'fetch v12 (flexible) allowed', rules: consumeOrders, request: k.fetch(12, 23, ordersP), expect: FORWARD },
  {
    name: 'fetch v12 (flexible) denied',
    rules: consumeOrders,
    request: k.fetch(12, 24, otherP),
    expect: { respond: k.fetchResponse(12, 24, otherP, TOPIC), corr: 24 },
  },
  {
    name: 'fetch v13 by topic id under a topic rule: denied (name unknowable)',
    rules: consumeOrders,
    request: k.fetch(13, 25, [[tid, [0]]]),
    expect: { respond: k.fetchResponse(13, 25, [[tid, [0]]], TOPIC), corr: 25 },
  },
  { name: 'fetch v15 by topic id, no topic rule: allowed', rules: consumeAny, request: k.fetch(15, 26, [[tid, [0]]]), expect: FORWARD },
  { name: 'fetch v13 by topic id, allow-all rule', rules: allowAll, request: k.fetch(13, 27, [[tid, [0, 1]]]), expect: FORWARD },
  // ListOffsets
  { name: 'listoffsets v1 allowed', rules: consumeOrders, request: k.listOffsets(1, 30, ordersP), expect: FORWARD },
  {
    name: 'listoffsets v0 denied',
    rules: consumeOrders,
    request: k.listOffsets(0, 31, otherP),
    expect: { respond: k.listOffsetsResponse(0, 31, otherP, TOPIC), corr: 31 },
  },
  {
    name: 'listoffsets v6 (flexible) denied',
    rules: consumeOrders,
    request: k.listOffsets(6, 32, otherP),
    expect: { respond: k.listOffsetsResponse(6, 32, otherP, TOPIC), corr: 32 },
  },
  // Metadata
  { name: 'metadata v1 for an allowed topic', rules: produceOrders, request: k.metadata(1, 40, ['orders']), expect: FORWARD },
  {
    name: 'metadata v1 for a denied topic: broker answer plus the topic with 29',
    rules: produceOrders,
    request: k.metadata(1, 41, ['secret']),
    expect: { merge: { version: 1, corr: 41, denied: ['secret'] } },
  },
  {
    name: 'metadata v9 (flexible) denied topic',
    rules: produceOrders,
    request: k.metadata(9, 42, ['orders', 'secret']),
    expect: { merge: { version: 9, corr: 42, denied: ['orders', 'secret'] } },
  },
  {
    name: 'metadata v12 by topic id only, under a topic rule',
    rules: produceOrders,
    request: k.metadata(12, 43, [[tid, null]]),
    expect: { merge: { version: 12, corr: 43, denied: [[tid, null]] } },
  },
  {
    name: 'metadata v4 for all topics (null) names no topic: allowed by a topic rule',
    rules: produceOrders,
    request: k.metadata(4, 44, null),
    expect: FORWARD,
  },
  { name: 'metadata v0 denied topic: no topic-less v0 carrier, closed', rules: produceOrders, request: k.metadata(0, 45, ['secret']), expect: CLOSE },
  // Group and offset requests of a consumer
  { name: 'offsetcommit v2 allowed', rules: consumeOrders, request: k.offsetCommit(2, 50, ordersP), expect: FORWARD },
  {
    name: 'offsetcommit v8 (flexible) denied topic: 29',
    rules: consumeOrders,
    request: k.offsetCommit(8, 51, otherP),
    expect: { respond: k.offsetCommitResponse(8, 51, otherP, TOPIC), corr: 51 },
  },
  {
    name: 'offsetcommit v5 denied by client id: group error 30',
    rules: billingOnly,
    request: k.offsetCommit(5, 52, ordersP),
    expect: { respond: k.offsetCommitResponse(5, 52, ordersP, GROUP), corr: 52 },
  },
  { name: 'offsetfetch v1 allowed', rules: consumeOrders, request: k.offsetFetch(1, 53, ordersP), expect: FORWARD },
  {
    name: 'offsetfetch v6 (flexible) denied',
    rules: consumeOrders,
    request: k.offsetFetch(6, 54, otherP),
    expect: { respond: k.offsetFetchResponse(6, 54, otherP, TOPIC), corr: 54 },
  },
  { name: 'offsetfetch v7 for all topics (null) under a topic rule: allowed', rules: consumeOrders, request: k.offsetFetch(7, 55, null), expect: FORWARD },
  {
    name: 'findcoordinator v0 outside the produce role: 30',
    rules: produceOrders,
    request: k.findCoordinator(0, 60, ['group-1']),
    expect: { respond: k.findCoordinatorResponse(0, 60, ['group-1'], GROUP), corr: 60 },
  },
  {
    name: 'findcoordinator v2 denied',
    rules: produceOrders,
    request: k.findCoordinator(2, 61, ['group-1']),
    expect: { respond: k.findCoordinatorResponse(2, 61, ['group-1'], GROUP), corr: 61 },
  },
  {
    name: 'findcoordinator v4 (batched keys) denied',
    rules: produceOrders,
    request: k.findCoordinator(4, 62, ['g1', 'g2']),
    expect: { respond: k.findCoordinatorResponse(4, 62, ['g1', 'g2'], GROUP), corr: 62 },
  },
  {
    name: 'findcoordinator under a consume topic rule (carries no topic): allowed',
    rules: consumeOrders,
    request: k.findCoordinator(3, 63, ['group-1']),
    expect: FORWARD,
  },
  { name: 'joingroup v5 denied', rules: produceOrders, request: k.joinGroup(5, 64), expect: { respond: k.joinGroupResponse(5, 64, GROUP), corr: 64 } },
  {
    name: 'joingroup v9 (flexible) denied',
    rules: produceOrders,
    request: k.joinGroup(9, 65),
    expect: { respond: k.joinGroupResponse(9, 65, GROUP), corr: 65 },
  },
  { name: 'heartbeat v0 denied', rules: produceOrders, request: k.heartbeat(0, 66), expect: { respond: k.heartbeatResponse(0, 66, GROUP), corr: 66 } },
  {
    name: 'heartbeat v4 (flexible) denied',
    rules: produceOrders,
    request: k.heartbeat(4, 67),
    expect: { respond: k.heartbeatResponse(4, 67, GROUP), corr: 67 },
  },
  { name: 'heartbeat under a consume topic rule: allowed', rules: consumeOrders, request: k.heartbeat(4, 68), expect: FORWARD },
  { name: 'syncgroup v5 denied', rules: produceOrders, request: k.syncGroup(5, 69), expect: { respond: k.syncGroupResponse(5, 69, GROUP), corr: 69 } },
  { name: 'leavegroup v3 denied', rules: produceOrders, request: k.leaveGroup(3, 70), expect: { respond: k.leaveGroupResponse(3, 70, GROUP), corr: 70 } },
  // apiVersion and clientID fields
  { name: 'apiVersion 3 exact: ApiVersions v3 allowed', rules: apiVersions3, request: k.apiVersions(3, 80), expect: FORWARD },
  { name: 'apiVersion 3 exact: ApiVersions v2 denied (no response built: closed)', rules: apiVersions3, request: k.apiVersions(2, 81), expect: CLOSE },
  { name: 'clientID exact: billing allowed', rules: billingOnly, request: k.metadata(1, 82, ['x'], 'billing'), expect: FORWARD },
  {
    name: 'clientID exact: other client denied',
    rules: billingOnly,
    request: k.fetch(4, 83, ordersP, 'billing2'),
    expect: { respond: k.fetchResponse(4, 83, ordersP, TOPIC), corr: 83 },
  },
  {
    name: 'clientID exact: null client id denied',
    rules: billingOnly,
    request: k.metadata(1, 84, ['x'], null),
    expect: { merge: { version: 1, corr: 84, denied: ['x'] } },
  },
  // Other topic-carrying keys
  { name: 'createtopics v2 allowed topic', rules: createOrders, request: k.createTopics(2, 90, ['orders']), expect: FORWARD },
  { name: 'createtopics v5 (flexible) denied topic: closed', rules: createOrders, request: k.createTopics(5, 91, ['orders', 'other']), expect: CLOSE },
  { name: 'deletetopics v1 allowed', rules: createOrders, request: k.deleteTopics(1, 92, ['orders']), expect: FORWARD },
  { name: 'deletetopics v6 by id under a topic rule: closed', rules: createOrders, request: k.deleteTopics(6, 93, [tid]), expect: CLOSE },
  { name: 'deleterecords v2 (flexible) allowed', rules: createOrders, request: k.deleteRecords(2, 94, ordersP), expect: FORWARD },
  { name: 'describeconfigs under a topic rule: topics not read, closed', rules: createOrders, request: k.describeConfigs(1, 95, 'orders'), expect: CLOSE },
  { name: 'describeconfigs under a rule without topic: allowed', rules: describeConfigsAny, request: k.describeConfigs(4, 96, 'orders'), expect: FORWARD },
  { name: 'an API key this filter does not know, allow-all rule', rules: allowAll, request: k.request(200, 0, 97, 'cli', (w) => w.i32(1)), expect: FORWARD },
  { name: 'an API key this filter does not know, role rule', rules: produceOrders, request: k.request(200, 0, 98, 'cli', (w) => w.i32(1)), expect: CLOSE },
  // Peers
  {
    name: 'peer CIDR that does not hold the client: denied',
    rules: [anyPeer([], { anyPeer: false, peers: ['10.0.0.0/8'] })],
    request: k.heartbeat(1, 100),
    expect: { respond: k.heartbeatResponse(1, 100, GROUP), corr: 100 },
  },
  {
    name: 'peer CIDR that holds the client: allowed',
    rules: [anyPeer([], { anyPeer: false, peers: ['127.0.0.0/8'] })],
    request: k.heartbeat(1, 101),
    expect: FORWARD,
  },
  {
    name: 'IPv6 peer CIDR, IPv6 client',
    rules: [anyPeer([], { anyPeer: false, peers: ['fd00::/64'] })],
    request: k.heartbeat(1, 102),
    expect: FORWARD,
    props: { 'source.address': '[fd00::5]:4000', 'destination.address': '[fd00::1]:9092' },
  },
  {
    name: 'rule for another local workload: denied',
    rules: [anyPeer([], { local: ['10.9.9.9/32'] })],
    request: k.heartbeat(1, 103),
    expect: { respond: k.heartbeatResponse(1, 103, GROUP), corr: 103 },
  },
  {
    name: 'mTLS principal match',
    rules: [anyPeer([], { anyPeer: false, principals: ['spiffe://cluster.local/ns/shop/sa/web'] })],
    request: k.heartbeat(1, 104),
    expect: FORWARD,
    props: { ...DEFAULT_PROPS, 'connection.uri_san_peer_certificate': 'spiffe://cluster.local/ns/shop/sa/web' },
  },
  {
    name: 'mTLS principal absent: denied',
    rules: [anyPeer([], { anyPeer: false, principals: ['spiffe://cluster.local/ns/shop/sa/web'] })],
    request: k.heartbeat(1, 105),
    expect: { respond: k.heartbeatResponse(1, 105, GROUP), corr: 105 },
  },
  // Malformed frames: fail closed
  { name: 'frame shorter than a request header', rules: allowAll, request: Buffer.concat([len(6), Buffer.alloc(6)]), expect: CLOSE },
  {
    name: 'frame longer than the configured maximum',
    rules: allowAll,
    request: Buffer.concat([len(2048), Buffer.alloc(16)]),
    expect: CLOSE,
    maxFrameBytes: 1024,
  },
  { name: 'negative frame length', rules: allowAll, request: Buffer.concat([len(-5), Buffer.alloc(16)]), expect: CLOSE },
  { name: 'negative api version', rules: allowAll, request: k.heartbeat(1, 110).fill(0xff, 6, 8), expect: CLOSE },
  { name: 'client id longer than the frame', rules: allowAll, request: k.heartbeat(1, 111).fill(0x7f, 12, 13), expect: CLOSE },
  { name: 'topic array truncated (claims 2, holds 1)', rules: produceOrders, request: truncatedTopics(), expect: CLOSE },
  { name: 'topic array claiming 2^29 entries', rules: allowAll, request: hugeArray(), expect: CLOSE },
  { name: 'compact topic array claiming 2^29 entries (flexible)', rules: allowAll, request: hugeCompactArray(), expect: CLOSE },
  { name: 'TLS ClientHello', rules: allowAll, request: Buffer.from('16030100a5010000a10303', 'hex'), expect: CLOSE },
  { name: 'HTTP request', rules: allowAll, request: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'), expect: CLOSE },
  // Framing across reads
  {
    name: 'a request split into single bytes is forwarded once, whole',
    rules: produceOrders,
    request: [...k.produce(3, 120, ordersP)].map((b) => Buffer.from([b])),
    expect: FORWARD,
  },
];

function truncatedTopics(): Buffer {
  const full = k.produce(3, 112, [['orders', [0]]]);
  // topic count at offset 4 (len) + 2+2+4+2+3 (header, client "cli") + 2 (null txn id) + 2 + 4
  const at = 4 + 13 + 2 + 2 + 4;
  full.writeInt32BE(2, at);
  return full;
}

function hugeArray(): Buffer {
  return k.request(0, 3, 113, 'cli', (w) =>
    w
      .str(null)
      .i16(1)
      .i32(1000)
      .i32(1 << 29),
  );
}

function hugeCompactArray(): Buffer {
  return k.request(0, 9, 114, 'cli', (w) =>
    w
      .str(null)
      .i16(1)
      .i32(1000)
      .uvarint((1 << 29) + 1),
  );
}

function carrierMetadata(version: number, corr: number): Buffer {
  return k.request(3, version, corr, null, (w) => {
    w.array([], () => {});
    if (version >= 4) w.i8(0);
    if (version >= 8 && version <= 10) w.i8(0);
    if (version >= 8) w.i8(0);
    w.tags();
  });
}

describe('Kafka filter: rule set × request → verdict and response bytes', () => {
  it(`has at least 40 cases (${CASES.length})`, () => assert.ok(CASES.length >= 40));

  for (const c of CASES) {
    it(c.name, () => {
      const chunks = Array.isArray(c.request) ? c.request : [c.request];
      const whole = Buffer.concat(chunks);
      const e = c.expect;
      if ('forward' in e) {
        const o = run(c.rules, chunks, [], c.props, c.maxFrameBytes);
        assert.strictEqual(o.closed, false, 'connection closed');
        assert.deepStrictEqual(o.forwarded, whole);
      } else if ('respond' in e) {
        const o = run(c.rules, chunks, [k.apiVersionsResponse(e.corr)], c.props, c.maxFrameBytes);
        assert.strictEqual(o.closed, false, 'connection closed');
        assert.deepStrictEqual(o.forwarded, k.carrierApiVersions(e.corr), 'the denied request was forwarded instead of the carrier');
        assert.deepStrictEqual(o.toClient.toString('hex'), e.respond.toString('hex'));
      } else if ('merge' in e) {
        const m = e.merge;
        const o = run(c.rules, chunks, [k.metadataResponse(m.version, m.corr, (w) => w.array([], () => {}))], c.props);
        assert.strictEqual(o.closed, false, 'connection closed');
        assert.deepStrictEqual(o.forwarded, carrierMetadata(m.version, m.corr));
        assert.deepStrictEqual(
          o.toClient.toString('hex'),
          k.metadataResponse(m.version, m.corr, k.deniedMetadataTopics(m.version, m.denied, TOPIC)).toString('hex'),
        );
      } else if ('silent' in e) {
        const o = run(c.rules, chunks, [], c.props);
        assert.strictEqual(o.closed, false);
        assert.strictEqual(o.forwarded.length, 0);
      } else {
        const o = run(c.rules, chunks, [], c.props, c.maxFrameBytes);
        assert.strictEqual(o.closed, true, 'connection not closed');
        assert.strictEqual(o.forwarded.length, 0, 'bytes were forwarded');
      }
    });
  }
});

describe('Kafka filter: responses stay in request order', () => {
  it('a denied request between two allowed ones is answered between their responses', () => {
    const reqs = Buffer.concat([k.produce(3, 1, ordersP), k.produce(3, 2, otherP), k.produce(3, 3, ordersP)]);
    const r1 = k.produceResponse(3, 1, ordersP, 0);
    const r3 = k.produceResponse(3, 3, ordersP, 0);
    // The broker's answers arrive split at arbitrary points, the carrier's in the middle.
    const upstream = Buffer.concat([r1, k.apiVersionsResponse(2), r3]);
    const pieces = [
      upstream.subarray(0, 5),
      upstream.subarray(5, r1.length + 3),
      upstream.subarray(r1.length + 3, upstream.length - 2),
      upstream.subarray(upstream.length - 2),
    ];
    const o = run(produceOrders, [reqs], pieces);
    assert.strictEqual(o.closed, false);
    assert.deepStrictEqual(o.forwarded, Buffer.concat([k.produce(3, 1, ordersP), k.carrierApiVersions(2), k.produce(3, 3, ordersP)]));
    assert.deepStrictEqual(o.toClient.toString('hex'), Buffer.concat([r1, k.produceResponse(3, 2, otherP, TOPIC), r3]).toString('hex'));
  });

  for (const [how, split] of [
    ['in one read', (b: Buffer) => [b]],
    ['one byte per read', (b: Buffer) => [...b].map((x) => Buffer.from([x]))],
  ] as const) {
    it(`two denied requests among allowed ones, the broker's answers arriving ${how}`, () => {
      const reqs = [k.produce(3, 1, ordersP), k.fetch(11, 2, otherP), k.produce(3, 3, otherP), k.produce(3, 4, ordersP)];
      const r1 = k.produceResponse(3, 1, ordersP, 0);
      const r4 = k.produceResponse(3, 4, ordersP, 0);
      const o = run(
        [anyPeer([{ apiKeys: [0, 1], topic: 'orders' }])],
        [Buffer.concat(reqs)],
        split(Buffer.concat([r1, k.apiVersionsResponse(2), k.apiVersionsResponse(3), r4])),
      );
      assert.strictEqual(o.closed, false);
      assert.deepStrictEqual(o.forwarded, Buffer.concat([reqs[0], k.carrierApiVersions(2), k.carrierApiVersions(3), reqs[3]]));
      assert.deepStrictEqual(
        o.toClient.toString('hex'),
        Buffer.concat([r1, k.fetchResponse(11, 2, otherP, TOPIC), k.produceResponse(3, 3, otherP, TOPIC), r4]).toString('hex'),
      );
    });
  }

  it('a response with an unexpected correlation id closes the connection', () => {
    const o = run(produceOrders, [k.produce(3, 1, ordersP)], [k.produceResponse(3, 9, ordersP, 0)]);
    assert.strictEqual(o.closed, true);
  });

  it('a response to no request closes the connection', () => {
    const o = run(produceOrders, [], [k.produceResponse(3, 1, ordersP, 0)]);
    assert.strictEqual(o.closed, true);
  });

  it('acks=0 produce expects no response: the next response belongs to the next request', () => {
    const o = run(
      produceOrders,
      [Buffer.concat([k.produce(3, 1, ordersP, 0), k.metadata(1, 2, ['orders'])])],
      [k.metadataResponse(1, 2, (w) => w.array([], () => {}))],
    );
    assert.strictEqual(o.closed, false);
    assert.strictEqual(o.toClient.length > 0, true);
  });
});

describe('Kafka filter: module and counters', () => {
  it('imports only what Envoy gives network filters', () => {
    // ProxyWasmVm refuses any other import; loading it is the check.
    assert.ok(vm());
  });

  it('counts allowed, denied, answered and malformed requests', () => {
    const before = new Map(vm().counters);
    run(produceOrders, [k.produce(3, 1, otherP)], [k.apiVersionsResponse(1)]);
    run(allowAll, [Buffer.from('GET / HTTP/1.1\r\n\r\n')]);
    const delta = (n: string): number => vm().counter(n) - (before.get(n) ?? 0);
    assert.strictEqual(delta('meshaccel_kafka.requests_denied'), 1);
    assert.strictEqual(delta('meshaccel_kafka.denied_answered'), 1);
    assert.strictEqual(delta('meshaccel_kafka.malformed_closed'), 1);
  });

  it('a newer configuration applies to a connection that is already open', () => {
    const v = vm();
    const { encodeKafkaFilterConfig } = require('../../src/kafka/filter-config') as typeof import('../../src/kafka/filter-config');
    const { config } = require('./harness') as typeof import('./harness');
    const root = v.configure(encodeKafkaFilterConfig(config(allowAll)));
    let closed = false;
    const s = v.newConnection(root as number, DEFAULT_PROPS, () => {
      closed = true;
    });
    assert.deepStrictEqual(s.downstream(k.produce(3, 1, otherP)), k.produce(3, 1, otherP));
    v.configure(encodeKafkaFilterConfig(config(produceOrders)));
    assert.deepStrictEqual(s.downstream(k.produce(3, 2, otherP)), k.carrierApiVersions(2));
    assert.strictEqual(closed, false);
    s.finish();
  });

  it('refuses a configuration that is not one, and the previous one keeps serving', () => {
    assert.strictEqual(vm().configure(Buffer.from('not a config')), undefined);
  });
});
