import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { packageRoot } from '../../src/paths';
import { FIXTURES } from './fixtures';

/** `meshaccel envoy check|render`, run as the real command. */

const ROOT = packageRoot();
const BIN = path.join(ROOT, 'bin', 'meshaccel');

function meshaccel(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tmpFile(name: string, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshaccel-envoy-'));
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  return file;
}

describe('meshaccel envoy check', function () {
  this.timeout(60000);

  it('passes the example bootstraps shipped in envoy/', () => {
    const files = fs
      .readdirSync(path.join(ROOT, 'envoy'))
      .filter((f) => /\.(ya?ml|json)$/.test(f))
      .map((f) => path.join('envoy', f));
    assert.ok(files.length >= 2, `examples found: ${files.join(', ')}`);
    const r = meshaccel('envoy', 'check', ...files);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stderr, /standalone-bootstrap\.yaml: ok \(Bootstrap\)/);
    assert.match(r.stderr, /istio-envoyfilter\.yaml: ok \(.*HTTP_FILTER meshaccel\.rbac\.inbound\.8080/);
  });

  it('reports file:line:col: field.path: message for each violation and exits 1', () => {
    const file = tmpFile(
      'bad.yaml',
      [
        'node: {id: x}',
        'static_resources:',
        '  clusters:',
        '    - name: c',
        '      connect_timeout: 0s',
        '      type: STATIC',
        '      bogus: 1',
        '  listeners:',
        '    - name: l',
        '      address:',
        '        socket_address: {address: 0.0.0.0, port_value: 99999}',
        '',
      ].join('\n'),
    );
    const r = meshaccel('envoy', 'check', file);
    assert.equal(r.status, 1);
    assert.deepEqual(r.stdout.trim().split('\n'), [
      `${file}:5:7: static_resources.clusters[0].connect_timeout: value 0s must be > 0s (gt)`,
      `${file}:7:7: static_resources.clusters[0].bogus: unknown field "bogus" in envoy.config.cluster.v3.Cluster`,
      `${file}:11:44: static_resources.listeners[0].address.socket_address.port_value: value 99999 must be <= 65535 (lte)`,
    ]);
  });

  it('checks JSON, lists of "@type" resources and `resources:` files', () => {
    const list = tmpFile(
      'list.json',
      JSON.stringify(
        [
          { '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster', name: 'a', connect_timeout: '1s' },
          { '@type': 'type.googleapis.com/envoy.config.cluster.v3.Cluster', name: '' },
        ],
        null,
        2,
      ),
    );
    const r = meshaccel('envoy', 'check', list);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /list\.json:\d+:\d+: \[1\]\.name: length 0 must be at least 1 characters \(min_len\)/);
    const wrapped = tmpFile('res.yaml', 'resources:\n  - "@type": type.googleapis.com/envoy.config.cluster.v3.Cluster\n    name: a\n    connect_timeout: 1s\n');
    assert.equal(meshaccel('envoy', 'check', wrapped).status, 0);
  });

  it('render prints checked resources that check passes again', () => {
    const compiled = tmpFile('compiled.json', JSON.stringify(FIXTURES['http-basic']));
    const r = meshaccel('envoy', 'render', compiled, '--mode', 'standalone');
    assert.equal(r.status, 0, r.stderr);
    const out = tmpFile('rendered.json', r.stdout);
    assert.equal(
      JSON.parse(r.stdout).length,
      12,
      'ECDS HTTP RBAC, per direction the network RBAC of each chain and the deny RBAC, and per direction a listener, a route and a cluster (no Kafka resource: no port has Kafka rules)',
    );
    const c = meshaccel('envoy', 'check', out);
    assert.equal(c.status, 0, c.stdout + c.stderr);
  });

  it('usage errors exit 2', () => {
    assert.equal(meshaccel('envoy', 'check').status, 2);
    assert.equal(meshaccel('envoy', 'frobnicate').status, 2);
  });
});
