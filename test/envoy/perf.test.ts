import * as assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/datapath/redirect-config';
import { buildProxyResourceJson, encodeGenerated } from '../../src/envoy/proxy-resources';
import { getEnvoyRoot } from '../../src/envoy/protos';
import type { CompiledProxyPolicy, CompiledRule } from '../../src/policy/compiled';
import { FIXTURES } from './fixtures';

/**
 * The checker is on the serve path of every generated resource: measure it (and the one-off
 * proto load) and hold a floor well below what it does, so a regression that re-walks options
 * per call or re-compiles rules shows up.
 */

function bigPolicy(rules: number): CompiledProxyPolicy {
  const list: CompiledRule[] = [];
  for (let i = 0; i < rules; i++) {
    list.push({
      origin: { policy: `default/p${i}` },
      peers: { any: false, cidrs: [`10.${i >> 8}.${i & 255}.0/24`], principals: [`cluster.local/ns/default/sa/sa${i}`] },
      http: [{ method: 'GET', path: `/api/v${i}/.*`, headers: ['X-Token'] }],
    });
  }
  return { nodeId: 'big', workloads: [], ingress: [{ port: 8080, protocol: 'TCP', l7: 'http', rules: list }], egress: [] };
}

describe('schema checker speed', function () {
  this.timeout(60000);

  it('loads Envoy\'s protos once, in well under the serve start-up budget', () => {
    const protos = path.join(__dirname, '..', '..', 'src', 'envoy', 'protos.js');
    const r = spawnSync(process.execPath, ['-e', `const t=process.hrtime.bigint();require(${JSON.stringify(protos)}).getEnvoyRoot();console.log(Number(process.hrtime.bigint()-t)/1e6)`], { encoding: 'utf8' });
    const ms = Number(r.stdout.trim());
    console.log(`      proto load: ${ms.toFixed(0)} ms`);
    assert.ok(ms > 0 && ms < 5000, `load took ${ms} ms`);
  });

  it('checks and encodes typical proxy resources at thousands per second', () => {
    getEnvoyRoot();
    const resources = buildProxyResourceJson(FIXTURES['http-basic'], { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG }).resources;
    encodeGenerated(resources); // warm caches
    const rounds = 300;
    const t = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) encodeGenerated(resources);
    const s = Number(process.hrtime.bigint() - t) / 1e9;
    const perSecond = (rounds * resources.length) / s;
    console.log(`      standalone set: ${perSecond.toFixed(0)} resources/s (check + encode, ${resources.length} per proxy)`);
    assert.ok(perSecond > 1000, `${perSecond} resources/s`);
  });

  it('checks a 200-rule RBAC resource in milliseconds', () => {
    const resources = buildProxyResourceJson(bigPolicy(200), { mode: 'istio', redirect: DEFAULT_REDIRECT_CONFIG }).resources;
    encodeGenerated(resources);
    const rounds = 20;
    const t = process.hrtime.bigint();
    for (let i = 0; i < rounds; i++) encodeGenerated(resources);
    const ms = Number(process.hrtime.bigint() - t) / 1e6 / rounds;
    console.log(`      200-rule RBAC: ${ms.toFixed(2)} ms per resource (${resources[0].name})`);
    assert.ok(ms < 200, `${ms} ms`);
  });
});
