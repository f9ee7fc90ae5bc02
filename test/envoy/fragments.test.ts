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

function outcome(name: string, json: Json, keepShared: boolean): string {
  try {
    const e = encodeEnvoyResource(TypeUrl.ExtensionConfig, name, keepShared ? json : (JSON.parse(JSON.stringify(json)) as Json), { keepShared });
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
    const principal = (): Json => {
      switch (rand(4)) {
        case 0:
          return { authenticated: { principal_name: { exact: `spiffe://cluster.local/ns/n${rand(3)}/sa/s${rand(5)}` } } };
        case 1:
          return { and_ids: { ids: [{ direct_remote_ip: address() }, { not_id: { direct_remote_ip: address() } }] } };
        default:
          return { direct_remote_ip: address() };
      }
    };
    const permission = (): Json => (rand(2) ? { destination_port: 1 + rand(65535) } : { destination_ip: address() });
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
        policies[`p${p}`] = { permissions, principals: rand(12) === 0 ? [] : listOf('principal') };
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
});
