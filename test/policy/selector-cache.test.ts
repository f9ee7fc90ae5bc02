import * as assert from 'node:assert/strict';
import { createIdentity, IdentityAllocator, releaseIdentityLabels, type Identity } from '../../src/policy/identities';
import { LABEL_IDS } from '../../src/policy/label-ids';
import type { LabelSelectorSpec } from '../../src/policy/model';
import { compileSelector, type Selector } from '../../src/policy/selector';
import { SelectorCache } from '../../src/policy/selector-cache';
import { prng } from '../helpers/prng';

const KEYS = ['app', 'tier', 'zone', 'v', 'pod'];
/** `pod` takes many values, so its labels are often held by no one and their ids reused for others. */
const valuesOf = (key: string): number => (key === 'pod' ? 40 : 4);

function randomIdentity(id: number, rand: (n: number) => number): Identity {
  const labels = new Map<string, string>();
  for (const k of KEYS) if (rand(4) > 0) labels.set(k, `${k}${rand(valuesOf(k))}`);
  return createIdentity(id, labels);
}

function randomSelector(rand: (n: number) => number): Selector {
  const spec: LabelSelectorSpec = { matchLabels: {}, matchExpressions: [] };
  const n = rand(3);
  for (let i = 0; i < n; i++) {
    const key = KEYS[rand(KEYS.length)];
    const values = Array.from({ length: 1 + rand(3) }, () => `${key}${rand(valuesOf(key))}`);
    switch (rand(5)) {
      case 0:
        (spec.matchLabels as Record<string, string>)[key] = values[0];
        break;
      case 1:
        spec.matchExpressions?.push({ key, operator: 'In', values });
        break;
      case 2:
        spec.matchExpressions?.push({ key, operator: 'NotIn', values });
        break;
      case 3:
        spec.matchExpressions?.push({ key, operator: 'Exists' });
        break;
      default:
        spec.matchExpressions?.push({ key, operator: 'DoesNotExist' });
    }
  }
  return compileSelector(spec);
}

/** Selections by selector key, and selectors by identity, of a cache. */
function stateOf(cache: SelectorCache, ids: Iterable<number>): { selections: Map<string, number[]>; selecting: Map<number, string[]> } {
  const selections = new Map([...cache.entries()].map((cs) => [cs.selector.key, [...cs.selected].sort((a, b) => a - b)]));
  const selecting = new Map(
    [...ids].map((id) => [
      id,
      cache
        .selecting(id)
        .map((cs) => cs.selector.key)
        .sort(),
    ]),
  );
  return { selections, selecting };
}

