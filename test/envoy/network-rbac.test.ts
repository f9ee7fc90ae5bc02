import * as assert from 'node:assert/strict';
import * as path from 'path';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { buildProxyResourceJson, buildProxyResources } from '../../src/envoy/proxy-resources';
import { TypeUrl } from '../../src/resource/type-urls';
import { PolicyEngine } from '../../src/policy/engine';
import { listYamlFiles, loadFiles } from '../../src/policy/loader';
import type { WorkloadResource } from '../../src/policy/model';
import { ROOT } from '../policy/helpers';

const WORLD = path.join(ROOT, 'test', 'trace', 'fixtures', 'world');

function worldEngine(): PolicyEngine {
  const loaded = loadFiles(listYamlFiles(WORLD));
  assert.deepEqual(loaded.diagnostics, []);
  const e = new PolicyEngine();
  e.sync(loaded.resources);
  assert.deepEqual(e.commit().conflicts, []);
  return e;
}

describe('L3/L4 as network RBAC over ECDS (standalone)', () => {
  it('every chain starts with the deny and the allow network RBAC, each from ECDS with a deny-all default, not applied before the first answer', () => {
    const e = worldEngine();
    const res = buildProxyResourceJson(e.proxy('n-api')!, { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG }).resources;
    const inbound = res.find((r) => r.typeUrl === TypeUrl.Listener && r.name === 'meshaccel.inbound')!.json as any;
    const chains = [...inbound.filter_chains, inbound.default_filter_chain];
    assert.deepEqual(
      chains.map((c: any) => c.filters.slice(0, 2).map((f: any) => f.name)),
      [
        ['meshaccel.l4deny.inbound', 'meshaccel.l4.inbound.8080'],
        ['meshaccel.l4deny.inbound', 'meshaccel.l4.inbound.default'],
      ],
    );
    for (const c of chains) {
      for (const f of c.filters.slice(0, 2)) {
        assert.equal(f.typed_config, undefined, 'no inline config');
        assert.equal(f.config_discovery.default_config['@type'], 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC');
        assert.deepEqual(f.config_discovery.default_config.rules, { action: 'ALLOW', policies: {} }, 'fails closed');
        assert.equal(f.config_discovery.apply_default_config_without_warming, false);
        assert.ok(
          res.some((r) => r.typeUrl === TypeUrl.ExtensionConfig && r.name === f.name),
          `${f.name} is served`,
        );
      }
    }
  });

  it('every resource of every proxy passes the schema check (envoy check) in standalone mode', () => {
    const e = worldEngine();
    for (const [key, policy] of e.proxies())
      assert.doesNotThrow(() => buildProxyResources(policy, { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG }), key);
  });

  it("identity churn changes ECDS resources only: a new peer of api's rules never touches a listener", () => {
    const e = worldEngine();
    const before = buildProxyResources(e.proxy('n-api')!, { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG });
    const w: WorkloadResource = {
      kind: 'Workload',
      name: 'web-1',
      namespace: 'a',
      labels: { app: 'web' },
      spec: { addresses: ['10.0.0.77'], proxy: { nodeId: 'n-web-1' } },
    };
    e.upsertWorkload(w);
    assert.ok(e.commit().changed.includes('n-api'));
    const after = buildProxyResources(e.proxy('n-api')!, { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG });
    assert.deepEqual(
      after.map((r) => r.name),
      before.map((r) => r.name),
    );
    const changed = after.filter((r, i) => r.version !== before[i].version).map((r) => `${r.typeUrl.split('.').pop()} ${r.name}`);
    assert.ok(changed.length > 0);
    assert.deepEqual(
      changed.filter((c) => !c.startsWith('TypedExtensionConfig ')),
      [],
      changed.join(', '),
    );
    assert.ok(changed.includes('TypedExtensionConfig meshaccel.l4.inbound.8080'), changed.join(', '));
  });

  it('grpc mode (a server other than grpc-js, which refuses deny rules naming peers): deny rules become a DENY RBAC filter before the ALLOW one', () => {
    const e = worldEngine();
    const res = buildProxyResourceJson(
      { ...e.proxy('n-api')!, egress: [] },
      { mode: 'grpc', redirect: DEFAULT_REDIRECT_CONFIG, servedPorts: [9999], grpcServerImplementation: 'other' },
    ).resources;
    const l = res.find((r) => r.name.endsWith(':9999'))!.json as any;
    const filters = l.default_filter_chain.filters[0].typed_config.http_filters;
    assert.deepEqual(
      filters.map((f: any) => [f.name, f.typed_config?.rules?.action]),
      [
        ['meshaccel.deny', 'DENY'],
        ['envoy.filters.http.rbac', 'ALLOW'],
        ['envoy.filters.http.router', undefined],
      ],
    );
    assert.deepEqual(Object.keys(filters[0].typed_config.rules.policies), ['meshaccel:a/api-http#ingressDeny[0]@9999']);
    assert.doesNotThrow(() =>
      buildProxyResources(
        { ...e.proxy('n-api')!, egress: [] },
        { mode: 'grpc', redirect: DEFAULT_REDIRECT_CONFIG, servedPorts: [9999], grpcServerImplementation: 'other' },
      ),
    );
  });
});
