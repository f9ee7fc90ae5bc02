import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { buildProxyResourceJson, UnenforceableError } from '../../src/envoy/proxy-resources';
import Ajv from 'ajv';
import { parse as parseYaml } from 'yaml';
import { istioEnvoyFilterFor } from '../../src/envoy/proxy-resources';
import { ROOT, tmpDir } from '../policy/helpers';
import { FIXTURES } from './fixtures';

function meshaccel(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'meshaccel'), ...args], { encoding: 'utf8', cwd: ROOT });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('istio mode: the EnvoyFilter is generated from the ports the builder enforces', () => {
  it('envoy render --mode istio --envoyfilter patches each HTTP port, fails closed without warming, and passes envoy check', () => {
    const dir = tmpDir('envoyfilter');
    const compiled = path.join(dir, 'compiled.json');
    fs.writeFileSync(compiled, JSON.stringify(FIXTURES['http-basic']));
    const r = meshaccel(
      'envoy',
      'render',
      compiled,
      '--mode',
      'istio',
      '--envoyfilter',
      '--namespace',
      'shop',
      '--workload-labels',
      'app=web',
      '--xds-address',
      'meshaccel.example:18000',
    );
    assert.equal(r.status, 0, r.stderr);
    const filter = JSON.parse(r.stdout);
    assert.equal(filter.kind, 'EnvoyFilter');
    assert.deepEqual(filter.spec.workloadSelector, { labels: { app: 'web' } });
    const http = filter.spec.configPatches.filter((p: any) => p.applyTo === 'HTTP_FILTER');
    assert.deepEqual(
      http.map((p: any) => [p.match.listener.portNumber, p.patch.value.name]),
      [[8080, 'meshaccel.rbac.inbound.8080']],
      'the one HTTP port, not the L4 port 9090',
    );
    const cd = http[0].patch.value.config_discovery;
    assert.equal(cd.apply_default_config_without_warming, true);
    assert.equal(cd.config_source.initial_fetch_timeout, '5s');
    assert.deepEqual(cd.default_config.rules, { action: 'ALLOW', policies: {} });
    const file = path.join(dir, 'envoyfilter.json');
    fs.writeFileSync(file, r.stdout);
    const check = meshaccel('envoy', 'check', file);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(check.status, 0, check.stdout + check.stderr);
  });

  it("the generated EnvoyFilter (and the hand-written example) pass Istio's own EnvoyFilter CRD schema (vendored from istio/api)", () => {
    const crd = parseYaml(fs.readFileSync(path.join(ROOT, 'test', 'envoy', 'vendor', 'istio-envoyfilter-crd.yaml'), 'utf8')) as any;
    const version = crd.spec.versions.find((v: any) => v.name === 'v1alpha3');
    // strict:false: the schema carries x-kubernetes-* extensions (CEL rules are not evaluated here).
    const validate = new Ajv({ allErrors: true, strict: false }).compile(version.schema.openAPIV3Schema);
    const generated = istioEnvoyFilterFor(FIXTURES['http-basic'], { workloadLabels: { app: 'web' } });
    assert.ok(validate(generated), JSON.stringify(validate.errors));
    assert.ok(validate(parseYaml(fs.readFileSync(path.join(ROOT, 'envoy', 'istio-envoyfilter.yaml'), 'utf8'))), JSON.stringify(validate.errors));
    assert.equal(validate({ ...generated, spec: { configPatches: [{ applyTo: 'HTTP_FILTERS' }] } }), false, 'the schema is not vacuous');
  });

  it('a policy with HTTP rules on a port the EnvoyFilter does not cover is refused, naming the port', () => {
    assert.throws(
      () => buildProxyResourceJson(FIXTURES['http-basic'], { mode: 'istio', redirect: DEFAULT_REDIRECT_CONFIG, servedPorts: [7070] }),
      (e: unknown) => e instanceof UnenforceableError && /port 8080 has HTTP rules but the EnvoyFilter covers only port 7070 \(regenerate it/.test(e.message),
    );
  });
});
