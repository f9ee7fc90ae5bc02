import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { packageRoot } from '../../src/paths';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { buildProxyResourceJson, encodeGenerated, type EnvoyMode } from '../../src/envoy/proxy-resources';
import { FIXTURES } from './fixtures';

/**
 * Golden files: the exact Envoy JSON each representative policy compiles to, per mode.
 * Regenerate with UPDATE_GOLDEN=1 after an intended change and review the diff.
 */

const GOLDEN_DIR = path.join(packageRoot(), 'test', 'envoy', 'golden');
const CASES: Array<[string, EnvoyMode]> = [
  ['http-basic', 'standalone'],
  ['http-basic', 'istio'],
  ['istio-principals', 'istio'],
  ['grpc-methods', 'grpc'],
  ['egress-and-deny', 'standalone'],
  ['kafka-broker', 'standalone'],
];

describe('golden Envoy resources for representative policies', () => {
  for (const [fixture, mode] of CASES) {
    it(`${fixture} (${mode})`, () => {
      const build = buildProxyResourceJson(FIXTURES[fixture], { mode, redirect: DEFAULT_REDIRECT_CONFIG });
      // Everything in a golden file is servable: it passed the schema check.
      encodeGenerated(build.resources);
      // The Kafka filter module's default path is in the checkout: golden files name it relative to the repository.
      const actual =
        JSON.stringify({ warnings: build.warnings, resources: build.resources.map((r) => ({ '@type': r.typeUrl, ...r.json })) }, null, 2)
          .split(packageRoot() + path.sep)
          .join('') + '\n';
      const file = path.join(GOLDEN_DIR, `${fixture}.${mode}.json`);
      if (process.env.UPDATE_GOLDEN === '1') fs.writeFileSync(file, actual);
      assert.ok(fs.existsSync(file), `${file} missing; run with UPDATE_GOLDEN=1`);
      assert.equal(actual, fs.readFileSync(file, 'utf8'), `${path.basename(file)} differs; if intended, regenerate with UPDATE_GOLDEN=1`);
    });
  }
});
