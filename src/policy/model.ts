/**
 * The policy and workload resources as written (after validation), shared by the loader, the
 * engine and, later, the Kubernetes watcher. Field names follow CiliumNetworkPolicy.
 */
import { formatPath, type PathSegment } from '../json/path';

/** Label every workload carries implicitly; selectors that do not constrain it get the policy's namespace. */
export const NAMESPACE_LABEL = 'meshaccel.io/namespace';
/** Label carrying the workload's service account, so policy may select by it. */
export const SERVICE_ACCOUNT_LABEL = 'meshaccel.io/serviceaccount';

export type LabelMap = Readonly<Record<string, string>>;

export type SelectorOperator = 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';

export interface LabelSelectorRequirement {
  key: string;
  operator: SelectorOperator;
  values?: string[];
}

export interface LabelSelectorSpec {
  matchLabels?: Record<string, string>;
  matchExpressions?: LabelSelectorRequirement[];
}

export interface PortProtocolSpec {
  port: number | string;
  protocol?: 'TCP' | 'UDP' | 'ANY';
}

export interface HttpHeaderMatchSpec {
  name: string;
  value?: string;
  mismatch?: 'LOG' | 'ADD' | 'DELETE' | 'REPLACE';
}

export interface HttpRuleSpec {
  method?: string;
  path?: string;
  host?: string;
  headers?: string[];
  headerMatches?: HttpHeaderMatchSpec[];
}

export interface KafkaRuleSpec {
  role?: string;
  apiKey?: string;
  apiVersion?: number | string;
  clientID?: string;
  topic?: string;
}

export interface L7RulesSpec {
  http?: HttpRuleSpec[];
  kafka?: KafkaRuleSpec[];
}

export interface PortRuleSpec {
  ports: PortProtocolSpec[];
  rules?: L7RulesSpec;
}

/** Cilium's CIDRRule: `cidr` minus every range in `except`. */
export interface CidrRuleSpec {
  cidr: string;
  except?: string[];
}

/** Cilium's entity names; meshaccel enforces `all`, `world` and `cluster` (the others are refused). */
export type EntitySpec = 'all' | 'world' | 'cluster' | 'host' | 'remote-node' | 'kube-apiserver' | 'init' | 'health' | 'unmanaged' | 'ingress';

export const SUPPORTED_ENTITIES: readonly EntitySpec[] = ['all', 'world', 'cluster'];

export interface IngressRuleSpec {
  fromEndpoints?: LabelSelectorSpec[];
  fromCIDR?: string[];
  fromCIDRSet?: CidrRuleSpec[];
  fromEntities?: EntitySpec[];
  toPorts?: PortRuleSpec[];
}

export interface EgressRuleSpec {
  toEndpoints?: LabelSelectorSpec[];
  toCIDR?: string[];
  toCIDRSet?: CidrRuleSpec[];
  toEntities?: EntitySpec[];
  toPorts?: PortRuleSpec[];
}

export interface L7PolicySpec {
  description?: string;
  endpointSelector: LabelSelectorSpec;
  ingress?: IngressRuleSpec[];
  egress?: EgressRuleSpec[];
  /** L3/L4 only; a match is denied whatever the allow rules say. */
  ingressDeny?: IngressRuleSpec[];
  egressDeny?: EgressRuleSpec[];
}

export type RuleSection = 'ingress' | 'egress' | 'ingressDeny' | 'egressDeny';

export interface WorkloadSpec {
  addresses: string[];
  serviceAccount?: string;
  proxy: { nodeId?: string; nodeMetadata?: Record<string, string> };
}

/** Where a resource came from, for error messages and for `PolicyOrigin`. */
export interface ResourceSource {
  file: string;
  /** 1-based document index in the file. */
  document: number;
  line: number;
  /**
   * Lines of the fields diagnostics and compiled rules name (`formatPath` → line): plain data, so
   * a resource validated in a worker thread crosses to the main thread whole. Absent when the
   * resource was not read from YAML. Read it with `lineOf`.
   */
  lines?: Readonly<Record<string, number>>;
}

/**
 * Where a field of a resource was written: its own line, else its deepest recorded ancestor's,
 * else the document's.
 */
export function lineOf(source: ResourceSource, path: readonly PathSegment[]): number {
  if (source.lines) {
    for (let n = path.length; n >= 0; n--) {
      const line = source.lines[formatPath(path.slice(0, n))];
      if (line !== undefined) return line;
    }
  }
  return source.line;
}

export interface PolicyResource {
  kind: 'L7Policy' | 'ClusterL7Policy';
  name: string;
  /** Absent for ClusterL7Policy. */
  namespace?: string;
  spec: L7PolicySpec;
  source?: ResourceSource;
}

export interface WorkloadResource {
  kind: 'Workload';
  name: string;
  namespace: string;
  labels: Record<string, string>;
  spec: WorkloadSpec;
  source?: ResourceSource;
}

export type Resource = PolicyResource | WorkloadResource;

/** `namespace/name` for namespaced resources, `name` for cluster-scoped ones. */
export function resourceName(r: { name: string; namespace?: string }): string {
  return r.namespace === undefined ? r.name : `${r.namespace}/${r.name}`;
}

/** Unique key across kinds, e.g. `L7Policy/default/api`. */
export function resourceKey(r: Resource): string {
  return `${r.kind}/${resourceName(r)}`;
}
