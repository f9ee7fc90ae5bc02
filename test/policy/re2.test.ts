import * as assert from 'node:assert/strict';
import { formatDiagnostic } from '../../src/policy/diagnostics';
import { loadText } from '../../src/policy/loader';
import { re2SyntaxError } from '../../src/policy/re2';
import { policyDoc } from './helpers';

/**
 * re2-wasm's heap is a fixed 16 MB and nothing in it is garbage-collected: a validator that keeps
 * every compiled pattern runs out after some thousands of checks, and from then on calls abort with
 * OOM, which `policy check` and every reload of `serve` would report as "invalid RE2". Ten to twenty
 * thousand checks is what a few hours of reloads over a modest policy set come to.
 */
describe('RE2 validation over a long run', function () {
  this.timeout(20000);

  it('gives the same answers after 20000 checks of a few patterns', () => {
    const cases: [string, string | undefined][] = [
      ['/api/v[0-9]+/.*', undefined],
      ['GET|POST', undefined],
      ['/(?=x)', 'invalid perl operator: (?='],
      ['GET|(', 'missing ): GET|('],
    ];
    for (let i = 0; i < 20000; i++) {
      const [pattern, expected] = cases[i % cases.length];
      assert.equal(re2SyntaxError(pattern), expected, `check ${i} of ${JSON.stringify(pattern)}`);
    }
  });

  it('gives the same answers over more distinct patterns than it can keep', () => {
    // Distinct patterns defeat any cache, so this holds only if each compiled pattern is freed.
    for (let i = 0; i < 14500; i++) assert.equal(re2SyntaxError(`${i}`), undefined, `pattern ${i}`);
    assert.equal(re2SyntaxError('(a)\\1'), 'invalid escape sequence: \\1');
  });

  it('reports the same diagnostics when one policy file is reloaded many times', () => {
    const rules = Array.from({ length: 40 }, (_, i) => `              - path: "/v${i}/.*"\n`).join('') + '              - path: "/(?=x)"\n';
    const text = policyDoc(
      `  endpointSelector:\n    matchLabels:\n      app: api\n  ingress:\n    - toPorts:\n        - ports:\n            - port: 80\n              protocol: TCP\n          rules:\n            http:\n${rules}`,
    );
    const expected = [
      'policy.yaml:57:23: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].rules.http[40].path: invalid RE2 regular expression: invalid perl operator: (?=',
    ];
    for (let i = 0; i < 300; i++) {
      assert.deepEqual(loadText('policy.yaml', text).diagnostics.map(formatDiagnostic), expected, `reload ${i}`);
    }
  });
});
