import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { PolicyEngine } from '../../src/policy/engine';
import { listYamlFiles, loadFiles } from '../../src/policy/loader';
import { ROOT } from './helpers';

/**
 * Golden files: the compiled IR of representative policies, as the Envoy builders receive it.
 * Regenerate with `UPDATE_GOLDEN=1` after an intended change and review the diff.
 */
const GOLDEN_DIR = path.join(ROOT, 'test', 'policy', 'golden');

function compileToJson(inputs: string[]): string {
  const files = inputs.flatMap((p) => (fs.statSync(p).isDirectory() ? listYamlFiles(p) : [p]));
  const loaded = loadFiles(files);
  assert.deepEqual(loaded.diagnostics, []);
  const engine = new PolicyEngine();
  engine.sync(loaded.resources);
  assert.deepEqual(engine.commit().conflicts, []);
  const out = Object.fromEntries([...engine.proxies()].sort(([a], [b]) => (a < b ? -1 : 1)));
  // Paths relative to the repository, so the golden file does not depend on the checkout.
  return (
    JSON.stringify(out, null, 2)
      .split(ROOT + path.sep)
      .join('') + '\n'
  );
}

function golden(name: string, actual: string): void {
  const file = path.join(GOLDEN_DIR, name);
  if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(file, actual);
  assert.equal(actual, fs.readFileSync(file, 'utf8'), `${name} differs; rerun with UPDATE_GOLDEN=1 if intended`);
}

describe('golden compiled policies', () => {
  it('examples/policies + examples/workloads (HTTP allow-list, Kafka produce/consume, CIDR peers)', () => {
    golden('examples.json', compileToJson([path.join(ROOT, 'examples', 'policies'), path.join(ROOT, 'examples', 'workloads')]));
  });

  it('multi-workload proxy: local addresses, all-ports rule on an L7 port, default allow', () => {
    golden('multi-workload.json', compileToJson([path.join(ROOT, 'test', 'policy', 'fixtures', 'multi-workload.yaml')]));
  });
});
