import type { CidrSet, L7Rules, PolicyOrigin } from './compiled';
import { compileL7 } from './l7';
import {
  lineOf,
  NAMESPACE_LABEL,
  resourceName,
  type CidrRuleSpec,
  type EntitySpec,
  type LabelSelectorSpec,
  type PolicyResource,
  type PortRuleSpec,
  type RuleSection,
} from './model';
import { compileSelector, type Selector } from './selector';
import { tryParseCidr } from '../net/cidr';
import { parsePortNumber } from './semantic-checks';
import { grpcJsRefusals } from './enforceability';
import { formatPath } from '../json/path';

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
  ingressDeny: DirectionalRule[];
  egressDeny: DirectionalRule[];
}

export const RULE_SECTIONS = ['ingress', 'egress', 'ingressDeny', 'egressDeny'] as const;

export interface DirectionalRule {
  origin: PolicyOrigin;
  /** No endpoint selector and no CIDR: every peer. */
  any: boolean;
  peers: Selector[];
  cidrs: string[];
  cidrSets: CidrSet[];
  /** The `world` entity: every address that is not a workload's (resolved by the engine). */
  world: boolean;
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
  const c = tryParseCidr(text);
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
export function ruleOrigin(p: PolicyResource, dir: RuleSection, i: number): PolicyOrigin {
  const o: PolicyOrigin = { policy: resourceName(p), rule: { section: dir, index: i } };
  const source = p.source;
  if (source) {
    o.file = source.file;
    o.line = lineOf(source, ['spec', dir, i]);
  }
  const refused = dir === 'ingress' || dir === 'ingressDeny' ? grpcJsRefusals(p.spec, dir, i) : [];
  if (refused.length > 0)
    o.grpcJsRefusals = refused.map((e) => ({ field: formatPath(e.path), line: source ? lineOf(source, e.path) : undefined, message: e.message }));
  return o;
}

/** Every workload of every namespace: the `cluster` entity, and what `world` excludes. */
export const CLUSTER_SELECTOR: Selector = compileSelector({ matchExpressions: [{ key: NAMESPACE_LABEL, operator: 'Exists' }] });

interface PeerSpec {
  endpoints?: LabelSelectorSpec[];
  cidrs?: string[];
  cidrSets?: CidrRuleSpec[];
  entities?: EntitySpec[];
  toPorts?: PortRuleSpec[];
}

function peerSpec(section: RuleSection, r: Record<string, unknown>): PeerSpec {
  const from = section === 'ingress' || section === 'ingressDeny' ? 'from' : 'to';
  return {
    endpoints: r[`${from}Endpoints`] as LabelSelectorSpec[] | undefined,
    cidrs: r[`${from}CIDR`] as string[] | undefined,
    cidrSets: r[`${from}CIDRSet`] as CidrRuleSpec[] | undefined,
    entities: r[`${from}Entities`] as EntitySpec[] | undefined,
    toPorts: r.toPorts as PortRuleSpec[] | undefined,
  };
}

export function compilePolicyRules(p: PolicyResource): PolicyRules {
  const ns = p.kind === 'L7Policy' ? p.namespace : undefined;
  const sel = (s: LabelSelectorSpec): Selector => compileSelector(s, ns);
  const subject = ns === undefined ? sel(p.spec.endpointSelector) : compileSelector(ownNamespaceOnly(p.spec.endpointSelector), ns);
  const directional = (section: RuleSection, i: number, r: PeerSpec): DirectionalRule => {
    const entities = new Set(r.entities ?? []);
    const peers = (r.endpoints ?? []).map(sel);
    if (entities.has('cluster')) peers.push(CLUSTER_SELECTOR);
    return {
      origin: ruleOrigin(p, section, i),
      any: entities.has('all') || (!r.endpoints?.length && !r.cidrs?.length && !r.cidrSets?.length && entities.size === 0),
      peers,
      cidrs: (r.cidrs ?? []).map(normaliseCidr),
      cidrSets: (r.cidrSets ?? []).map((c) => ({ cidr: normaliseCidr(c.cidr), except: (c.except ?? []).map(normaliseCidr) })),
      world: entities.has('world'),
      ports: compilePorts(r.toPorts),
    };
  };
  const section = (name: RuleSection): DirectionalRule[] =>
    ((p.spec[name] ?? []) as unknown as Record<string, unknown>[]).map((r, i) => directional(name, i, peerSpec(name, r)));
  return {
    key: `${p.kind}/${resourceName(p)}`,
    subject,
    // Cilium: a direction with allow or deny rules (even an empty list) is default deny.
    enforcesIngress: p.spec.ingress !== undefined || p.spec.ingressDeny !== undefined,
    enforcesEgress: p.spec.egress !== undefined || p.spec.egressDeny !== undefined,
    ingress: section('ingress'),
    egress: section('egress'),
    ingressDeny: section('ingressDeny'),
    egressDeny: section('egressDeny'),
  };
}
