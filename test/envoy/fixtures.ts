import type { CompiledProxyPolicy, CompiledRule, HttpRule } from '../../src/policy/compiled';

/** Representative compiled policies, shared by the builder and golden tests. */

const rule = (policy: string, peers: CompiledRule['peers'], http?: HttpRule[]): CompiledRule => ({
  origin: { policy, file: `policies/${policy.replace('/', '-')}.yaml`, line: 1 },
  peers,
  ...(http ? { l7: { kind: 'http', rules: http } } : {}),
});

export const FIXTURES: Record<string, CompiledProxyPolicy> = {
  /** A broker: produce to `orders` from one peer, consume from another (ingress 9092), an L4 port beside it, and Kafka egress to a CIDR. */
  'kafka-broker': {
    nodeId: 'shop/kafka-0',
    workloads: ['shop/kafka'],
    ingress: [
      {
        port: 9092,
        protocol: 'TCP',
        l7: 'kafka',
        rules: [
          {
            ...rule('shop/kafka-orders', { any: false, cidrs: ['10.1.0.10/32'], principals: [] }),
            l7: { kind: 'kafka', rules: [{ apiKeys: [0, 3], topic: 'orders' }] },
          },
          {
            ...rule('shop/kafka-billing', { any: false, cidrs: ['10.1.0.20/32'], principals: [] }),
            l7: { kind: 'kafka', rules: [{ apiKeys: [1, 2, 3], topic: 'orders', clientID: 'billing' }] },
          },
        ],
      },
      { port: 9093, protocol: 'TCP', rules: [rule('shop/kafka-internal', { any: false, cidrs: ['10.1.0.0/24'], principals: [] })] },
    ],
    egress: [
      {
        port: 9092,
        protocol: 'TCP',
        l7: 'kafka',
        rules: [
          {
            ...rule('shop/kafka-mirror', { any: false, cidrs: ['10.9.0.0/16'], principals: [] }),
            l7: { kind: 'kafka', rules: [{ apiKeys: [0], topic: 'mirror' }] },
          },
        ],
      },
    ],
  },
  /** Cilium's canonical example: GET /public from one peer, plus a CIDR peer allowed PUT with a header. */
  'http-basic': {
    nodeId: 'default/web-0',
    workloads: ['default/web'],
    ingress: [
      {
        port: 8080,
        protocol: 'TCP',
        l7: 'http',
        rules: [
          rule('default/allow-public', { any: false, cidrs: ['10.0.1.5/32'], principals: ['cluster.local/ns/default/sa/client'] }, [
            { method: 'GET', path: '/public(/.*)?' },
          ]),
          rule('default/allow-admin', { any: false, cidrs: ['10.0.2.0/24', 'fd00::/64'], principals: [] }, [
            { method: 'PUT|POST', path: '/admin/.*', host: 'web\\.default(\\..*)?', headers: ['X-Token: s3cret', 'X-Request-Id'] },
          ]),
        ],
      },
      { port: 9090, protocol: 'TCP', rules: [rule('default/metrics', { any: true, cidrs: [], principals: [] })] },
    ],
    egress: [],
  },
  /** Istio: peers by mTLS identity, header value matches. */
  'istio-principals': {
    nodeId: 'sidecar~10.0.1.7~web-0.default~default.svc.cluster.local',
    workloads: ['default/web'],
    ingress: [
      {
        port: 8080,
        protocol: 'TCP',
        l7: 'http',
        rules: [
          rule(
            'default/frontend-reads',
            { any: false, cidrs: ['10.0.1.5/32'], principals: ['cluster.local/ns/default/sa/frontend', 'spiffe://cluster.local/ns/batch/sa/reporter'] },
            [
              {
                method: 'GET',
                path: '/api/v1/.*',
                headerMatches: [{ name: 'X-Tenant', value: 'acme' }],
              },
            ],
          ),
          rule('default/health', { any: true, cidrs: [], principals: [] }, [{ path: '/healthz' }]),
        ],
      },
    ],
    egress: [],
  },
  /** Proxyless gRPC: methods selected by :path regex. */
  'grpc-methods': {
    nodeId: 'default/shop-0',
    workloads: ['default/shop'],
    ingress: [
      {
        port: 50051,
        protocol: 'TCP',
        l7: 'http',
        rules: [
          rule('default/shop-readers', { any: false, cidrs: ['10.0.0.0/8'], principals: ['cluster.local/ns/default/sa/web'] }, [
            { method: 'POST', path: '/shop\\.v1\\.Shop/(Get|List).*' },
          ]),
        ],
      },
      { port: 50052, protocol: 'TCP', rules: [] },
    ],
    egress: [],
  },
  /** Egress HTTP rules, an L7 port whose rules select nobody (deny all), and an any-HTTP rule. */
  'egress-and-deny': {
    nodeId: 'default/client-0',
    workloads: ['default/client'],
    ingress: [
      { port: 8443, protocol: 'TCP', l7: 'http', rules: [rule('default/nobody', { any: false, cidrs: [], principals: [] }, [{ method: 'GET' }])] },
      { port: 8000, protocol: 'ANY', l7: 'http', rules: [rule('default/any-http', { any: false, cidrs: ['10.1.0.0/16'], principals: [] }, [])] },
    ],
    egress: [
      {
        port: 80,
        protocol: 'TCP',
        l7: 'http',
        rules: [rule('default/egress-api', { any: false, cidrs: ['93.184.216.34/32'], principals: [] }, [{ method: 'GET', path: '/v1/.*' }])],
      },
      { port: 53, protocol: 'UDP', rules: [] },
    ],
  },
};
