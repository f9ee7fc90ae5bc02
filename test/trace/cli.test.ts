import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as path from 'path';
import { ROOT, tmpDir } from '../policy/helpers';

function meshaccel(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'meshaccel'), ...args], { encoding: 'utf8', cwd: ROOT });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

const EXAMPLES = ['--policies', 'examples/policies', '--workloads', 'examples/workloads'];

describe('meshaccel policy trace / policy test (CLI)', () => {
  it('trace names the rule that allowed a request, with its file and line', () => {
    const r = meshaccel(
      'policy',
      'trace',
      ...EXAMPLES,
      '--from',
      'shop/frontend-0',
      '--to',
      'shop/api-0',
      '--port',
      '8080',
      '--method',
      'GET',
      '--path',
      '/v1/products',
      '--host',
      'api.shop.svc',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^ALLOWED: ingress of sidecar~10\.1\.0\.10~api-0\.shop~shop\.svc\.cluster\.local: allowed by shop\/api-allowlist \(examples\/policies\/http-api-allowlist\.yaml:14\) spec\.ingress\[0\] \(L7, meshaccel\.rbac\.inbound\.8080\)$/m,
    );
  });

  it('trace --mode grpc judges the XdsServer Listener as a grpc-js server sees the client, and says so (--grpc-servers other: as written)', () => {
    const grpc = (...extra: string[]): { status: number | null; stdout: string; stderr: string } =>
      meshaccel(
        'policy',
        'trace',
        '--mode',
        'grpc',
        '--policies',
        'examples/policies/http-api-allowlist.yaml',
        '--workloads',
        'examples/workloads',
        '--from',
        'shop/frontend-0',
        '--to',
        'shop/api-0',
        '--port',
        '8080',
        '--path',
        '/v1/orders',
        '--header',
        'X-Request-Id: 1',
        '--header',
        'Content-Type: application/json',
        ...extra,
      );
    const js = grpc();
    assert.equal(js.status, 0, js.stderr);
    assert.match(js.stdout, /^  note: an XdsServer of @grpc\/grpc-js-xds sees this IPv4 client as ::ffff:10\.1\.0\.20, which no IPv4 range matches/m);
    assert.match(js.stdout, /^DENIED: ingress of .*: default deny \(no rule of envoy\.filters\.http\.rbac matches, L7\) \(see the note\)$/m);
    const mtls = grpc('--from-principal', 'spiffe://cluster.local/ns/shop/sa/frontend');
    assert.match(mtls.stdout, /^ALLOWED: .* allowed by shop\/api-allowlist \(examples\/policies\/http-api-allowlist\.yaml:14\) spec\.ingress\[0\]/m);
    const other = grpc('--grpc-servers', 'other');
    assert.match(other.stdout, /^ALLOWED: .* allowed by shop\/api-allowlist/m);
    assert.doesNotMatch(other.stdout, /note:/);
  });

  it('trace says when default deny decided, at which layer', () => {
    const r = meshaccel('policy', 'trace', ...EXAMPLES, '--from', 'shop/frontend-0', '--to', 'shop/api-0', '--port', '22');
    assert.equal(r.status, 0, r.stderr);
    assert.match(
      r.stdout,
      /^DENIED: ingress of sidecar~10\.1\.0\.10~api-0\.shop~shop\.svc\.cluster\.local: default deny \(no rule of meshaccel\.l4\.inbound\.default matches, L4\)$/m,
    );
  });

  it('trace of a source given by address and labels', () => {
    const r = meshaccel(
      'policy',
      'trace',
      ...EXAMPLES,
      '--from-ip',
      '10.1.0.77',
      '--from-labels',
      'app=billing,tier=experimental',
      '--from-namespace',
      'shop',
      '--to',
      'shop/kafka-0',
      '--port',
      '9092',
    );
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^DENIED: /m);
  });

  it('trace on a Kafka port judges the connection and says the Kafka filter judges the requests', () => {
    const r = meshaccel('policy', 'trace', ...EXAMPLES, '--from', 'shop/orders-0', '--to', 'shop/kafka-0', '--port', '9092');
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^ingress at .*, chain inbound\|9092\|kafka:$/m);
    assert.match(r.stdout, /^  L7: the port runs the Kafka filter, which judges each request/m);
    assert.match(
      r.stdout,
      /^ALLOWED: .*allowed by shop\/kafka-orders \(examples\/policies\/kafka-produce-consume\.yaml:\d+\) spec\.ingress\[0\] \(L4, meshaccel\.l4\.inbound\.9092\); Kafka requests not judged \(no --kafka request given\)$/m,
    );
    assert.equal(meshaccel('policy', 'test', 'examples/policies/kafka-produce-consume.test.yaml').status, 0);
  });

  it('test exits 0 when every case passes and 1 with a diff per mismatching case', () => {
    assert.equal(meshaccel('policy', 'test', 'examples/policies/http-api-allowlist.test.yaml').status, 0);
    const dir = tmpDir('ptest');
    const file = path.join(dir, 'wrong.test.yaml');
    fs.writeFileSync(
      file,
      `policies: [${path.join(ROOT, 'examples/policies')}]\nworkloads: [${path.join(ROOT, 'examples/workloads')}]\ncases:\n  - name: ssh to the api\n    from: shop/frontend-0\n    to: shop/api-0\n    port: 22\n    expect: ALLOWED\n  - name: products\n    from: shop/frontend-0\n    to: shop/api-0\n    port: 8080\n    request: {method: GET, path: /v1/products, host: api.shop.svc}\n    expect: ALLOWED\n`,
    );
    const r = meshaccel('policy', 'test', file);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /wrong\.test\.yaml: FAIL ssh to the api\n  - expected ALLOWED\n  \+ got      DENIED\n/);
    assert.doesNotMatch(r.stderr, /FAIL products/);
    assert.match(r.stderr, /policy test: 1 of 2 cases passed/);
  });

  it('a case on an HTTP port without a request fails: it would say nothing about L7', () => {
    const dir = tmpDir('ptest');
    const file = path.join(dir, 'l7.test.yaml');
    fs.writeFileSync(
      file,
      `policies: [${path.join(ROOT, 'examples/policies')}]\nworkloads: [${path.join(ROOT, 'examples/workloads')}]\ncases:\n  - name: no request\n    from: shop/frontend-0\n    to: shop/api-0\n    port: 8080\n    expect: ALLOWED\n`,
    );
    const r = meshaccel('policy', 'test', file);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /FAIL no request[\s\S]*port 8080 parses HTTP: give the case a request/);
  });

  it('usage errors exit 2', () => {
    assert.equal(meshaccel('policy', 'trace', ...EXAMPLES, '--from', 'shop/frontend-0', '--to', 'shop/api-0').status, 2);
    assert.equal(meshaccel('policy', 'test').status, 2);
  });
});
