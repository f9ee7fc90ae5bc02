import type { PathSegment } from '../json/path';
import { tryParseCidr, type Cidr } from '../net/cidr';
import { SUPPORTED_ENTITIES } from './model';
import { L7_KINDS, l7Protocol, type SpecCheck } from './l7';
import { re2SyntaxErrors, regexTooLong } from './re2';

/*
 * These checks also run on documents that failed the schema (so one run reports every error),
 * hence they read fields through `list`/`text`/`record`, which yield nothing for wrong shapes
 * the schema has already reported.
 */
type Json = unknown;

function list(v: Json): Json[] {
  return Array.isArray(v) ? v : [];
}

function text(v: Json): string | undefined {
  return typeof v === 'string' ? v : undefined;
}

function record(v: Json): Record<string, Json> {
  return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, Json>) : {};
}

/** A problem the schema cannot express, at a field path of the document. */
export interface SemanticError {
  path: PathSegment[];
  message: string;
}

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export function checkMetadata(metadata: Record<string, unknown>, scope: 'Namespaced' | 'Cluster', errors: SemanticError[]): void {
  const { name, namespace, labels } = metadata;
  if (name === undefined) errors.push({ path: ['metadata', 'name'], message: 'required field is missing' });
  else if (typeof name !== 'string' || name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    errors.push({ path: ['metadata', 'name'], message: 'must be a DNS-1123 subdomain (lower-case letters, digits, "-" and ".", at most 253 characters)' });
  }
  if (scope === 'Cluster' && namespace !== undefined) {
    errors.push({ path: ['metadata', 'namespace'], message: 'a cluster-scoped resource has no namespace' });
  } else if (namespace !== undefined && (typeof namespace !== 'string' || namespace.length > 63 || !DNS_LABEL.test(namespace))) {
    errors.push({ path: ['metadata', 'namespace'], message: 'must be a DNS-1123 label (lower-case letters, digits and "-", at most 63 characters)' });
  }
  if (labels !== undefined) {
    if (!labels || typeof labels !== 'object' || Array.isArray(labels)) errors.push({ path: ['metadata', 'labels'], message: 'must be a map of strings' });
    else {
      for (const [k, v] of Object.entries(labels)) {
        if (typeof v !== 'string') errors.push({ path: ['metadata', 'labels', k], message: 'label values must be strings (quote numbers and booleans)' });
      }
    }
  }
}

function checkSelector(sel: Json, at: PathSegment[], errors: SemanticError[]): void {
  list(record(sel).matchExpressions).forEach((item, i) => {
    const req = record(item);
    const hasValues = list(req.values).length > 0;
    if ((req.operator === 'In' || req.operator === 'NotIn') && !hasValues) {
      errors.push({ path: [...at, 'matchExpressions', i, 'values'], message: `operator ${req.operator} needs at least one value` });
    }
    if ((req.operator === 'Exists' || req.operator === 'DoesNotExist') && hasValues) {
      errors.push({ path: [...at, 'matchExpressions', i, 'values'], message: `operator ${req.operator} takes no values` });
    }
  });
}

function checkCidr(value: Json, at: PathSegment[], errors: SemanticError[]): void {
  const cidr = text(value);
  if (cidr !== undefined && tryParseCidr(cidr) === undefined) errors.push({ path: at, message: `"${cidr}" is not an IPv4 or IPv6 CIDR` });
}

export function parsePortNumber(port: number | string): number | undefined {
  const n = typeof port === 'number' ? port : /^[0-9]{1,5}$/.test(port) ? Number(port) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
}

/** A regex error not yet decided: RE2 checks a whole spec's patterns in one batch (see settleRegexes). */
type PendingError = SemanticError & { pattern?: string };

function checkRegex(value: Json, at: PathSegment[], errors: SemanticError[]): void {
  const pattern = text(value);
  // A longer one is the schema's error (maxLength); compiling it would only exhaust RE2's heap.
  if (pattern === undefined || regexTooLong(pattern)) return;
  // A placeholder, so that the errors keep their order once the verdicts are in.
  const placeholder: PendingError = { path: at, message: '', pattern };
  errors.push(placeholder);
}

/** Asks RE2 about every pending pattern at once; valid ones leave no error. */
function settleRegexes(errors: PendingError[]): SemanticError[] {
  const pending = errors.filter((e) => e.pattern !== undefined);
  if (pending.length === 0) return errors;
  const problems = re2SyntaxErrors(pending.map((e) => e.pattern as string));
  const verdict = new Map(pending.map((e, i) => [e, problems[i]]));
  const out: SemanticError[] = [];
  for (const e of errors) {
    if (e.pattern === undefined) out.push(e);
    else {
      const problem = verdict.get(e);
      if (problem !== undefined) out.push({ path: e.path, message: `invalid RE2 regular expression: ${problem}` });
    }
  }
  return out;
}

function checkPortRule(value: Json, at: PathSegment[], errors: SemanticError[]): void {
  const pr = record(value);
  const rules = record(pr.rules);
  const hasL7 = L7_KINDS.some((kind) => rules[kind] !== undefined);
  list(pr.ports).forEach((item, i) => {
    const p = record(item);
    const port = p.port;
    if ((typeof port === 'number' || typeof port === 'string') && parsePortNumber(port) === undefined) {
      errors.push({ path: [...at, 'ports', i, 'port'], message: `${JSON.stringify(port)} is not a port number (1-65535)` });
    }
    if (hasL7 && p.protocol === 'UDP') errors.push({ path: [...at, 'ports', i, 'protocol'], message: 'L7 rules apply to TCP only; use TCP or ANY' });
  });
  const check: SpecCheck = { error: (path, message) => errors.push({ path, message }), regex: (v, path) => checkRegex(v, path, errors) };
  for (const kind of L7_KINDS) {
    list(rules[kind]).forEach((item, i) => l7Protocol(kind).check(record(item), [...at, 'rules', kind, i], check));
  }
}

