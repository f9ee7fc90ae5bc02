import type { L7Rules, PolicyOrigin } from './compiled';
import { compileL7 } from './l7';
import { NAMESPACE_LABEL, resourceName, type LabelSelectorSpec, type PolicyResource, type PortRuleSpec } from './model';
import { compileSelector, type Selector } from './selector';
import { parseCidr, parsePortNumber } from './semantic-checks';

/**
 * A validated policy flattened into what the engine resolves per proxy: selectors still
 * unresolved (the selector cache owns them), everything else already in compiled form.
 */
export interface PolicyRules {
  key: string;
  subject: Selector;
  /** Present (even empty) `ingress`/`egress` puts the selected workloads in default deny. */
  enforcesIngress: boolean;
  enforcesEgress: boolean;
  ingress: DirectionalRule[];
  egress: DirectionalRule[];
}

export interface DirectionalRule {
  origin: PolicyOrigin;
  /** No endpoint selector and no CIDR: every peer. */
  any: boolean;
  peers: Selector[];
  cidrs: string[];
  /** Empty when the rule has no toPorts: all ports. */
  ports: PortEntry[];
}

export interface PortEntry {
  port: number;
  protocol: 'TCP' | 'UDP' | 'ANY';
  l7?: L7Rules;
}

function compilePorts(toPorts: PortRuleSpec[] | undefined): PortEntry[] {
  const out: PortEntry[] = [];
  for (const pr of toPorts ?? []) {
    for (const p of pr.ports) {
      const entry: PortEntry = { port: parsePortNumber(p.port) as number, protocol: p.protocol ?? 'ANY' };
      const l7 = compileL7(pr.rules);
      if (l7) entry.l7 = l7;
      out.push(entry);
    }
  }
  return out;
}

/** `10.0.0.0/8` as given, a bare address as its host route (/32, /128); text already checked. */
export function normaliseCidr(text: string): string {
  const c = parseCidr(text);
  if (!c) throw new Error(`unvalidated CIDR ${text}`);
  return `${c.address}/${c.prefix}`;
}

/**
 * A namespaced policy protects only workloads of its own namespace, whatever its
 * endpointSelector says about namespaces (as Cilium forces a CNP's endpointSelector): otherwise
 * a policy in one namespace could open ports of workloads in another.
 */
function ownNamespaceOnly(s: LabelSelectorSpec): LabelSelectorSpec {
  const matchLabels = Object.fromEntries(Object.entries(s.matchLabels ?? {}).filter(([k]) => k !== NAMESPACE_LABEL));
  const matchExpressions = (s.matchExpressions ?? []).filter((e) => e.key !== NAMESPACE_LABEL);
  return { ...s, matchLabels, matchExpressions };
}

/** Where rule `i` of a direction was written, as its compiled rules will name it. */
export function ruleOrigin(p: PolicyResource, dir: 'ingress' | 'egress', i: number): PolicyOrigin {
  const o: PolicyOrigin = { policy: resourceName(p) };
  if (p.source) {
    o.file = p.source.file;
    o.line = p.source.lineOf ? p.source.lineOf(['spec', dir, i]) : p.source.line;
  }
  return o;
}

export function compilePolicyRules(p: PolicyResource): PolicyRules {
  const ns = p.kind === 'L7Policy' ? p.namespace : undefined;
  const sel = (s: LabelSelectorSpec): Selector => compileSelector(s, ns);
  const subject = ns === undefined ? sel(p.spec.endpointSelector) : compileSelector(ownNamespaceOnly(p.spec.endpointSelector), ns);
  const directional = (dir: 'ingress' | 'egress', i: number, endpoints: LabelSelectorSpec[] | undefined, cidrs: string[] | undefined, toPorts: PortRuleSpec[] | undefined): DirectionalRule => ({
    origin: ruleOrigin(p, dir, i),
    any: !endpoints?.length && !cidrs?.length,
    peers: (endpoints ?? []).map(sel),
    cidrs: (cidrs ?? []).map(normaliseCidr),
    ports: compilePorts(toPorts),
  });
  return {
    key: `${p.kind}/${resourceName(p)}`,
    subject,
    enforcesIngress: p.spec.ingress !== undefined,
    enforcesEgress: p.spec.egress !== undefined,
    ingress: (p.spec.ingress ?? []).map((r, i) => directional('ingress', i, r.fromEndpoints, r.fromCIDR, r.toPorts)),
    egress: (p.spec.egress ?? []).map((r, i) => directional('egress', i, r.toEndpoints, r.toCIDR, r.toPorts)),
  };
}
