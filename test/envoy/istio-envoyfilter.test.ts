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
import { lookupType } from '../../src/envoy/protos';
import { TypeUrl } from '../../src/resource/type-urls';
import { rawClient, sotwStream, testNode } from '../helpers/raw-xds-client';
import { startControlServer } from '../../src/server/control-server';

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
    const network = filter.spec.configPatches
      .filter((p: any) => p.applyTo === 'NETWORK_FILTER')
      .map((p: any) => [
        p.match.listener.name ?? '',
        p.match.listener.portNumber ?? '',
        p.match.listener.filterChain.name ?? '',
        p.match.listener.filterChain.filter.name,
        p.patch.operation,
        p.patch.value.name,
      ]);
    const HCM = 'envoy.filters.network.http_connection_manager';
    const TCP = 'envoy.filters.network.tcp_proxy';
    assert.deepEqual(network, [
      // every inbound chain, whatever its port: the deny rules, then every port's allows
      ['', '', '', HCM, 'INSERT_BEFORE', 'meshaccel.l4deny.inbound'],
      ['', '', '', HCM, 'INSERT_BEFORE', 'meshaccel.l4.inbound.all'],
      ['', '', '', TCP, 'INSERT_BEFORE', 'meshaccel.l4deny.inbound'],
      ['', '', '', TCP, 'INSERT_BEFORE', 'meshaccel.l4.inbound.all'],
      // Istio's passthrough chains (ports no Service declares) allow no L7 port
      ['virtualInbound', '', 'virtualInbound', TCP, 'INSERT_BEFORE', 'meshaccel.l4.inbound.default'],
      ['virtualInbound', '', 'virtualInbound-catchall-http', HCM, 'INSERT_BEFORE', 'meshaccel.l4.inbound.default'],
      // the HTTP port's TCP chains do not run the HTTP RBAC: they allow it no more than a passthrough chain
      ['', 8080, '', TCP, 'INSERT_BEFORE', 'meshaccel.l4.inbound.default'],
    ]);
    for (const p of filter.spec.configPatches.filter((x: any) => x.applyTo === 'NETWORK_FILTER')) {
      const d = p.patch.value.config_discovery;
      assert.equal(d.apply_default_config_without_warming, true, p.patch.value.name);
      assert.equal(d.config_source.initial_fetch_timeout, '5s');
      assert.deepEqual(d.default_config.rules, { action: 'ALLOW', policies: {} }, 'deny-all default');
    }
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
    const kafka = istioEnvoyFilterFor({ ...FIXTURES['kafka-broker'], egress: [] }, { workloadLabels: { app: 'kafka' } });
    assert.ok(validate(kafka), JSON.stringify(validate.errors));
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

