import * as assert from 'node:assert/strict';
import * as fs from 'node:fs';
import * as protobuf from 'protobufjs';
import { getEnvoyRoot, lookupType } from '../../src/envoy/protos';
import { checkEnvoyAnyJson, formatViolationPath as formatPath, type Violation } from '../../src/envoy/schema-check';
import { compileRules } from '../../src/envoy/pgv-rules';
import { SchemaError, encodeEnvoyResource } from '../../src/envoy/encode';
import { TypeUrl } from '../../src/resource/type-urls';

/**
 * One test per constraint class, each on a real Envoy message: a valid baseline passes, and
 * the single mutation produces exactly the expected violation at the expected path.
 */

const T = (name: string): string => `type.googleapis.com/${name}`;
const HCM = T('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
const RBAC = T('envoy.extensions.filters.http.rbac.v3.RBAC');
const ROUTER = T('envoy.extensions.filters.http.router.v3.Router');

function violations(json: unknown): Violation[] {
  return checkEnvoyAnyJson(json).violations;
}

function only(json: unknown): { path: string; message: string } {
  const v = violations(json);
  assert.equal(v.length, 1, `expected one violation, got: ${JSON.stringify(v.map((x) => `${formatPath(x.path)}: ${x.message}`))}`);
  return { path: formatPath(v[0].path), message: v[0].message };
}

const cluster = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  '@type': TypeUrl.Cluster,
  name: 'backend',
  type: 'STATIC',
  connect_timeout: '1s',
  load_assignment: {
    cluster_name: 'backend',
    endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 8080 } } } }] }],
  },
  ...extra,
});

const hcm = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  '@type': HCM,
  stat_prefix: 'in',
  route_config: { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { prefix: '/' }, route: { cluster: 'backend' } }] }] },
  http_filters: [{ name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }],
  ...extra,
});

const rbac = (policy: Record<string, unknown>): Record<string, unknown> => ({ '@type': RBAC, rules: { action: 'ALLOW', policies: { p: policy } } });
const goodPolicy = { permissions: [{ any: true }], principals: [{ any: true }] };

