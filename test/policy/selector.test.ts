import * as assert from 'node:assert/strict';
import { compileSelector } from '../../src/policy/selector';
import { NAMESPACE_LABEL } from '../../src/policy/model';

const labels = (o: Record<string, string>): Map<string, string> => new Map(Object.entries(o));

describe('label selectors', () => {
  it('matchLabels and every matchExpressions operator, ANDed', () => {
    const s = compileSelector({
      matchLabels: { app: 'web' },
      matchExpressions: [
        { key: 'tier', operator: 'In', values: ['a', 'b'] },
        { key: 'track', operator: 'NotIn', values: ['canary'] },
        { key: 'team', operator: 'Exists' },
        { key: 'legacy', operator: 'DoesNotExist' },
      ],
    });
    assert.equal(s.matches(labels({ app: 'web', tier: 'a', team: 'x' })), true);
    assert.equal(s.matches(labels({ app: 'web', tier: 'b', team: 'x', track: 'stable' })), true);
    assert.equal(s.matches(labels({ app: 'web', tier: 'c', team: 'x' })), false, 'In');
    assert.equal(s.matches(labels({ app: 'web', tier: 'a', team: 'x', track: 'canary' })), false, 'NotIn');
    assert.equal(s.matches(labels({ app: 'web', tier: 'a' })), false, 'Exists');
    assert.equal(s.matches(labels({ app: 'web', tier: 'a', team: 'x', legacy: '' })), false, 'DoesNotExist');
    assert.equal(s.matches(labels({ app: 'api', tier: 'a', team: 'x' })), false, 'matchLabels');
  });

  it('a namespaced selector is confined to its namespace unless it names one', () => {
    const local = compileSelector({ matchLabels: { app: 'web' } }, 'shop');
    assert.equal(local.matches(labels({ app: 'web', [NAMESPACE_LABEL]: 'shop' })), true);
    assert.equal(local.matches(labels({ app: 'web', [NAMESPACE_LABEL]: 'ops' })), false);
    const other = compileSelector({ matchLabels: { app: 'web', [NAMESPACE_LABEL]: 'ops' } }, 'shop');
    assert.equal(other.matches(labels({ app: 'web', [NAMESPACE_LABEL]: 'ops' })), true);
    const anyNs = compileSelector({ matchLabels: { app: 'web' }, matchExpressions: [{ key: NAMESPACE_LABEL, operator: 'Exists' }] }, 'shop');
    assert.equal(anyNs.matches(labels({ app: 'web', [NAMESPACE_LABEL]: 'ops' })), true);
    const cluster = compileSelector({ matchLabels: { app: 'web' } });
    assert.equal(cluster.matches(labels({ app: 'web', [NAMESPACE_LABEL]: 'ops' })), true);
  });

  it('equal selectors written differently share one key; `In` with one value is an equality', () => {
    const a = compileSelector({ matchLabels: { b: '2', a: '1' } });
    const b = compileSelector({ matchExpressions: [{ key: 'a', operator: 'In', values: ['1'] }], matchLabels: { b: '2' } });
    assert.equal(a.key, b.key);
    assert.deepEqual(
      b.terms.all.map((t) => t.label),
      ['a=1', 'b=2'],
      'a one-value In is an equality',
    );
    assert.deepEqual(
      compileSelector(
        {
          matchLabels: { app: 'web' },
          matchExpressions: [
            { key: 'a', operator: 'In', values: ['3', '1', '2'] },
            { key: 'b', operator: 'NotIn', values: ['x', 'y'] },
            { key: 'c', operator: 'Exists' },
            { key: 'd', operator: 'DoesNotExist' },
          ],
        },
        'shop',
      ).terms,
      {
        all: [
          { key: 'app', label: 'app=web' },
          { key: NAMESPACE_LABEL, label: `${NAMESPACE_LABEL}=shop` },
        ],
        anyOf: [{ key: 'a', labels: ['a=3', 'a=1', 'a=2'] }],
        noneOf: [
          { key: 'b', label: 'b=x' },
          { key: 'b', label: 'b=y' },
        ],
        present: ['c'],
        absent: ['d'],
      },
      'the terms the selector cache indexes; the namespace label last among the equalities',
    );
    assert.notEqual(compileSelector({ matchLabels: { a: '1' } }, 'x').key, compileSelector({ matchLabels: { a: '1' } }, 'y').key);
  });

  it('the empty selector selects everything (in its namespace)', () => {
    assert.equal(compileSelector({}).matches(labels({})), true);
    assert.equal(compileSelector({}, 'ns').matches(labels({ [NAMESPACE_LABEL]: 'ns' })), true);
    assert.equal(compileSelector({}, 'ns').matches(labels({ [NAMESPACE_LABEL]: 'other' })), false);
  });
});
