import * as assert from 'node:assert/strict';
import * as grpc from '@grpc/grpc-js';
import { DEFAULT_REDIRECT_CONFIG } from '../../src/net/capture-config';
import { buildProxyResources } from '../../src/envoy/proxy-resources';
import { lookupType } from '../../src/envoy/protos';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import { FIXTURES } from './fixtures';

/**
 * Verdicts of the compiled RBAC, decided by gRPC's own RBAC engine (@grpc/grpc-js-xds'
 * rbac.js, what XdsServer runs) on the bytes we serve: peers, methods, paths, hosts, header
 * presence and values, mTLS identities. The real-peer test covers the wire; this covers the
 * policy semantics case by case.
 */

interface RbacEngine {
  apply(info: Record<string, unknown>): boolean;
}

const { parseConfig } = require('@grpc/grpc-js-xds/build/src/rbac') as { parseConfig(rules: unknown): RbacEngine };

function engine(compiled: CompiledProxyPolicy, mode: 'istio' | 'grpc', port = 8080): RbacEngine {
  const res = buildProxyResources(compiled, { mode, redirect: DEFAULT_REDIRECT_CONFIG });
  const opts = { enums: String, longs: String, defaults: true, oneofs: true };
  let rbacBytes: Uint8Array;
  if (mode === 'istio') {
    const r = res.find((x) => x.name === `meshaccel.rbac.inbound.${port}`);
    assert.ok(r);
    const tec = lookupType('envoy.config.core.v3.TypedExtensionConfig').decode(r.value) as unknown as { typed_config: { value: Uint8Array } };
    rbacBytes = tec.typed_config.value;
  } else {
    const r = res.find((x) => x.name.endsWith(`:${port}`));
    assert.ok(r);
    const L = lookupType('envoy.config.listener.v3.Listener');
    const l = L.decode(r.value) as unknown as { default_filter_chain: { filters: Array<{ typed_config: { value: Uint8Array } }> } };
    const H = lookupType('envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager');
    const hcm = H.decode(l.default_filter_chain.filters[0].typed_config.value) as unknown as { http_filters: Array<{ typed_config: { value: Uint8Array } }> };
    rbacBytes = hcm.http_filters[0].typed_config.value;
  }
  const R = lookupType('envoy.extensions.filters.http.rbac.v3.RBAC');
  const rbac = R.toObject(R.decode(rbacBytes), opts) as { rules: unknown };
  return parseConfig(rbac.rules);
}

function request(r: {
  method?: string;
  path: string;
  host?: string;
  from: string;
  headers?: Record<string, string>;
  spiffe?: string;
}): Record<string, unknown> {
  const md = new grpc.Metadata();
  md.set(':method', r.method ?? 'GET');
  md.set(':path', r.path);
  md.set(':authority', r.host ?? 'web.default');
  for (const [k, v] of Object.entries(r.headers ?? {})) md.set(k, v);
  return {
    headers: md,
    urlPath: r.path,
    sourceIp: r.from,
    destinationIp: '10.0.1.7',
    destinationPort: 8080,
    tls: r.spiffe !== undefined,
    peerCertificate: r.spiffe ? { subject: { CN: 'x' }, subjectaltname: `URI:${r.spiffe}` } : null,
  };
}

describe("compiled RBAC verdicts (gRPC's RBAC engine)", () => {
  const basic = engine(FIXTURES['http-basic'], 'istio');

  it('allows the selected peer the selected method and path only', () => {
    assert.equal(basic.apply(request({ path: '/public', from: '10.0.1.5' })), true);
    assert.equal(basic.apply(request({ path: '/public/index.html', from: '10.0.1.5' })), true);
    assert.equal(basic.apply(request({ method: 'POST', path: '/public', from: '10.0.1.5' })), false, 'method');
    assert.equal(basic.apply(request({ path: '/publicity', from: '10.0.1.5' })), false, 'path regex is anchored');
    assert.equal(basic.apply(request({ path: '/public', from: '10.0.1.6' })), false, 'other peer');
  });

  it('requires host, header value and header presence together (AND), from any address in the CIDR', () => {
    const ok = { method: 'PUT', path: '/admin/users', host: 'web.default.svc', from: '10.0.2.77', headers: { 'x-token': 's3cret', 'x-request-id': '1' } };
    assert.equal(basic.apply(request(ok)), true);
    assert.equal(basic.apply(request({ ...ok, method: 'POST' })), true, 'PUT|POST');
    assert.equal(basic.apply(request({ ...ok, method: 'DELETE' })), false);
    assert.equal(basic.apply(request({ ...ok, host: 'evil.example' })), false, ':authority');
    assert.equal(basic.apply(request({ ...ok, headers: { 'x-token': 'wrong', 'x-request-id': '1' } })), false, 'header value');
    assert.equal(basic.apply(request({ ...ok, headers: { 'x-token': 's3cret' } })), false, 'header presence');
    assert.equal(basic.apply(request({ ...ok, from: '10.0.3.1' })), false, 'outside 10.0.2.0/24');
  });

  it('Istio mode: an mTLS identity is a peer too', () => {
    const istio = engine(FIXTURES['istio-principals'], 'istio');
    const req = { path: '/api/v1/items', headers: { 'x-tenant': 'acme' } };
    assert.equal(istio.apply(request({ ...req, from: '10.9.9.9', spiffe: 'spiffe://cluster.local/ns/default/sa/frontend' })), true);
    assert.equal(istio.apply(request({ ...req, from: '10.9.9.9', spiffe: 'spiffe://cluster.local/ns/default/sa/intruder' })), false);
    assert.equal(istio.apply(request({ ...req, from: '10.9.9.9' })), false, 'no certificate, unknown address');
    assert.equal(istio.apply(request({ ...req, from: '10.0.1.5' })), true, 'address peer');
    assert.equal(istio.apply(request({ path: '/healthz', from: '192.168.0.1' })), true, 'the any-peer rule');
  });

  it('gRPC mode: method paths select RPCs', () => {
    const g = engine(FIXTURES['grpc-methods'], 'grpc', 50051);
    assert.equal(g.apply(request({ method: 'POST', path: '/shop.v1.Shop/GetItem', from: '10.1.2.3' })), true);
    assert.equal(g.apply(request({ method: 'POST', path: '/shop.v1.Shop/ListItems', from: '10.1.2.3' })), true);
    assert.equal(g.apply(request({ method: 'POST', path: '/shop.v1.Shop/DeleteItem', from: '10.1.2.3' })), false);
    assert.equal(g.apply(request({ method: 'POST', path: '/shop.v1.Shop/GetItem', from: '11.0.0.1' })), false);
  });

  it('a port whose rules select nobody denies everything', () => {
    const deny = engine(FIXTURES['egress-and-deny'], 'istio', 8443);
    assert.equal(deny.apply(request({ path: '/', from: '10.0.0.1' })), false);
  });
});
