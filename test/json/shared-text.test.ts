import * as assert from 'node:assert/strict';
import { contentKey, jsonText, shareText } from '../../src/json/shared-text';

describe('jsonText', () => {
  it('is JSON.stringify, with shared parts spliced in', () => {
    const shared = shareText([{ direct_remote_ip: { address_prefix: '10.0.0.1', prefix_len: 32 } }, 'a"b', 3.5, null]);
    const docs: unknown[] = [
      { a: 1, b: [true, false, null, 'x\n'], c: { d: undefined, e: -0, f: 1e21 }, g: [undefined, () => 1] },
      [],
      {},
      'plain',
      { policies: { 'p#0': { principals: shared, permissions: [{ any: true }] } }, again: shared },
      [{ '': { ' ': [[[]]] } }, NaN, Infinity],
    ];
    for (const d of docs) assert.equal(jsonText(d), JSON.stringify(d));
  });

  it('a shared part is frozen, so its kept text cannot go stale', () => {
    const shared = shareText([1, 2]);
    assert.ok(Object.isFrozen(shared));
    assert.throws(() => (shared as number[]).push(3));
    assert.equal(jsonText({ x: shared }), '{"x":[1,2]}');
  });

  it('contentKey tells contents apart as their text does, writing shared parts as digests', () => {
    const big = shareText(Array.from({ length: 500 }, (_, i) => `10.0.${i >> 8}.${i & 255}/32`));
    const same = shareText([...big]);
    const other = shareText([...big.slice(1), '10.9.9.9/32']);
    assert.equal(contentKey({ p: big, n: 1 }), contentKey({ p: same, n: 1 }), 'equal contents, other objects');
    assert.notEqual(contentKey({ p: big, n: 1 }), contentKey({ p: other, n: 1 }), 'one address differs');
    assert.notEqual(contentKey({ p: big, n: 1 }), contentKey({ p: big, n: 2 }), 'an unshared field differs');
    assert.ok(contentKey({ p: big }).length < 100, 'the shared part is not written out');
    assert.equal(contentKey({ a: [1, 'x'] }), JSON.stringify({ a: [1, 'x'] }), 'without shared parts it is the JSON text');
  });
});
