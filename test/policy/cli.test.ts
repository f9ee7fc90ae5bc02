import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, policyDoc, tmpDir } from './helpers';

/** The real binary, as a user runs it: output format and exit status. */
function meshaccel(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'meshaccel'), ...args], { encoding: 'utf8', cwd: ROOT });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('meshaccel policy (CLI)', () => {
  let dir: string;
  beforeEach(() => (dir = tmpDir('cli')));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('check passes the examples with status 0', () => {
    const r = meshaccel('policy', 'check', 'examples/policies', 'examples/workloads');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^policy check: ok \(5 files, 10 valid resources\)/);
  });

  it('check prints one compiler-style line per error across files and exits 1', () => {
    const good = path.join(dir, 'good.yaml');
    const bad = path.join(dir, 'bad.yaml');
    fs.writeFileSync(good, policyDoc('  endpointSelector: {}\n'));
    fs.writeFileSync(
      bad,
      `${policyDoc('  endpointSelector: {}\n', 'other')}---\n${policyDoc('  endpointSelector: {}\n  ingress:\n    - toPorts:\n        - ports: [{port: 80}]\n          rules:\n            http:\n              - path: "a(?!b)"\n')}`,
    );
    const r = meshaccel('policy', 'check', good, bad);
    assert.equal(r.status, 1);
    const lines = r.stderr.trim().split('\n');
    assert.equal(
      lines[0],
      `${bad}:21:23: document 2 (L7Policy default/api): spec.ingress[0].toPorts[0].rules.http[0].path: invalid RE2 regular expression: invalid perl operator: (?!`,
    );
    assert.equal(lines[1], 'policy check: 1 error (2 files, 2 valid resources)');
  });

  it('check reports a name defined twice across files, pointing at the second', () => {
    const a = path.join(dir, 'a.yaml');
    const b = path.join(dir, 'b.yaml');
    fs.writeFileSync(a, policyDoc('  endpointSelector: {}\n'));
    fs.writeFileSync(b, `# comment\n${policyDoc('  endpointSelector: {}\n')}`);
    const r = meshaccel('policy', 'check', dir);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      new RegExp(
        `^${b.replace(/[.]/g, '\\.')}:5:1: document 1 \\(L7Policy default/api\\): metadata\\.name: L7Policy default/api is already defined at ${a.replace(/[.]/g, '\\.')}:1`,
      ),
    );
  });

  it('check reports HTTP and Kafka on one port of one proxy (needs the workloads)', () => {
    fs.writeFileSync(
      path.join(dir, 'w.yaml'),
      'apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata: {name: k, labels: {app: k}}\nspec:\n  addresses: [10.0.0.1]\n  proxy: {nodeId: k}\n',
    );
    const rule = (name: string, l7: string): string =>
      policyDoc(
        `  endpointSelector: {matchLabels: {app: k}}\n  ingress:\n    - toPorts:\n        - ports: [{port: 9092, protocol: TCP}]\n          rules: {${l7}}\n`,
        name,
      );
    fs.writeFileSync(path.join(dir, 'p.yaml'), `${rule('h', 'http: [{}]')}---\n${rule('k', 'kafka: [{role: produce}]')}`);
    const r = meshaccel('policy', 'check', dir);
    assert.equal(r.status, 1);
    assert.match(
      r.stderr,
      /p\.yaml:\d+:1: document 2 \(L7Policy default\/k\): port 9092\/TCP of proxy k gets (Kafka|HTTP) rules here but (HTTP|Kafka) rules from default\/\w .*; a port has one L7 protocol/,
    );
  });

  it('check --mode grpc refuses Kafka rules with file, line and field (istio accepts them)', () => {
    fs.writeFileSync(
      path.join(dir, 'p.yaml'),
      policyDoc(
        '  endpointSelector: {matchLabels: {app: k}}\n  ingress:\n    - toPorts:\n        - ports: [{port: 9092, protocol: TCP}]\n          rules: {kafka: [{role: produce}]}\n',
        'k',
      ),
    );
    assert.equal(meshaccel('policy', 'check', '--mode', 'istio', dir).status, 0);
    for (const mode of ['grpc']) {
      const r = meshaccel('policy', 'check', '--mode', mode, dir);
      assert.equal(r.status, 1, mode);
      assert.match(
        r.stderr,
        new RegExp(
          `p\\.yaml:\\d+:\\d+: document 1 \\(L7Policy default/k\\): spec\\.ingress\\[0\\]\\.toPorts\\[0\\]\\.rules\\.kafka: ${mode} mode (does not|cannot) enforce Kafka rules`,
        ),
        mode,
      );
    }
  });

  it('usage errors exit 2', () => {
    assert.equal(meshaccel('policy', 'check').status, 2);
    assert.equal(meshaccel('policy', 'check', '--bogus', 'x').status, 2);
    assert.equal(meshaccel('policy', 'frobnicate').status, 2);
  });

  it("compile prints the per-proxy IR, or one node's policy", () => {
    const all = meshaccel('policy', 'compile', '--policies', 'examples/policies', '--workloads', 'examples/workloads');
    assert.equal(all.status, 0, all.stderr);
    const parsed = JSON.parse(all.stdout) as { proxies: Record<string, { workloads: string[] }> };
    assert.deepEqual(parsed.proxies['metadata:{"NODE_NAME":"node-1"}'].workloads, ['shop/kafka-0', 'shop/orders-0']);
    const one = meshaccel(
      'policy',
      'compile',
      '--policies',
      'examples/policies',
      '--workloads',
      'examples/workloads',
      '--node',
      'sidecar~10.1.0.10~api-0.shop~shop.svc.cluster.local',
    );
    assert.equal(one.status, 0, one.stderr);
    assert.deepEqual((JSON.parse(one.stdout) as { workloads: string[] }).workloads, ['shop/api-0']);
  });
});
