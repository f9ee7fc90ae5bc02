import { LineCounter, parseDocument } from 'yaml';
import type { PathSegment } from '../json/path';
import type { Diagnostic } from '../policy/diagnostics';
import { formatDiagnostic } from '../policy/diagnostics';
import type { BoundWorkload } from '../policy/engine';
import { isMetadataKey, parseMetadataKey } from '../policy/proxy-binding';
import { DocumentPositions } from '../policy/yaml-positions';
import { readInputFile } from '../input-file';
import type { NodeAuthorizer } from '../xds/stream-session';
import { certificateIdentities, certificateIdentityAuthorizer } from '../xds/tls';
import { clientText } from '../log';

/**
 * What the holder of a client certificate identity may bind through its node metadata, beyond
 * what its SPIFFE ID already allows. A workload is covered when any listed item matches it.
 */
export interface BindingGrant {
  /** A URI or DNS subjectAltName, or the CN, of the client certificate; compared exactly. */
  identity: string;
  /** Every workload of these namespaces. */
  namespaces: readonly string[];
  /** `namespace/serviceAccount`. */
  serviceAccounts: readonly string[];
  /** `namespace/name`. */
  workloads: readonly string[];
  /**
   * Metadata bindings: a workload whose `proxy.nodeMetadata` has all these pairs (a per-node
   * proxy granted `NODE_NAME: node-1` serves whatever is scheduled on node-1).
   */
  nodeMetadata?: Readonly<Record<string, string>>;
}

export interface BindingScope {
  /** Trust domain of the SPIFFE IDs that grant their own namespace and service account. */
  trustDomain: string;
  grants: readonly BindingGrant[];
}

const SPIFFE = /^spiffe:\/\/([^/]+)\/ns\/([^/]+)\/sa\/([^/]+)$/;

function covers(grant: BindingGrant, w: BoundWorkload): boolean {
  const r = w.workload;
  const sa = r.spec.serviceAccount ?? 'default';
  if (grant.namespaces.includes(r.namespace)) return true;
  if (grant.serviceAccounts.includes(`${r.namespace}/${sa}`)) return true;
  if (grant.workloads.includes(`${r.namespace}/${r.name}`)) return true;
  const wanted = grant.nodeMetadata;
  if (!wanted || !isMetadataKey(w.binding)) return false;
  const bound = parseMetadataKey(w.binding);
  return Object.entries(wanted).every(([k, v]) => bound[k] === v);
}

/** Whether one of the certificate identities may bind this workload. */
export function identitiesCover(identities: readonly string[], w: BoundWorkload, scope: BindingScope): boolean {
  const sa = w.workload.spec.serviceAccount ?? 'default';
  for (const id of identities) {
    const m = SPIFFE.exec(id);
    if (m && m[1] === scope.trustDomain && m[2] === w.workload.namespace && m[3] === sa) return true;
    for (const g of scope.grants) if (g.identity === id && covers(g, w)) return true;
  }
  return false;
}

/**
 * Why a node authenticated by these certificate identities may not be served these workloads,
 * or undefined. A workload bound by the node id itself is the operator's choice of proxy, and
 * the certificate already proved that id; a metadata binding is the client's claim, so the
 * certificate must cover the workload it brings.
 */
export function bindingDenial(nodeId: string, identities: readonly string[], bound: readonly BoundWorkload[], scope: BindingScope): string | undefined {
  for (const w of bound) {
    if (!isMetadataKey(w.binding) || identitiesCover(identities, w, scope)) continue;
    const r = w.workload;
    const metadata = w.binding.slice('metadata:'.length);
    return (
      `node "${clientText(nodeId)}" may not bind workload ${r.namespace}/${r.name} (service account ${r.spec.serviceAccount ?? 'default'}) ` +
      `through metadata ${clientText(metadata)}: its certificate (${identities.map((i) => clientText(i)).join(', ')}) is not granted it ` +
      `(a SPIFFE ID spiffe://${scope.trustDomain}/ns/${r.namespace}/sa/${r.spec.serviceAccount ?? 'default'} or a binding grant)`
    );
  }
  return undefined;
}

export class BindingGrantsError extends Error {
  constructor(readonly diagnostics: Diagnostic[]) {
    super(diagnostics.map(formatDiagnostic).join('\n'));
  }
}

const FIELDS = new Set(['identity', 'namespaces', 'serviceAccounts', 'workloads', 'nodeMetadata']);

