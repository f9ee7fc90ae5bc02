import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { buildProxyResources } from '../../src/envoy/proxy-resources';
import { lookupType } from '../../src/envoy/protos';
import { PolicyEngine } from '../../src/policy/engine';
import type { WorkloadResource } from '../../src/policy/model';

/**
 * The Istio reproduction: `fromEndpoints: app=frontend` compiled to the principal of
 * the frontend's service account OR-ed with its addresses, so a pod of another app with the
 * same service account (or any peer reusing the address) was admitted. A selected workload is
 * now its principal AND its addresses; judged by gRPC's RBAC engine on the served bytes.
 */

interface RbacEngine {
  apply(info: Record<string, unknown>): boolean;
}

const { parseConfig } = require('@grpc/grpc-js-xds/build/src/rbac') as { parseConfig(rules: unknown): RbacEngine };

function workload(name: string, app: string, ip: string, sa: string): WorkloadResource {
  return { kind: 'Workload', name, namespace: 'shop', labels: { app }, spec: { addresses: [ip], serviceAccount: sa, proxy: { nodeId: name } } };
}

describe('istio mode: a selected peer is its principal AND its address', () => {
  const engine = new PolicyEngine();
  engine.sync([
    workload('api-0', 'api', '10.0.0.10', 'api'),
    workload('frontend-0', 'frontend', '10.0.0.1', 'default'),
    workload('batch-0', 'batch', '10.0.0.2', 'default'),
    {
      kind: 'L7Policy',
      name: 'api-from-frontend',
      namespace: 'shop',
      spec: {
        endpointSelector: { matchLabels: { app: 'api' } },
        ingress: [
          {
            fromEndpoints: [{ matchLabels: { app: 'frontend' } }],
            toPorts: [{ ports: [{ port: 8080, protocol: 'TCP' }], rules: { http: [{ method: 'GET' }] } }],
          },
        ],
      },
    },
  ]);
  engine.commit();
  const res = buildProxyResources(engine.proxy('api-0')!, { mode: 'istio', redirect: DEFAULT_REDIRECT_CONFIG });
  const r = res.find((x) => x.name === 'meshaccel.rbac.inbound.8080')!;
  const tec = lookupType('envoy.config.core.v3.TypedExtensionConfig').decode(r.value) as unknown as { typed_config: { value: Uint8Array } };
  const R = lookupType('envoy.extensions.filters.http.rbac.v3.RBAC');
  const rbac = parseConfig(
    (R.toObject(R.decode(tec.typed_config.value), { enums: String, longs: String, defaults: true, oneofs: true }) as { rules: unknown }).rules,
  );
  const call = (from: string, spiffe?: string): boolean => {
    const md = new grpc.Metadata();
    md.set(':method', 'GET');
    md.set(':path', '/');
    return rbac.apply({
      headers: md,
      urlPath: '/',
      sourceIp: from,
      destinationIp: '10.0.0.10',
      destinationPort: 8080,
      tls: spiffe !== undefined,
      peerCertificate: spiffe ? { subject: { CN: 'x' }, subjectaltname: `URI:${spiffe}` } : null,
    });
  };
  const DEFAULT_SA = 'spiffe://cluster.local/ns/shop/sa/default';

  it('admits the frontend (its principal from its address)', () => {
    assert.equal(call('10.0.0.1', DEFAULT_SA), true);
  });

  it("does not admit app=batch, which shares the frontend's service account", () => {
    assert.equal(call('10.0.0.2', DEFAULT_SA), false);
  });

  it("does not admit a peer reusing the frontend's address without its principal", () => {
    assert.equal(call('10.0.0.1'), false);
    assert.equal(call('10.0.0.1', 'spiffe://cluster.local/ns/shop/sa/api'), false);
  });
});
