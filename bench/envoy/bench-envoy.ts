import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { buildProxyResourceJson, encodeGenerated } from '../../src/envoy/proxy-resources';
import { getEnvoyRoot } from '../../src/envoy/protos';
import type { CompiledProxyPolicy, CompiledRule } from '../../src/policy/compiled';
import { FIXTURES } from '../../test/envoy/fixtures';

/**
 * bench-envoy: the schema checker is on the serve path of every generated resource. Reports
 * the one-off proto loads (in a fresh process each), check + encode throughput for a typical
 * proxy's resources, and a 200-rule RBAC.
 */
function bigPolicy(rules: number): CompiledProxyPolicy {
  const list: CompiledRule[] = [];
  for (let i = 0; i < rules; i++) {
    list.push({
      origin: { policy: `default/p${i}` },
      peers: { any: false, cidrs: [`10.${i >> 8}.${i & 255}.0/24`], principals: [`cluster.local/ns/default/sa/sa${i}`] },
      l7: { kind: 'http', rules: [{ method: 'GET', path: `/api/v${i}/.*`, headers: ['X-Token'] }] },
    });
  }
  return { nodeId: 'big', workloads: [], ingress: [{ port: 8080, protocol: 'TCP', l7: 'http', rules: list }], egress: [] };
}

function protoLoadMs(fn: 'getDiscoveryRoot' | 'getEnvoyRoot'): number {
  // The discovery loader is the xDS server's (src/resource), the full set the compiler's (src/envoy).
  const protos = path.join(__dirname, '..', '..', 'src', fn === 'getDiscoveryRoot' ? 'resource' : 'envoy', 'protos.js');
  const r = spawnSync(
    process.execPath,
    ['-e', `const t=process.hrtime.bigint();require(${JSON.stringify(protos)}).${fn}();console.log(Number(process.hrtime.bigint()-t)/1e6)`],
    { encoding: 'utf8' },
  );
  const ms = Number(r.stdout.trim());
  if (r.status !== 0 || !(ms > 0)) throw new Error(`proto load ${fn} failed: ${r.stderr.trim()}`);
  return ms;
}

function median(xs: number[]): number {
  return [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
}

console.log('bench-envoy (medians of 5)');
console.log(`  proto load, discovery only (what the xDS server needs): ${median([1, 2, 3, 4, 5].map(() => protoLoadMs('getDiscoveryRoot'))).toFixed(0)} ms`);
console.log(`  proto load, full Envoy set (compiler and checker):      ${median([1, 2, 3, 4, 5].map(() => protoLoadMs('getEnvoyRoot'))).toFixed(0)} ms`);

getEnvoyRoot();
const typical = buildProxyResourceJson(FIXTURES['http-basic'], { mode: 'standalone', redirect: DEFAULT_REDIRECT_CONFIG }).resources;
encodeGenerated(typical); // warm caches
const perSecond: number[] = [];
for (let run = 0; run < 5; run++) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < 300; i++) encodeGenerated(typical);
  perSecond.push((300 * typical.length) / (Number(process.hrtime.bigint() - t) / 1e9));
}
console.log(`  check + encode, standalone set of ${typical.length}: ${median(perSecond).toFixed(0)} resources/s`);

const big = buildProxyResourceJson(bigPolicy(200), { mode: 'istio', redirect: DEFAULT_REDIRECT_CONFIG }).resources;
encodeGenerated(big);
const bigMs: number[] = [];
for (let run = 0; run < 5; run++) {
  const t = process.hrtime.bigint();
  for (let i = 0; i < 20; i++) encodeGenerated(big);
  bigMs.push(Number(process.hrtime.bigint() - t) / 1e6 / 20);
}
console.log(`  check + encode, 200-rule RBAC: ${median(bigMs).toFixed(2)} ms per resource`);
