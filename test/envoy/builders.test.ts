import * as assert from 'node:assert/strict';
import { DEFAULT_REDIRECT_CONFIG, type RedirectConfig } from '../../src/net/capture-config';
import { buildProxyResourceJson, buildProxyResources, type GeneratedResource } from '../../src/envoy/proxy-resources';
import { encodeGeneratedSettled } from '../tools/encode-settled';
import { SchemaError } from '../../src/envoy/encode';
import { TypeUrl } from '../../src/resource/type-urls';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import { FIXTURES } from './fixtures';

/* Tests read the generated JSON structurally; `any` keeps the deep paths legible. */

function byName(resources: GeneratedResource[], typeUrl: string, name: string): any {
  const r = resources.find((x) => x.typeUrl === typeUrl && x.name === name);
  assert.ok(r, `${typeUrl} ${name} generated (have: ${resources.map((x) => x.name).join(', ')})`);
  return r.json;
}

function build(fixture: string, mode: 'standalone' | 'istio' | 'grpc', redirect: RedirectConfig = DEFAULT_REDIRECT_CONFIG): GeneratedResource[] {
  return buildProxyResourceJson(FIXTURES[fixture], { mode, redirect }).resources;
}

describe('RBAC compilation', () => {
  it('turns each rule into an ALLOW policy: peers as direct_remote_ip principals (never X-Forwarded-For), HTTP rules as header matchers', () => {
    const ecds = byName(build('http-basic', 'standalone'), TypeUrl.ExtensionConfig, 'meshaccel.rbac.inbound.8080');
    assert.equal(ecds.typed_config['@type'], 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC');
    const rules = ecds.typed_config.rules;
    assert.equal(rules.action, 'ALLOW');
    const pub = rules.policies['default/allow-public#0'];
    assert.deepEqual(pub.principals, [{ direct_remote_ip: { address_prefix: '10.0.1.5', prefix_len: 32 } }], 'standalone: no mTLS principals');
    assert.deepEqual(pub.permissions, [
      {
        and_rules: {
          rules: [
            { header: { name: ':method', string_match: { safe_regex: { regex: 'GET' } } } },
            { header: { name: ':path', string_match: { safe_regex: { regex: '/public(/.*)?' } } } },
          ],
        },
      },
    ]);
    const admin = rules.policies['default/allow-admin#1'];
    assert.deepEqual(
      admin.principals.map((p: any) => `${p.direct_remote_ip.address_prefix}/${p.direct_remote_ip.prefix_len}`),
      ['10.0.2.0/24', 'fd00::/64'],
    );
    const conds = admin.permissions[0].and_rules.rules.map((r: any) => r.header);
    assert.deepEqual(
      conds.map((h: any) => h.name),
      [':method', ':path', ':authority', 'x-token', 'x-request-id'],
    );
    assert.deepEqual(conds[3].string_match, { exact: 's3cret' });
    assert.equal(conds[4].present_match, true);
  });

  it('Istio mode adds mTLS principal names as SPIFFE URIs', () => {
    const ecds = byName(build('istio-principals', 'istio'), TypeUrl.ExtensionConfig, 'meshaccel.rbac.inbound.8080');
    const names = ecds.typed_config.rules.policies['meshaccel:default/frontend-reads#0'].principals
      .filter((p: any) => p.authenticated)
      .map((p: any) => p.authenticated.principal_name.exact);
    assert.deepEqual(names, ['spiffe://cluster.local/ns/default/sa/frontend', 'spiffe://cluster.local/ns/batch/sa/reporter']);
    assert.deepEqual(ecds.typed_config.rules.policies['meshaccel:default/health#1'].principals, [{ any: true }]);
  });

  it('a port whose rules select nobody denies everything; an empty HTTP list allows all HTTP from the peers', () => {
    const res = build('egress-and-deny', 'standalone');
    assert.deepEqual(byName(res, TypeUrl.ExtensionConfig, 'meshaccel.rbac.inbound.8443').typed_config.rules, { action: 'ALLOW', policies: {} });
    const any = byName(res, TypeUrl.ExtensionConfig, 'meshaccel.rbac.inbound.8000').typed_config.rules.policies['default/any-http#0'];
    assert.deepEqual(any.permissions, [{ any: true }]);
  });

  it('egress rules match the destination address instead of the downstream peer', () => {
    const p = byName(build('egress-and-deny', 'standalone'), TypeUrl.ExtensionConfig, 'meshaccel.rbac.outbound.80').typed_config.rules.policies[
      'default/egress-api#0'
    ];
    assert.deepEqual(p.principals, [{ any: true }]);
    assert.deepEqual(p.permissions[0].and_rules.rules[0], { destination_ip: { address_prefix: '93.184.216.34', prefix_len: 32 } });
  });
});

describe('standalone Envoy resources', () => {
  it('capture listeners are transparent, restore the original destination and match on its port', () => {
    const inbound = byName(build('http-basic', 'standalone'), TypeUrl.Listener, 'meshaccel.inbound');
    assert.equal(inbound.transparent, true);
    assert.equal(inbound.address.socket_address.port_value, DEFAULT_REDIRECT_CONFIG.inboundProxyPort);
    assert.deepEqual(
      inbound.listener_filters.map((f: any) => f.name),
      ['envoy.filters.listener.original_dst'],
    );
    assert.deepEqual(
      inbound.filter_chains.map((c: any) => c.filter_chain_match.destination_port),
      [8080],
      'only the L7 HTTP port gets an HTTP chain',
    );
    assert.equal(inbound.default_filter_chain.filters.at(-1).typed_config.cluster, 'meshaccel.inbound.passthrough');
  });

  it('the HTTP filter references the ECDS resource by name and falls back to deny-all, router last', () => {
    const res = build('http-basic', 'standalone');
    const hcm = byName(res, TypeUrl.Listener, 'meshaccel.inbound').filter_chains[0].filters.find(
      (f: any) => f.name === 'envoy.filters.network.http_connection_manager',
    ).typed_config;
    assert.deepEqual(
      hcm.http_filters.map((f: { name: string }) => f.name),
      ['meshaccel.rbac.inbound.8080', 'envoy.filters.http.router'],
      'exactly RBAC then the router',
    );
    const [rbac, router] = hcm.http_filters;
    assert.equal(rbac.name, 'meshaccel.rbac.inbound.8080');
    assert.ok(
      res.some((r) => r.typeUrl === TypeUrl.ExtensionConfig && r.name === rbac.name),
      'ECDS resource of that name is served',
    );
    assert.deepEqual(rbac.config_discovery.config_source, { ads: {}, resource_api_version: 'V3' });
    assert.deepEqual(rbac.config_discovery.default_config.rules, { action: 'ALLOW', policies: {} });
    assert.equal(rbac.typed_config, undefined, 'no inline config: a policy change never touches the listener');
    assert.equal(router.name, 'envoy.filters.http.router');
    assert.equal(hcm.rds.route_config_name, 'meshaccel.inbound');
    byName(res, TypeUrl.RouteConfiguration, 'meshaccel.inbound');
  });

  it('a policy change changes only the ECDS resource, never the listener', () => {
    const a = buildProxyResources(FIXTURES['http-basic'], { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG });
    const changed: CompiledProxyPolicy = JSON.parse(JSON.stringify(FIXTURES['http-basic']));
    changed.ingress[0].rules[0].l7 = { kind: 'http', rules: [{ method: 'HEAD' }] };
    const b = buildProxyResources(changed, { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG });
    const diff = a.filter((r, i) => r.version !== b[i].version).map((r) => `${r.typeUrl.split('.').pop()} ${r.name}`);
    assert.deepEqual(diff, ['TypedExtensionConfig meshaccel.rbac.inbound.8080']);
  });

  it('ports and the proxy mark come from the shared redirect configuration', () => {
    const redirect: RedirectConfig = { ...DEFAULT_REDIRECT_CONFIG, inboundProxyPort: 16006, outboundProxyPort: 16001, proxyMark: 0x777 };
    const res = build('http-basic', 'standalone', redirect);
    assert.equal(byName(res, TypeUrl.Listener, 'meshaccel.inbound').address.socket_address.port_value, 16006);
    assert.equal(byName(res, TypeUrl.Listener, 'meshaccel.outbound').address.socket_address.port_value, 16001);
    for (const name of ['meshaccel.inbound.passthrough', 'meshaccel.outbound.passthrough']) {
      const c = byName(res, TypeUrl.Cluster, name);
      assert.equal(c.type, 'ORIGINAL_DST');
      assert.equal(c.lb_policy, 'CLUSTER_PROVIDED');
      assert.deepEqual(
        c.upstream_bind_config.socket_options.map((o: any) => [o.level, o.name, o.int_value, o.state]),
        [[1, 36, 0x777, 'STATE_PREBIND']],
        'SO_MARK (SOL_SOCKET=1, SO_MARK=36) = proxyMark',
      );
    }
  });
});

describe('Istio mode', () => {
  it('serves only ECDS resources: the network RBAC, and per port its HTTP RBAC (allow-all without HTTP rules) and allow-all Kafka filter', () => {
    const res = build('http-basic', 'istio');
    assert.ok(res.every((r) => r.typeUrl === TypeUrl.ExtensionConfig));
    assert.deepEqual(
      res.map((r) => r.name),
      [
        'meshaccel.l4.inbound.default',
        'meshaccel.l4deny.inbound',
        'meshaccel.l4.inbound.all',
        'meshaccel.rbac.inbound.8080',
        'meshaccel.rbac.inbound.9090',
        'meshaccel.kafka.inbound.9090',
      ],
    );
    assert.deepEqual((byName(res, TypeUrl.ExtensionConfig, 'meshaccel.rbac.inbound.9090') as any).typed_config.rules.policies['allow-all'], {
      permissions: [{ any: true }],
      principals: [{ any: true }],
    });
  });

  it('always serves the ports the EnvoyFilter references, so a port never sits on the deny-all default', () => {
    const res = buildProxyResourceJson(FIXTURES['http-basic'], { mode: 'istio', redirect: DEFAULT_REDIRECT_CONFIG, servedPorts: [8080, 7070] }).resources;
    assert.deepEqual(
      res.map((r) => r.name).filter((n) => n.startsWith('meshaccel.rbac.')),
      ['meshaccel.rbac.inbound.7070', 'meshaccel.rbac.inbound.8080', 'meshaccel.rbac.inbound.9090'],
    );
    assert.ok((res.find((r) => r.name === 'meshaccel.rbac.inbound.7070')?.json as any).typed_config.rules.policies['allow-all']);
  });
});

describe('proxyless gRPC server listeners', () => {
  it('are named after the listening address, carry the RBAC inline and route with non_forwarding_action', () => {
    const res = buildProxyResourceJson(FIXTURES['grpc-methods'], { mode: 'grpc', redirect: DEFAULT_REDIRECT_CONFIG, grpcServerHost: '10.0.0.7' }).resources;
    assert.deepEqual(
      res.map((r) => r.name),
      ['grpc/server?xds.resource.listening_address=10.0.0.7:50051', 'grpc/server?xds.resource.listening_address=10.0.0.7:50052'],
    );
    const l = res[0].json as any;
    assert.deepEqual(l.address.socket_address, { address: '10.0.0.7', port_value: 50051 });
    assert.equal(l.listener_filters, undefined, 'gRPC rejects listener_filters');
    const hcm = l.default_filter_chain.filters[0].typed_config;
    assert.deepEqual(
      hcm.http_filters.map((f: any) => f.name),
      ['envoy.filters.http.rbac', 'envoy.filters.http.router'],
    );
    assert.equal(hcm.http_filters[0].typed_config['@type'], 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC');
    assert.deepEqual(hcm.route_config.virtual_hosts[0].routes[0].non_forwarding_action, {});
    const noL7 = (res[1].json as any).default_filter_chain.filters[0].typed_config;
    // L3/L4 in gRPC mode: a port of a selected workload without any rule allows nothing (it used to get no RBAC at all).
    assert.deepEqual(
      noL7.http_filters.map((f: any) => f.name),
      ['envoy.filters.http.rbac', 'envoy.filters.http.router'],
      'an RBAC on a port without L7 rules too',
    );
    assert.deepEqual(noL7.http_filters[0].typed_config.rules, { action: 'ALLOW', policies: {} }, 'no rule names 50052: deny all');
  });

  it('serve a Listener for every port an XdsServer binds, even one no policy mentions', () => {
    const res = buildProxyResourceJson(FIXTURES['grpc-methods'], { mode: 'grpc', redirect: DEFAULT_REDIRECT_CONFIG, servedPorts: [50053] }).resources;
    assert.deepEqual(
      res.map((r) => r.name.split('=')[1]),
      ['0.0.0.0:50051', '0.0.0.0:50052', '0.0.0.0:50053'],
    );
  });
});

describe('a generated resource that fails the schema is never served', () => {
  it('throws SchemaError naming the policy (and its file) that produced it', () => {
    const bad: CompiledProxyPolicy = {
      nodeId: 'n',
      workloads: [],
      ingress: [
        {
          port: 8080,
          protocol: 'TCP',
          l7: 'http',
          rules: [
            {
              origin: { policy: 'default/bad-header', file: 'policies/bad.yaml', line: 7 },
              peers: { any: true, cidrs: [], principals: [] },
              l7: { kind: 'http', rules: [{ headerMatches: [{ name: 'x-bad\u0000name', value: 'v' }] }] },
            },
          ],
        },
      ],
      egress: [],
    };
    for (const mode of ['standalone', 'istio', 'grpc'] as const) {
      assert.throws(
        () => buildProxyResources(bad, { mode, redirect: DEFAULT_REDIRECT_CONFIG }),
        (err: unknown) =>
          err instanceof SchemaError &&
          /policy default\/bad-header \(policies\/bad\.yaml:7\)/.test(err.message) &&
          /header\.name: .*HTTP_HEADER_NAME/.test(err.message),
        mode,
      );
    }
  });

  it('encodeGeneratedSettled reports every bad resource and keeps the good ones', () => {
    const bad: CompiledProxyPolicy = JSON.parse(JSON.stringify(FIXTURES['egress-and-deny']));
    bad.ingress[1].rules[0].peers.cidrs = ['10.0.0.0/99'];
    bad.egress[0].rules[0].l7 = { kind: 'http', rules: [{ headerMatches: [{ name: 'a\nb' }] }] };
    bad.ingress[0].rules[0].peers = { any: true, cidrs: [], principals: [] };
    bad.ingress[0].rules[0].l7 = { kind: 'http', rules: [{ headers: ['x\u0000ok'] }] };
    const { encoded, errors } = encodeGeneratedSettled(buildProxyResourceJson(bad, { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG }).resources);
    assert.deepEqual(
      errors.map((e) => [e.resourceName, e.origins.map((o) => o.policy)]),
      [
        ['meshaccel.rbac.inbound.8443', ['default/nobody']],
        ['meshaccel.rbac.outbound.80', ['default/egress-api']],
      ],
    );
    assert.equal(
      encoded.length,
      14,
      'the 7 HTTP-era resources plus the network RBAC of each chain and of the deny rules (no Kafka resource: no port had Kafka rules)',
    );
  });

  it('a malformed CIDR (IPv4 prefix over 32, which PGV alone would pass) drops that peer with a warning', () => {
    const bad: CompiledProxyPolicy = {
      nodeId: 'n',
      workloads: [],
      ingress: [
        {
          port: 8080,
          protocol: 'TCP',
          l7: 'http',
          rules: [
            {
              origin: { policy: 'default/bad-cidr' },
              peers: { any: false, cidrs: ['10.0.0.0/33', '10.1.0.0/16'], principals: [] },
              l7: { kind: 'http', rules: [] },
            },
          ],
        },
      ],
      egress: [],
    };
    const build = buildProxyResourceJson(bad, { mode: 'istio', redirect: DEFAULT_REDIRECT_CONFIG });
    assert.deepEqual([...new Set(build.warnings)], ['policy default/bad-cidr: "10.0.0.0/33" is not a CIDR; that peer is not allowed']);
    assert.deepEqual(
      (build.resources.find((r) => r.name === 'meshaccel.rbac.inbound.8080')?.json as any).typed_config.rules.policies['meshaccel:default/bad-cidr#0']
        .principals,
      [{ direct_remote_ip: { address_prefix: '10.1.0.0', prefix_len: 16 } }],
    );
  });
});