describe('Envoy schema checker', () => {
  it('baselines are valid (so every failure below comes from its one mutation)', () => {
    assert.deepEqual(violations(cluster()), []);
    assert.deepEqual(violations(hcm()), []);
    assert.deepEqual(violations(rbac(goodPolicy)), []);
  });

  it('unknown field', () => {
    assert.deepEqual(only(cluster({ conect_timeout: '1s' })), {
      path: 'conect_timeout',
      message: 'unknown field "conect_timeout" in envoy.config.cluster.v3.Cluster',
    });
  });

  it('wrong JSON type: string for uint32, string for bool, scalar for a message', () => {
    assert.match(only(cluster({ per_connection_buffer_limit_bytes: 'lots' })).message, /expected an integer \(uint32\)/);
    assert.match(only(cluster({ respect_dns_ttl: 'yes' })).message, /expected true or false/);
    const r = only(cluster({ load_assignment: 'backend' }));
    assert.equal(r.path, 'load_assignment');
    assert.match(r.message, /expected an object \(envoy.config.endpoint.v3.ClusterLoadAssignment\)/);
    assert.match(only(cluster({ connect_timeout: 5 })).message, /expected a duration string/);
  });

  it('typed_config whose @type does not resolve, however deeply nested', () => {
    const r = only(
      hcm({
        http_filters: [
          { name: 'x', typed_config: { '@type': T('envoy.extensions.filters.http.nope.v3.Nope') } },
          { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } },
        ],
      }),
    );
    assert.equal(r.path, 'http_filters[0].typed_config.@type');
    assert.match(r.message, /does not resolve/);
  });

  it("typed_config types outside the preloaded set resolve from Envoy's protos on demand", () => {
    assert.deepEqual(
      violations(
        hcm({ access_log: [{ name: 'f', typed_config: { '@type': T('envoy.extensions.access_loggers.file.v3.FileAccessLog'), path: '/dev/stdout' } }] }),
      ),
      [],
    );
    assert.match(
      only(hcm({ access_log: [{ name: 'f', typed_config: { '@type': T('envoy.extensions.access_loggers.file.v3.FileAccessLog'), path: '' } }] })).message,
      /min_len/,
    );
  });

  it('required message (message.required): Route.match', () => {
    const r = only(hcm({ route_config: { name: 'r', virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ route: { cluster: 'backend' } }] }] } }));
    assert.equal(r.path, 'route_config.virtual_hosts[0].routes[0].match');
    assert.match(r.message, /is required/);
  });

  it('min_len: Cluster.name', () => {
    assert.deepEqual(only(cluster({ name: '' })), { path: 'name', message: 'length 0 must be at least 1 characters (min_len)' });
  });

  it('min_len also applies to an absent scalar (PGV checks the default value)', () => {
    const json = hcm();
    delete json.stat_prefix;
    assert.equal(only(json).path, 'stat_prefix');
  });

  it('numeric range: SocketAddress.port_value lte 65535, and a UInt32Value wrapper (CidrRange.prefix_len lte 128)', () => {
    const c = cluster();
    (
      c.load_assignment as { endpoints: Array<{ lb_endpoints: Array<{ endpoint: { address: { socket_address: { port_value: number } } } }> }> }
    ).endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value = 70000;
    const r = only(c);
    assert.equal(r.path, 'load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value');
    assert.match(r.message, /<= 65535 \(lte\)/);
    const w = only(rbac({ permissions: [{ any: true }], principals: [{ remote_ip: { address_prefix: '10.0.0.0', prefix_len: 129 } }] }));
    assert.equal(w.path, 'rules.policies.p.principals[0].remote_ip.prefix_len');
    assert.match(w.message, /<= 128 \(lte\)/);
  });

  it('defined enum (enum.defined_only): a number that is no value of the enum', () => {
    const r = only({ '@type': T('envoy.config.core.v3.SocketOption'), level: 1, name: 36, int_value: 1, state: 9 });
    assert.equal(r.path, 'state');
    assert.match(r.message, /not a defined value of enum envoy.config.core.v3.SocketOption.SocketState \(defined_only\)/);
    // An unknown enum *name* is a type error in the JSON mapping itself.
    assert.match(only(cluster({ type: 'STATICC' })).message, /"STATICC" is not a value of enum/);
  });

  it('repeated min_items: RBAC Policy.permissions', () => {
    const r = only(rbac({ permissions: [], principals: [{ any: true }] }));
    assert.equal(r.path, 'rules.policies.p.permissions');
    assert.match(r.message, /at least 1 item \(min_items\)/);
  });

  it('repeated items rules: RouteConfiguration.response_headers_to_remove items (loose header name)', () => {
    const r = only(hcm({ route_config: { name: 'r', response_headers_to_remove: ['x-ok', 'bad\nname'] } }));
    assert.equal(r.path, 'route_config.response_headers_to_remove[1]');
    assert.match(r.message, /HTTP_HEADER_NAME, strict: false/);
  });

  it('well-known regex: HeaderMatcher.name must be an HTTP header name', () => {
    const r = only(rbac({ permissions: [{ header: { name: 'bad\nname', present_match: true } }], principals: [{ any: true }] }));
    assert.equal(r.path, 'rules.policies.p.permissions[0].header.name');
    assert.match(r.message, /HTTP_HEADER_NAME/);
  });

  it('required oneof (validate.required): HCM route_specifier, SocketOption value', () => {
    const json = hcm();
    delete json.route_config;
    assert.deepEqual(only(json), { path: '(root)', message: 'exactly one of rds, route_config, scoped_routes is required (oneof route_specifier)' });
    assert.match(only({ '@type': T('envoy.config.core.v3.SocketOption'), level: 1, name: 36 }).message, /oneof value/);
  });

  it('two members of one oneof set', () => {
    const r = only(hcm({ rds: { route_config_name: 'r', config_source: { ads: {} } } }));
    assert.match(r.message, /oneof route_specifier: .* both set/);
  });

  it('duration gt {} (Cluster.connect_timeout): zero and negative durations fail, 0.25s passes', () => {
    assert.deepEqual(only(cluster({ connect_timeout: '0s' })), { path: 'connect_timeout', message: 'value 0s must be > 0s (gt)' });
    assert.match(only(cluster({ connect_timeout: '-1.5s' })).message, /\(gt\)/);
    assert.deepEqual(violations(cluster({ connect_timeout: '0.25s' })), []);
  });

  it('any.required: ExtensionConfigSource.config_source', () => {
    const filter = { name: 'meshaccel.rbac', config_discovery: { type_urls: [RBAC] } };
    const r = only(hcm({ http_filters: [filter, { name: 'envoy.filters.http.router', typed_config: { '@type': ROUTER } }] }));
    assert.equal(r.path, 'http_filters[0].config_discovery.config_source');
    assert.match(r.message, /is required/);
  });

  it('reports every violation, not just the first', () => {
    assert.equal(violations(cluster({ name: '', connect_timeout: '0s', bogus: 1 })).length, 3);
  });

  it('string pattern: RouteMatch.path_separated_prefix, and RE2-only syntax', () => {
    const route = (prefix: string): Record<string, unknown> =>
      hcm({
        route_config: {
          name: 'r',
          virtual_hosts: [{ name: 'all', domains: ['*'], routes: [{ match: { path_separated_prefix: prefix }, route: { cluster: 'b' } }] }],
        },
      });
    assert.deepEqual(violations(route('/api')), []);
    const r = only(route('/api/'));
    assert.equal(r.path, 'route_config.virtual_hosts[0].routes[0].match.path_separated_prefix');
    assert.match(r.message, /does not match pattern/);
    const re2 = compileRules({ string: { pattern: '^(?i)ab\\z' } }, { kind: 'string' });
    assert.deepEqual(re2.check?.('AB'), []);
    assert.equal(re2.check?.('abc').length, 1);
  });

  it('reversed numeric ranges mean "outside" (PGV semantics)', () => {
    const r = compileRules({ uint32: { gt: 10, lt: 5 } }, { kind: 'uint32' });
    assert.deepEqual(r.check?.(7).length, 1);
    assert.deepEqual(r.check?.(3), []);
    assert.deepEqual(r.check?.(11), []);
    const inside = compileRules({ uint32: { gt: 5, lt: 10 } }, { kind: 'uint32' });
    assert.deepEqual(inside.check?.(7), []);
    assert.equal(inside.check?.(10).length, 1);
  });
});

