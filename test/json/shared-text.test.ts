import * as assert from 'node:assert/strict';
import { jsonText, shareText } from '../../src/json/shared-text';

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
});