describe('selector cache: incremental updates against a from-scratch build', () => {
  it('random identity and selector churn leaves every selection equal to a new cache and to testing every identity', () => {
    const rand = prng(11);
    const cache = new SelectorCache();
    const identities = new Map<number, Identity>();
    /** Selectors held, with how many times each was acquired. */
    const held: Selector[] = [];
    let nextId = 256;
    let checked = 0;
    let selectedSeen = 0;
    /** Label ids seen with another label before: the table freed and reused them under the cache. */
    let reused = 0;
    const seenAs = new Map<number, string | undefined>();
    for (let step = 0; step < 1500; step++) {
      const op = rand(10);
      if (op < 4) {
        // Mostly new ids, sometimes an id below others (ids need not come in order).
        const id = rand(5) === 0 ? 100 + rand(150) : nextId++;
        if (identities.has(id)) continue;
        const identity = randomIdentity(id, rand);
        for (const labelId of identity.labelIds) {
          const label = LABEL_IDS.label(labelId);
          if (seenAs.has(labelId) && seenAs.get(labelId) !== label) reused++;
          seenAs.set(labelId, label);
        }
        const hits = cache.addIdentity(identity);
        identities.set(id, identity);
        assert.deepEqual(
          hits.map((cs) => cs.selector.key).sort(),
          [...new Set(held.filter((s) => s.matches(identity.labels)).map((s) => s.key))].sort(),
          `step ${step}: selectors reported for the added identity`,
        );
      } else if (op < 6 && identities.size > 0) {
        const ids = [...identities.keys()];
        const identity = identities.get(ids[rand(ids.length)]) as Identity;
        const expected = [...new Set(held.filter((s) => s.matches(identity.labels)).map((s) => s.key))].sort();
        assert.deepEqual(
          cache
            .removeIdentity(identity)
            .map((cs) => cs.selector.key)
            .sort(),
          expected,
          `step ${step}: selectors reported for the removed identity`,
        );
        identities.delete(identity.id);
        releaseIdentityLabels(identity);
      } else if (op < 8) {
        const s = randomSelector(rand);
        cache.acquire(s);
        held.push(s);
      } else if (held.length > 0) {
        const i = rand(held.length);
        const s = held[i];
        held.splice(i, 1);
        const cs = [...cache.entries()].find((c) => c.selector.key === s.key);
        assert.ok(cs, `step ${step}: held selector ${s.key} is cached`);
        cache.release(cs);
      }
      if (step % 5 !== 0) continue;
      checked++;
      const fresh = new SelectorCache();
      for (const identity of identities.values()) fresh.addIdentity(identity);
      for (const s of held) fresh.acquire(s);
      const got = stateOf(cache, identities.keys());
      assert.deepEqual(got, stateOf(fresh, identities.keys()), `step ${step}: incremental cache against a new one`);
      const naive = new Map(
        held.map((s) => [
          s.key,
          [...identities.values()]
            .filter((id) => s.matches(id.labels))
            .map((id) => id.id)
            .sort((a, b) => a - b),
        ]),
      );
      assert.deepEqual(got.selections, naive, `step ${step}: incremental cache against testing every identity`);
      selectedSeen += [...got.selections.values()].reduce((n, ids) => n + ids.length, 0);
      // Emptied, so the label ids it holds are released and other labels may reuse them.
      for (const identity of identities.values()) fresh.removeIdentity(identity);
      for (const cs of [...fresh.entries()]) while (cs.refs > 0) fresh.release(cs);
    }
    assert.ok(checked >= 250 && selectedSeen > 1000, `the churn exercised little: ${checked} checks, ${selectedSeen} selections`);
    // Everything let go: the label table is back where it was.
    for (const identity of identities.values()) {
      cache.removeIdentity(identity);
      releaseIdentityLabels(identity);
    }
    for (const cs of [...cache.entries()]) while (cs.refs > 0) cache.release(cs);
    assert.equal(cache.identityCount + cache.selectorCount, 0);
    assert.ok(reused > 10, `label ids were reused only ${reused} times`);
  });
});

describe('labels holding separators', () => {
  it('label sets and selectors that would print alike stay apart', () => {
    const allocator = new IdentityAllocator();
    const one = allocator.acquire(new Map([['a', 'x,b=y']])).identity;
    const two = allocator.acquire(
      new Map([
        ['a', 'x'],
        ['b', 'y'],
      ]),
    ).identity;
    const three = allocator.acquire(new Map([['a=b', 'c']])).identity;
    const four = allocator.acquire(new Map([['a', 'b=c']])).identity;
    assert.equal(new Set([one.id, two.id, three.id, four.id]).size, 4, 'four label sets, four identities');
    const cache = new SelectorCache();
    for (const identity of [one, two, three, four]) cache.addIdentity(identity);
    const selected = (spec: LabelSelectorSpec): number[] => [...cache.acquire(compileSelector(spec)).selected];
    assert.deepEqual(selected({ matchLabels: { 'a=b': 'c' } }), [three.id]);
    assert.deepEqual(selected({ matchLabels: { a: 'b=c' } }), [four.id]);
    assert.deepEqual(selected({ matchLabels: { a: 'x', b: 'y' } }), [two.id]);
    assert.deepEqual(selected({ matchExpressions: [{ key: 'a', operator: 'In', values: ['x,b=y', 'q'] }] }), [one.id]);
    assert.equal(cache.selectorCount, 4, 'no two of these selectors share an entry');
  });
});

describe('label ids', () => {
  it('are freed when the last identity lets go, and when a compiled selector is garbage', async function () {
    const gc = (globalThis as { gc?: () => void }).gc;
    if (!gc) this.skip();
    const before = LABEL_IDS.size;
    const identity = createIdentity(1, new Map([['only-here', 'x']]));
    const cache = new SelectorCache();
    cache.addIdentity(identity);
    assert.equal(LABEL_IDS.size, before + 1);
    cache.removeIdentity(identity);
    releaseIdentityLabels(identity);
    assert.equal(LABEL_IDS.size, before, 'the identity and the cache let go');
    for (let i = 0; i < 50; i++) compileSelector({ matchLabels: { 'only-here': `y${i}` } });
    assert.equal(LABEL_IDS.size, before + 50);
    for (let i = 0; i < 50 && LABEL_IDS.size > before + 1; i++) {
      gc?.();
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // The engine may keep the last object it allocated reachable for a while; the rest are gone.
    assert.ok(LABEL_IDS.size <= before + 1, `${LABEL_IDS.size - before} of 50 dropped selectors' labels still held`);
  });
});