describe('Envoy JSON mapping', () => {
  it('accepts camelCase and snake_case field names, like Envoy', () => {
    assert.deepEqual(violations(cluster({ connect_timeout: undefined, connectTimeout: '2s', lbPolicy: 'ROUND_ROBIN' })), []);
    assert.match(only(cluster({ connectTimeout: '2s' })).message, /given twice/);
  });

  it('round-trips Duration, wrappers, enums by name, Struct and nested Any through the encoder', () => {
    const listener = {
      name: 'l',
      address: { socket_address: { address: '0.0.0.0', port_value: 15006 } },
      transparent: true,
      per_connection_buffer_limit_bytes: 32768,
      listener_filters_timeout: '0.25s',
      metadata: { filter_metadata: { meshaccel: { policy: 'default/a', ports: [80, 443], on: true, none: null } } },
      filter_chains: [{ filter_chain_match: { destination_port: 8080 }, filters: [{ name: 'hcm', typed_config: hcm() }] }],
    };
    const enc = encodeEnvoyResource(TypeUrl.Listener, 'l', listener);
    const L = lookupType('envoy.config.listener.v3.Listener');
    const back = L.toObject(L.decode(enc.value), { enums: String, longs: Number }) as Record<string, any>;
    assert.equal(back.listener_filters_timeout.nanos, 250_000_000);
    assert.equal(back.transparent.value, true);
    assert.equal(back.per_connection_buffer_limit_bytes.value, 32768);
    assert.equal(back.filter_chains[0].filter_chain_match.destination_port.value, 8080);
    // Decoded through a root with proto field names, as Envoy (and gRPC) see the bytes.
    const V = lookupType('google.protobuf.Value');
    const snake = (name: string): string => V.fieldsArray.find((f) => f.name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`) === name)?.name ?? name;
    const meta = back.metadata.filter_metadata.meshaccel.fields;
    assert.equal(meta.policy[snake('string_value')], 'default/a');
    assert.equal(meta.ports[snake('list_value')].values[1][snake('number_value')], 443);
    assert.equal(meta.on[snake('bool_value')], true);
    assert.ok(snake('null_value') in meta.none);
    const any = back.filter_chains[0].filters[0].typed_config;
    assert.equal(any.type_url, HCM);
    const H = lookupType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
    const inner = H.toObject(H.decode(any.value), { enums: String }) as Record<string, any>;
    assert.equal(inner.stat_prefix, 'in');
    assert.equal(inner.http_filters[0].typed_config.type_url, ROUTER);
  });

  it('encodeEnvoyResource refuses an invalid resource with a SchemaError listing every violation and the policy', () => {
    assert.throws(
      () => encodeEnvoyResource(TypeUrl.Cluster, 'c', { name: '', connect_timeout: '0s' }, { origins: [{ policy: 'default/p', file: 'p.yaml', line: 3 }] }),
      (err: unknown) =>
        err instanceof SchemaError &&
        err.violations.length === 2 &&
        /policy default\/p \(p\.yaml:3\)/.test(err.message) &&
        /connect_timeout: value 0s must be > 0s/.test(err.message),
    );
  });
});

describe("PGV rules read from Envoy's protos", () => {
  it('keeps aggregate rules with empty or nested message values (Cluster.connect_timeout = {gt {}})', () => {
    const f = lookupType('envoy.config.cluster.v3.Cluster').fields.connect_timeout;
    // The flattened options lose it; parsedOptions keeps it, and that is what the checker reads.
    assert.deepEqual(f.parsedOptions, [{ '(validate.rules)': { duration: { gt: {} } } }]);
  });

  it('finds rules on exactly the fields whose declarations carry (validate.rules) in the .proto sources', () => {
    const root = getEnvoyRoot();
    const fromReflection = new Map<string, number>();
    const walk = (ns: protobuf.NamespaceBase): void => {
      for (const o of ns.nestedArray) {
        if (o instanceof protobuf.Type) {
          for (const f of o.fieldsArray) {
            if (((f.parsedOptions ?? []) as Array<Record<string, unknown>>).some((x) => '(validate.rules)' in x))
              fromReflection.set(o.filename ?? '', (fromReflection.get(o.filename ?? '') ?? 0) + 1);
          }
        }
        if (o instanceof protobuf.Namespace) walk(o);
      }
    };
    walk(root);
    let total = 0;
    for (const file of root.files.filter((f) => fs.existsSync(f))) {
      const src = fs.readFileSync(file, 'utf8').replace(/\/\/.*$/gm, '');
      const declared = (src.match(/=\s*\d+\s*\[[^\]]*\(validate\.rules\)/g) ?? []).length;
      total += declared;
      assert.equal(fromReflection.get(file) ?? 0, declared, `fields with validate.rules in ${file}`);
    }
    assert.ok(total > 300, `expected hundreds of annotated fields, saw ${total}`);
  });
});