describe('istio mode: Kafka through the generated EnvoyFilter, served over ECDS', function () {
  this.timeout(60000);

  it('inserts the Kafka filter before tcp_proxy on the Kafka port, after the network RBAC, and the EnvoyFilter passes envoy check', () => {
    const dir = tmpDir('envoyfilter-kafka');
    const compiled = path.join(dir, 'compiled.json');
    fs.writeFileSync(compiled, JSON.stringify({ ...FIXTURES['kafka-broker'], egress: [] }));
    const r = meshaccel('envoy', 'render', compiled, '--mode', 'istio', '--envoyfilter', '--kafka-filter', '/var/lib/meshaccel/kafka-filter.wasm');
    assert.equal(r.status, 0, r.stderr);
    const filter = JSON.parse(r.stdout);
    const patches = filter.spec.configPatches.filter((p: any) => p.applyTo === 'NETWORK_FILTER');
    const names = patches.map((p: any) => p.patch.value.name);
    const kafka = names.indexOf('meshaccel.kafka.inbound.9092');
    assert.ok(kafka > names.lastIndexOf('meshaccel.l4.inbound.all'), 'after the network RBAC (patches insert in order before tcp_proxy)');
    const p = patches[kafka];
    assert.deepEqual(p.match.listener, { portNumber: 9092, filterChain: { filter: { name: 'envoy.filters.network.tcp_proxy' } } });
    const d = p.patch.value.config_discovery;
    assert.equal(d.apply_default_config_without_warming, true);
    assert.equal(d.config_source.api_config_source.grpc_services[0].envoy_grpc.cluster_name, 'meshaccel-xds');
    assert.equal(d.default_config.config.vm_config.code.local.filename, '/var/lib/meshaccel/kafka-filter.wasm');
    assert.deepEqual(
      patches.filter((x: any) => x.match.listener.portNumber === 9092).map((x: any) => [x.match.listener.filterChain.filter.name, x.patch.value.name]),
      [
        ['envoy.filters.network.tcp_proxy', 'meshaccel.kafka.inbound.9092'],
        ['envoy.filters.network.http_connection_manager', 'meshaccel.l4.inbound.default'],
      ],
      "the Kafka port's HTTP chains do not run the Kafka filter: they allow it no more than a passthrough chain",
    );
    const file = path.join(dir, 'envoyfilter.json');
    fs.writeFileSync(file, r.stdout);
    const check = meshaccel('envoy', 'check', file);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(check.status, 0, check.stdout + check.stderr);
    assert.match(check.stderr, /NETWORK_FILTER meshaccel\.kafka\.inbound\.9092/);
  });

  it('policy check --mode istio --served-ports refuses L7 rules on a port the deployed EnvoyFilter does not cover, at file:line:field', () => {
    const dir = tmpDir('istio-uncovered');
    const file = path.join(dir, 'policy.yaml');
    fs.writeFileSync(
      file,
      [
        'apiVersion: meshaccel.io/v1alpha1',
        'kind: L7Policy',
        'metadata: {name: api, namespace: shop}',
        'spec:',
        '  endpointSelector: {matchLabels: {app: api}}',
        '  ingress:',
        '    - toPorts:',
        '        - ports: [{port: 8080, protocol: TCP}]',
        '          rules: {http: [{method: GET}]}',
        '        - ports:',
        '            - port: 9090',
        '              protocol: TCP',
        '          rules: {http: [{method: GET}]}',
        '        - ports: [{port: 5432, protocol: TCP}]',
        '',
      ].join('\n'),
    );
    const covered = meshaccel('policy', 'check', '--mode', 'istio', '--served-ports', '8080', '--served-ports', '9090', file);
    assert.equal(covered.status, 0, covered.stdout + covered.stderr);
    const r = meshaccel('policy', 'check', '--mode', 'istio', '--served-ports', '8080', file);
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 1);
    const lines = (r.stdout + r.stderr).split('\n').filter((l) => l.includes('policy.yaml:'));
    assert.equal(lines.length, 1, lines.join('\n'));
    assert.match(
      lines[0],
      /policy\.yaml:11:\d+: .*spec\.ingress\[0\]\.toPorts\[1\]\.ports\[0\]\.port: port 9090 has HTTP rules but the deployed EnvoyFilter covers only port 8080/,
    );
  });

  it('serve --mode istio serves the Kafka filter configuration over ECDS (no refusal), and the network RBAC the EnvoyFilter names', async () => {
    // The Kafka example and the workloads (the examples' egress policy is refused in istio mode).
    const dir = tmpDir('istio-ecds');
    fs.mkdirSync(path.join(dir, 'policies'));
    fs.copyFileSync(path.join(ROOT, 'examples/policies/kafka-produce-consume.yaml'), path.join(dir, 'policies/kafka.yaml'));
    fs.cpSync(path.join(ROOT, 'examples/workloads'), path.join(dir, 'workloads'), { recursive: true });
    const warnings: string[] = [];
    const server = await startControlServer({
      directories: [path.join(dir, 'policies'), path.join(dir, 'workloads')],
      mode: 'istio',
      host: '127.0.0.1',
      port: 0,
      log: { info: () => undefined, warn: (m) => warnings.push(m) },
    });
    const client = rawClient(server.xds.port);
    try {
      assert.ok(server.source.current().proxies.size > 0, warnings.join('\n'));
      // kafka-0's proxy is bound by node metadata (examples/workloads/shop.yaml).
      const node = 'sidecar~10.1.0.30~kafka-0.shop~shop.svc.cluster.local';
      const ads = sotwStream(client);
      const names = ['meshaccel.kafka.inbound.9092', 'meshaccel.l4deny.inbound', 'meshaccel.l4.inbound.all', 'meshaccel.l4.inbound.default'];
      const deadline = Date.now() + 30000;
      let got: Record<string, any> = {};
      while (Date.now() < deadline) {
        ads.send({
          node: { ...testNode(node), metadata: { fields: { NODE_NAME: { stringValue: 'node-1' } } } },
          type_url: TypeUrl.ExtensionConfig,
          resource_names: names,
        });
        const r = await ads.next();
        got = Object.fromEntries(r.resources.map((x) => decodeTec(x.value)).map((t) => [t.name, t]));
        if (names.every((n) => got[n])) break;
        await new Promise((res) => setTimeout(res, 300));
      }
      ads.close();
      assert.deepEqual(Object.keys(got).sort(), [...names].sort(), warnings.join('\n'));
      assert.ok(!warnings.some((w) => /kafka-produce-consume\.yaml|Kafka rules/.test(w)), warnings.join('\n'));
      assert.equal(got['meshaccel.kafka.inbound.9092'].typed_config.type_url, 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm');
      assert.equal(got['meshaccel.l4.inbound.all'].typed_config.type_url, 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC');
    } finally {
      client.close();
      await server.close();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});

function decodeTec(bytes: Uint8Array): { name: string; typed_config: { type_url: string } } {
  const t = lookupType('envoy.config.core.v3.TypedExtensionConfig');
  return t.toObject(t.decode(bytes)) as { name: string; typed_config: { type_url: string } };
}