/** `except` ranges must lie inside their `cidr` (as Cilium requires), or the exception means nothing. */
function checkCidrSet(value: Json, at: PathSegment[], errors: SemanticError[]): void {
  const r = record(value);
  checkCidr(r.cidr, [...at, 'cidr'], errors);
  const outer = text(r.cidr) === undefined ? undefined : tryParseCidr(text(r.cidr) as string);
  list(r.except).forEach((e, k) => {
    checkCidr(e, [...at, 'except', k], errors);
    const inner = text(e) === undefined ? undefined : tryParseCidr(text(e) as string);
    if (outer && inner && !cidrContains(outer, inner)) errors.push({ path: [...at, 'except', k], message: `"${text(e)}" is not inside ${text(r.cidr)}` });
  });
}

function cidrContains(outer: Cidr, inner: Cidr): boolean {
  if (outer.family !== inner.family || inner.prefix < outer.prefix) return false;
  const bits = (c: Cidr): bigint => addressBits(c);
  const width = outer.family === 4 ? 32 : 128;
  const shift = BigInt(width - outer.prefix);
  try {
    return bits(outer) >> shift === bits(inner) >> shift;
  } catch {
    // An IPv6 text form this reader does not know (embedded IPv4): the engine's matcher decides.
    return true;
  }
}

function addressBits(c: Cidr): bigint {
  if (c.family === 4) return c.address.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n);
  const [head, tail = ''] = c.address.includes('::') ? c.address.split('::') : [c.address, undefined as unknown as string];
  const h = head ? head.split(':') : [];
  const t = c.address.includes('::') && tail ? tail.split(':') : [];
  const groups = c.address.includes('::') ? [...h, ...Array(8 - h.length - t.length).fill('0'), ...t] : h;
  return groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n);
}

const DENY_SECTIONS = new Set(['ingressDeny', 'egressDeny']);

function checkEntities(value: Json, at: PathSegment[], errors: SemanticError[]): void {
  list(value).forEach((e, k) => {
    if (typeof e === 'string' && !(SUPPORTED_ENTITIES as readonly string[]).includes(e)) {
      errors.push({
        path: [...at, k],
        message: `entity "${e}" is not enforced by meshaccel (it has no notion of nodes, hosts or health endpoints); use ${SUPPORTED_ENTITIES.join(', ')} or CIDRs`,
      });
    }
  });
}

export function checkPolicySpec(value: Json): SemanticError[] {
  const errors: SemanticError[] = [];
  const spec = record(value);
  checkSelector(spec.endpointSelector, ['spec', 'endpointSelector'], errors);
  for (const section of ['ingress', 'egress', 'ingressDeny', 'egressDeny'] as const) {
    const from = section.startsWith('ingress') ? 'from' : 'to';
    list(spec[section]).forEach((item, i) => {
      const r = record(item);
      const at: PathSegment[] = ['spec', section, i];
      list(r[`${from}Endpoints`]).forEach((s, j) => checkSelector(s, [...at, `${from}Endpoints`, j], errors));
      list(r[`${from}CIDR`]).forEach((c, j) => checkCidr(c, [...at, `${from}CIDR`, j], errors));
      list(r[`${from}CIDRSet`]).forEach((c, j) => checkCidrSet(c, [...at, `${from}CIDRSet`, j], errors));
      checkEntities(r[`${from}Entities`], [...at, `${from}Entities`], errors);
      list(r.toPorts).forEach((p, j) => {
        checkPortRule(p, [...at, 'toPorts', j], errors);
        if (DENY_SECTIONS.has(section) && record(p).rules !== undefined) {
          errors.push({ path: [...at, 'toPorts', j, 'rules'], message: `${section} rules are L3/L4 only (as in Cilium); L7 rules cannot deny` });
        }
      });
    });
  }
  return settleRegexes(errors);
}

export function checkWorkloadSpec(value: Json): SemanticError[] {
  const errors: SemanticError[] = [];
  const spec = record(value);
  list(spec.addresses).forEach((a, i) => {
    // The parser the engine turns addresses into host routes with, so what passes here converts.
    if (typeof a === 'string' && (a.includes('/') || tryParseCidr(a) === undefined))
      errors.push({ path: ['spec', 'addresses', i], message: `"${a}" is not an IPv4 or IPv6 address` });
  });
  const sa = text(spec.serviceAccount);
  if (sa !== undefined && !DNS_SUBDOMAIN.test(sa)) errors.push({ path: ['spec', 'serviceAccount'], message: 'must be a DNS-1123 subdomain' });
  if (spec.proxy !== undefined) {
    const proxy = record(spec.proxy);
    if ((proxy.nodeId !== undefined) === (proxy.nodeMetadata !== undefined))
      errors.push({ path: ['spec', 'proxy'], message: 'give exactly one of nodeId or nodeMetadata' });
  }
  return errors;
}
