import * as assert from 'node:assert/strict';
import { encodeKafkaFilterConfig, type KafkaFilterConfig } from '../../src/kafka/filter-config';
import { loadKafkaFilter } from '../../src/kafka/proxy';
import * as k from '../../src/kafka/wire';
import type { ProxyWasmVm } from '../../src/wasm-host/proxy-wasm-host';
import { anyPeer, config, CONSUME_KEYS, DEFAULT_PROPS } from './harness';

/**
 * Topic ids (KIP-516): the filter learns id -> name from the Metadata v10+ responses that pass
 * from the broker to the client, and judges requests that name topics by id only (Fetch v13+)
 * by the learned name. An id no response named stays denied where a topic rule applies; ids
 * learned on one port never name another port's topics. Encoded frames, not a real client: the
 * clients here (kafkajs 2.2, librdkafka 2.0.2) never send Fetch v13+ (see README).
 */

const ORDERS_ID = k.uuid(0x41);
const PAYMENTS_ID = k.uuid(0x42);
const UNKNOWN_ID = k.uuid(0x43);
const TOPIC_AUTHORIZATION_FAILED = 29;

/** A Metadata v12 response naming `topics` ([name, id, error code]). */
function metadataAnswer(corr: number, topics: ReadonlyArray<readonly [string, Buffer, number]>): Buffer {
  return k.metadataResponse(12, corr, (w) =>
    w.array(topics, (w, [name, id, code]) => {
      w.i16(code).str(name).raw(id).i8(0);
      w.array([0, 1], (w, p) =>
        w
          .i16(0)
          .i32(p)
          .i32(1)
          .i32(0)
          .array([1], (w, n) => w.i32(n))
          .array([1], (w, n) => w.i32(n))
          .array([], () => undefined)
          .tags(),
      );
      w.i32(-2147483648).tags();
    }),
  );
}

const consumeOrders = [anyPeer([{ apiKeys: CONSUME_KEYS, topic: 'orders' }])];

describe('Kafka filter: topic ids learned from Metadata responses', () => {
  let vm: ProxyWasmVm;
  beforeEach(() => {
    vm = loadKafkaFilter(() => undefined);
  });

  function connect(cfg: KafkaFilterConfig): { down(b: Buffer): Buffer; up(b: Buffer): Buffer; closed(): boolean; end(): void } {
    const root = vm.configure(encodeKafkaFilterConfig(cfg));
    assert.notEqual(root, undefined);
    let closed = false;
    const s = vm.newConnection(root as number, DEFAULT_PROPS, () => {
      closed = true;
    });
    return { down: (b) => s.downstream(b), up: (b) => s.upstream(b), closed: () => closed, end: () => s.finish() };
  }

  /** Whether Fetch v13 of `id` goes upstream unchanged (else it is answered as denied). */
  function fetchById(c: ReturnType<typeof connect>, corr: number, id: Buffer): boolean {
    const req = k.fetch(13, corr, [[id, [0]]]);
    const out = c.down(req);
    if (out.equals(req)) {
      assert.deepEqual(c.up(k.fetchResponse(13, corr, [[id, [0]]], 0)), k.fetchResponse(13, corr, [[id, [0]]], 0));
      return true;
    }
    assert.deepEqual(c.up(k.apiVersionsResponse(corr)), k.fetchResponse(13, corr, [[id, [0]]], TOPIC_AUTHORIZATION_FAILED));
    return false;
  }

  it('before any Metadata response an id is unknown (denied); after one names it, the id is judged by its name', () => {
    const c = connect(config(consumeOrders));
    assert.equal(fetchById(c, 1, ORDERS_ID), false, 'an unknown id passed a topic rule');
    const meta = k.metadata(12, 2, ['orders']);
    assert.deepEqual(c.down(meta), meta);
    const answer = metadataAnswer(2, [['orders', ORDERS_ID, 0]]);
    assert.deepEqual(c.up(answer), answer, 'the Metadata response must pass unchanged');
    assert.equal(fetchById(c, 3, ORDERS_ID), true, 'the learned id of an allowed topic is denied');
    assert.equal(fetchById(c, 4, UNKNOWN_ID), false);
    assert.equal(c.closed(), false);
    c.end();
  });

  it('a learned id of a topic no rule allows is denied by its name; ids learned on another connection of the port count', () => {
    const first = connect(config(consumeOrders));
    const meta = k.metadata(12, 1, null);
    first.down(meta);
    // Split at every kind of boundary: the response is collected across callbacks.
    const answer = metadataAnswer(1, [
      ['orders', ORDERS_ID, 0],
      ['payments', PAYMENTS_ID, 0],
    ]);
    const back = Buffer.concat([first.up(answer.subarray(0, 3)), first.up(answer.subarray(3, 40)), first.up(answer.subarray(40))]);
    assert.deepEqual(back, answer);
    first.end();
    const second = connect(config(consumeOrders));
    assert.equal(fetchById(second, 2, ORDERS_ID), true, 'learned per port, for every connection of the VM');
    assert.equal(fetchById(second, 3, PAYMENTS_ID), false, 'payments is not allowed, by id or by name');
    second.end();
  });

  it('a topic answered with an error teaches nothing, and another port does not use this port’s ids', () => {
    const c = connect(config(consumeOrders));
    c.down(k.metadata(12, 1, ['orders']));
    c.up(metadataAnswer(1, [['orders', ORDERS_ID, 3]]));
    assert.equal(fetchById(c, 2, ORDERS_ID), false, 'an id from an error entry was learned');
    c.down(k.metadata(12, 3, ['orders']));
    c.up(metadataAnswer(3, [['orders', ORDERS_ID, 0]]));
    assert.equal(fetchById(c, 4, ORDERS_ID), true);
    c.end();
    const other = connect({ ...config(consumeOrders), name: 'ingress:9093', port: 9093 });
    assert.equal(fetchById(other, 5, ORDERS_ID), false, "port 9093 used port 9092's learned id");
    other.end();
  });
});
