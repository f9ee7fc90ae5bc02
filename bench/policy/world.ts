import type { LabelSelectorSpec, PolicyResource, Resource, WorkloadResource } from '../../src/policy/model';

/**
 * The world of `make bench-policy` (and of the tests that check what it serves): 3,000 workloads
 * of 500 apps, one proxy each, and 1,000 ingress rules; most peers are two label selectors, every
 * tenth rule's an expression selector that selects about a thousand identities.
 */
export const IDENTITIES = 3000;
export const RULES = 1000;
export const APPS = 500;

export function workload(i: number, extra: Record<string, string> = {}): WorkloadResource {
  const app = i % APPS;
  return {
    kind: 'Workload',
    name: `w${i}`,
    namespace: `ns${app % 10}`,
    labels: { app: `app${app}`, version: `v${Math.floor(i / APPS) % 6}`, tier: `t${i % 5}`, ...extra },
    spec: { addresses: [`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`], serviceAccount: `sa${app}`, proxy: { nodeId: `node-${i}` } },
  };
}

export function rule(k: number): PolicyResource {
  const subject = (k * 7) % APPS;
  const peer = (k * 13 + 1) % APPS;
  // Most peers are label selectors; every tenth is an expression-only selector (`In`/`NotIn`,
  // no equality), which selects hundreds of identities and keeps the index honest.
  const peers: LabelSelectorSpec[] =
    k % 10 === 0
      ? [
          {
            matchExpressions: [
              { key: 'tier', operator: 'In' as const, values: [`t${k % 5}`, `t${(k + 1) % 5}`] },
              { key: 'version', operator: 'NotIn' as const, values: ['v0'] },
            ],
          },
        ]
      : [{ matchLabels: { app: `app${peer}` } }, { matchLabels: { app: `app${(peer + 1) % APPS}`, version: `v${k % 6}` } }];
  return {
    kind: 'ClusterL7Policy',
    name: `rule-${k}`,
    spec: {
      endpointSelector: { matchLabels: { app: `app${subject}` } },
      ingress: [
        { fromEndpoints: peers, toPorts: [{ ports: [{ port: 8080 + (k % 3), protocol: 'TCP' }], rules: { http: [{ method: 'GET', path: `/api/${k}/.*` }] } }] },
      ],
    },
  };
}

/** A new label set (the `pod` label is unique) of an app that existing rules select. */
export function arrival(j: number): WorkloadResource {
  const i = IDENTITIES + j;
  const w = workload(j * 37, { pod: `p${i}` });
  w.name = `new-${i}`;
  w.spec = { ...w.spec, addresses: [`10.200.${(i >> 8) & 255}.${i & 255}`], proxy: { nodeId: `node-new-${i}` } };
  return w;
}

export const RESOURCES: Resource[] = [...Array.from({ length: IDENTITIES }, (_, i) => workload(i)), ...Array.from({ length: RULES }, (_, k) => rule(k))];
