import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { parse as parseYaml } from 'yaml';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { listYamlFiles } from '../../src/policy/loader';
import { runPolicyTestFile, type PolicyTestCase } from '../../src/trace/policy-tests';
import { ROOT } from '../policy/helpers';

/**
 * Cilium's semantics end to end, case by case: every verdict comes from gRPC's RBAC engine
 * over the decoded resources standalone mode would serve (policy trace), not from the policy.
 * The cases are in fixtures/world/world.test.yaml, so `meshaccel policy test` runs them too.
 */

const WORLD = path.join(ROOT, 'test', 'trace', 'fixtures', 'world', 'world.test.yaml');

describe('policy trace: the table of Cilium semantics (standalone, gRPC RBAC engine over served resources)', () => {
  const cases = (parseYaml(fs.readFileSync(WORLD, 'utf8')) as { cases: PolicyTestCase[] }).cases;
  const results = runPolicyTestFile(WORLD, DEFAULT_REDIRECT_CONFIG);

  it('has at least 60 cases, each with a verdict', () => {
    assert.ok(cases.length >= 60, `${cases.length} cases`);
    assert.equal(results.length, cases.length);
  });

  results.forEach((r, i) => {
    it(`${cases[i].expect}: ${r.name}`, () => {
      assert.equal(r.actual, r.expected, r.detail);
    });
  });
});

describe('examples/policies/*.test.yaml', () => {
  const files = fs.readdirSync(path.join(ROOT, 'examples', 'policies')).filter((f) => f.endsWith('.test.yaml'));

  it('ship one test file per example policy file, which the policy loader skips', () => {
    const policies = listYamlFiles(path.join(ROOT, 'examples', 'policies')).map((f) => path.basename(f, '.yaml'));
    assert.deepEqual(files.map((f) => path.basename(f, '.test.yaml')).sort(), [...policies].sort());
  });

  for (const f of files) {
    it(f, () => {
      const results = runPolicyTestFile(path.join(ROOT, 'examples', 'policies', f), DEFAULT_REDIRECT_CONFIG);
      assert.ok(results.length > 0);
      const failed = results.filter((r) => !r.passed);
      assert.deepEqual(
        failed.map((r) => `${r.name}: expected ${r.expected}, got ${r.actual}\n${r.detail}`),
        [],
      );
    });
  }
});
