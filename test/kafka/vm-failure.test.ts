import * as assert from 'assert';
import { encodeKafkaFilterConfig } from '../../src/kafka/filter-config';
import { loadKafkaFilter } from '../../src/kafka/proxy';
import { anyPeer, config, DEFAULT_PROPS, PRODUCE_KEYS } from './harness';
import * as k from '../../src/kafka/wire';

describe('Kafka filter: a failing VM fails closed', () => {
  it('an exception inside a filter callback closes the connection, and every later one', () => {
    // The host's log sink throws while the filter is inside its downstream callback (it logs
    // the denial): to the VM that is a trap in the middle of a callback.
    const vm = loadKafkaFilter((_level, message) => {
      if (message.includes('denied')) throw new Error('sink failed');
    });
    const root = vm.configure(encodeKafkaFilterConfig(config([anyPeer([{ apiKeys: PRODUCE_KEYS, topic: 'orders' }])]))) as number;
    let closed = 0;
    const s = vm.newConnection(root, DEFAULT_PROPS, () => closed++);
    const allowed = k.produce(3, 1, [['orders', [0]]]);
    assert.deepStrictEqual(s.downstream(allowed), allowed);
    assert.strictEqual(s.downstream(k.produce(3, 2, [['other', [0]]])).length, 0, 'bytes passed after the VM failed');
    assert.strictEqual(closed, 1);
    assert.strictEqual(vm.counter('wasm.vm_failures'), 1);
    const later = vm.newConnection(root, DEFAULT_PROPS, () => closed++);
    assert.strictEqual(later.closed, true);
    assert.strictEqual(later.downstream(allowed).length, 0);
    assert.strictEqual(closed, 2);
  });
});