/**
 * Reads a binding grants file:
 *
 *     grants:
 *       - identity: spiffe://cluster.local/ns/kube-system/sa/node-proxy
 *         nodeMetadata: {NODE_NAME: node-1}
 *       - identity: ops-gateway.example
 *         namespaces: [ops]
 *
 * Anything else is refused with file:line:field.
 */
export function loadBindingGrants(file: string): BindingGrant[] {
  const text = readInputFile(file);
  const lines = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lines, prettyErrors: false });
  const positions = new DocumentPositions(doc, lines);
  const problems: Diagnostic[] = [];
  const problem = (path: PathSegment[], message: string): void => {
    const { line, column } = positions.locate(path);
    problems.push({ file, line, column, path: path.map((p, i) => (typeof p === 'number' ? `[${p}]` : i === 0 ? p : `.${p}`)).join(''), message });
  };
  if (doc.errors.length > 0) {
    const { line, col } = doc.errors[0].linePos?.[0] ?? { line: 1, col: 1 };
    throw new BindingGrantsError([{ file, line, column: col, path: '', message: doc.errors[0].message.split('\n')[0] }]);
  }
  const root = doc.toJS() as unknown;
  const list = (root as { grants?: unknown } | null)?.grants;
  if (!root || typeof root !== 'object' || Object.keys(root).some((k) => k !== 'grants') || !Array.isArray(list)) {
    problem(['grants'], 'the file must hold one key, grants, a list of {identity, namespaces, serviceAccounts, workloads, nodeMetadata}');
    throw new BindingGrantsError(problems);
  }
  const grants: BindingGrant[] = [];
  list.forEach((raw: unknown, i: number) => {
    if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return problem(['grants', i], 'must be a map');
    const g = raw as Record<string, unknown>;
    for (const k of Object.keys(g)) if (!FIELDS.has(k)) problem(['grants', i, k], `unknown field (known: ${[...FIELDS].join(', ')})`);
    if (typeof g.identity !== 'string' || g.identity === '') problem(['grants', i, 'identity'], 'must be a certificate identity (URI or DNS SAN, or CN)');
    const strings = (field: string, shape?: RegExp): string[] => {
      const v = g[field];
      if (v === undefined) return [];
      if (!Array.isArray(v) || v.some((s) => typeof s !== 'string' || (shape && !shape.test(s)))) {
        problem(['grants', i, field], `must be a list of ${shape ? 'namespace/name strings' : 'strings'}`);
        return [];
      }
      return v as string[];
    };
    const namespaces = strings('namespaces');
    const serviceAccounts = strings('serviceAccounts', /^[^/]+\/[^/]+$/);
    const workloads = strings('workloads', /^[^/]+\/[^/]+$/);
    let nodeMetadata: Record<string, string> | undefined;
    if (g.nodeMetadata !== undefined) {
      const m = g.nodeMetadata;
      if (!m || typeof m !== 'object' || Array.isArray(m) || Object.keys(m).length === 0 || Object.values(m).some((v) => typeof v !== 'string')) {
        problem(['grants', i, 'nodeMetadata'], 'must be a non-empty map of strings');
      } else nodeMetadata = m as Record<string, string>;
    }
    if (namespaces.length + serviceAccounts.length + workloads.length === 0 && !nodeMetadata) {
      problem(['grants', i], 'grants nothing: give namespaces, serviceAccounts, workloads or nodeMetadata');
    }
    grants.push({ identity: String(g.identity), namespaces, serviceAccounts, workloads, nodeMetadata });
  });
  if (problems.length > 0) throw new BindingGrantsError(problems);
  return grants;
}

/** What the authorizer asks of the policy side: the workloads a claim would bind. */
export interface BoundWorkloads {
  workloadsBoundTo(nodeId: string, nodeMetadata?: Readonly<Record<string, unknown>>): BoundWorkload[];
}

/**
 * mTLS admission of a node's claim: its id must match its certificate (`nodeId`, by default
 * `certificateIdentityAuthorizer()`), and every workload its metadata binds must be covered by
 * the certificate's SPIFFE ID or a grant. Asked again before each new configuration is pushed,
 * so a later policy edit that binds an uncovered workload to a connected node is withheld too.
 */
export function bindingAuthorizer(policy: BoundWorkloads, scope: BindingScope, nodeId: NodeAuthorizer = certificateIdentityAuthorizer()): NodeAuthorizer {
  return (node, call) => nodeId(node, call) ?? bindingDenial(node.id, certificateIdentities(call), policy.workloadsBoundTo(node.id, node.metadata), scope);
}
