import * as assert from 'node:assert/strict';
import { encodeEnvoyResource } from '../../src/envoy/encode';
import { shareEncoding } from '../../src/envoy/encoding/fragments';
import { TypeUrl } from '../../src/resource/type-urls';
import { prng } from '../helpers/prng';

/**
 * Kept fragments (src/envoy/encoding/fragments.ts) against checking and encoding whole: random RBAC
 * resources whose principal and permission lists are shared, reused in other resources and in
 * other fields (of the other message type), some of them invalid. Every resource must encode to
 * the bytes of encoding a plain copy, or fail with the same violations.
 */

type Json = Record<string, unknown>;
const HTTP_RBAC = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
const NETWORK_RBAC = 'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC';

function outcome(name: string, json: Json, keepShared: boolean, typeUrl: string = TypeUrl.ExtensionConfig): string {
  try {
    const e = encodeEnvoyResource(typeUrl, name, keepShared ? json : (JSON.parse(JSON.stringify(json)) as Json), { keepShared });
    return `bytes ${e.value.toString('base64')}`;
  } catch (err) {
    return `error ${(err as Error).message}`;
  }
}

describe('kept fragments: checking and encoding around shared parts equals doing it whole', () => {
  it('random RBACs over shared lists: same bytes, same violations', () => {
    const rand = prng(11);
    // One list in three has a bad item or so (an address that is none, a prefix over 128).
    let badRate = 0;
    const address = (): Json => {
      const bad = badRate > 0 && rand(badRate) === 0;
      return { address_prefix: bad && rand(2) ? 'not-an-ip' : `10.${rand(4)}.${rand(256)}.${rand(256)}`, prefix_len: bad ? 200 : 32 };
    };
    // Now and then a message shared on its own (an address's matcher), kept per type it is put in.
    const principal = (): Json => (rand(6) === 0 ? shareEncoding(principalJson()) : principalJson());
    const principalJson = (): Json => {
      switch (rand(4)) {
        case 0:
          return { authenticated: { principal_name: { exact: `spiffe://cluster.local/ns/n${rand(3)}/sa/s${rand(5)}` } } };
        case 1:
          return { and_ids: { ids: [{ direct_remote_ip: address() }, { not_id: { direct_remote_ip: address() } }] } };
        default:
          return { direct_remote_ip: address() };
      }
    };
    const permission = (): Json => {
      const p = rand(2) ? { destination_port: 1 + rand(65535) } : { destination_ip: address() };
      return rand(6) === 0 ? shareEncoding(p) : p;
    };
    // Lists long enough to be worth keeping, some shared as a whole and some item by item.
    const lists = { principal: [] as Json[][], permission: [] as Json[][] };
    for (let i = 0; i < 16; i++) {
      badRate = rand(3) === 0 ? 150 : 0;
      const kind = rand(4) === 0 ? 'permission' : 'principal';
      const items = Array.from({ length: rand(4) === 0 ? rand(3) : 60 + rand(80) }, kind === 'permission' ? permission : principal);
      lists[kind].push(shareEncoding(items));
    }
    badRate = 0;
    // Mostly a list of the field's kind; now and then the other kind (violations), or a few items taken from the lists.
    const listOf = (kind: 'principal' | 'permission'): Json[] => {
      const k = rand(8) === 0 ? (kind === 'principal' ? 'permission' : 'principal') : kind;
      const from = lists[k].length > 0 ? lists[k] : lists.principal;
      if (rand(4) > 0) return from[rand(from.length)];
      const pool = from.flat();
      return Array.from({ length: 1 + rand(4) }, () => pool[rand(pool.length)] ?? principal());
    };
    let encoded = 0;
    let refused = 0;
    for (let n = 0; n < 400; n++) {
      const policies: Record<string, Json> = {};
      for (let p = 0; p < 1 + rand(3); p++) {
        // A list as principals, or as the rules of an `or_rules` permission (items of the other kind are violations there).
        const permissions = rand(3) === 0 ? [{ or_rules: { rules: listOf('permission') } }] : [{ any: true }];
        const policy = { permissions, principals: rand(12) === 0 ? [] : listOf('principal') };
        policies[`p${p}`] = rand(10) === 0 ? shareEncoding(policy) : policy;
      }
      const network = rand(2) === 0;
      const rbac: Json = { rules: { action: rand(2) ? 'ALLOW' : 'DENY', policies } };
      if (network) rbac.stat_prefix = `s${n}`;
      const json = { name: `r${n}`, typed_config: { '@type': network ? NETWORK_RBAC : HTTP_RBAC, ...rbac } };
      const kept = outcome(`r${n}`, json, true);
      assert.equal(kept, outcome(`r${n}`, json, false), `resource ${n}`);
      if (kept.startsWith('bytes')) encoded++;
      else refused++;
    }
    assert.ok(encoded > 100 && refused > 50, `encoded ${encoded}, refused ${refused}: the cases do not cover both`);
  });

  it('other messages (every scalar kind the API uses, packed lists, maps, Any, well-known types): same bytes, same violations', () => {
    const metadata = shareEncoding({ filter_metadata: { m: { a: 1, b: [true, null, 's'], c: { d: 2.5, e: -0.125 } } } });
    const route = (n: number): Json => ({
      name: `r${n}`,
      match: { prefix: '/', headers: [{ name: 'x-range', range_match: { start: String(-5 - n), end: '9007199254740993' } }] },
      route: { cluster: 'c', timeout: n % 2 ? '0s' : '1.5s', retry_policy: { retriable_status_codes: [503, 504, 200000 + n], num_retries: n } },
      metadata,
      typed_per_filter_config: {
        'envoy.filters.http.rbac': { '@type': 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBACPerRoute', rbac: { rules: { action: 'DENY' } } },
      },
    });
    const routes = shareEncoding([route(1), route(2)]);
    const cases: [string, Json][] = [
      [TypeUrl.RouteConfiguration, { name: 'rc', virtual_hosts: [{ name: 'vh', domains: ['*'], routes }] }],
      [TypeUrl.RouteConfiguration, { name: 'rc2', virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [...routes, route(3)] }] }],
      // Violations inside kept and shared parts: a negative status code, a range end that is no integer.
      [
        TypeUrl.RouteConfiguration,
        {
          name: 'bad',
          virtual_hosts: [{ name: 'vh', domains: ['*'], routes: [{ ...route(4), route: { cluster: 'c', retry_policy: { retriable_status_codes: [-1] } } }] }],
        },
      ],
      [
        TypeUrl.RouteConfiguration,
        {
          name: 'bad2',
          virtual_hosts: [
            { name: 'vh', domains: [], routes: [{ ...route(5), match: { prefix: '/', headers: [{ name: 'x', range_match: { start: 1, end: 'x' } }] } }] },
          ],
        },
      ],
      [
        TypeUrl.Cluster,
        {
          name: 'c',
          type: 'STATIC',
          connect_timeout: '0.25s',
          per_connection_buffer_limit_bytes: 1024,
          common_lb_config: { healthy_panic_threshold: { value: 12.5 } },
          metadata,
          load_assignment: {
            cluster_name: 'c',
            endpoints: [{ lb_endpoints: [{ endpoint: { address: { socket_address: { address: '10.0.0.1', port_value: 80 } } } }] }],
          },
        },
      ],
      [
        TypeUrl.ExtensionConfig,
        {
          name: 'n',
          typed_config: {
            '@type': NETWORK_RBAC,
            stat_prefix: 's',
            rules: {
              action: 'ALLOW',
              policies: {
                p: { permissions: [{ metadata: { filter: 'f', path: [{ key: 'k' }], value: { double_match: { exact: 1.5 } } } }], principals: [{ any: true }] },
              },
            },
          },
        },
      ],
      [TypeUrl.Secret, { name: 's', generic_secret: { secret: { inline_bytes: 'aGVsbG8gd29ybGQ=' } } }],
    ];
    for (const [typeUrl, json] of cases)
      assert.equal(outcome(String(json.name), json, true, typeUrl), outcome(String(json.name), json, false, typeUrl), `${json.name}`);
    // Twice: the second time from what the first kept.
    for (const [typeUrl, json] of cases)
      assert.equal(outcome(String(json.name), json, true, typeUrl), outcome(String(json.name), json, false, typeUrl), `${json.name} again`);
    assert.match(outcome('bad', cases[2][1], true, cases[2][0]), /^error/);
    assert.match(outcome('bad2', cases[3][1], true, cases[3][0]), /^error/);
  });
});
