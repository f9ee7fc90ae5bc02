import type { PathSegment } from '../json/path';
import { tryParseCidr } from '../net/cidr';
import { kafkaApiKey, kafkaRoleKeys, parseKafkaApiVersion } from './kafka';
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
  const hasL7 = rules.http !== undefined || rules.kafka !== undefined;
  list(pr.ports).forEach((item, i) => {
    const p = record(item);
    const port = p.port;
    if ((typeof port === 'number' || typeof port === 'string') && parsePortNumber(port) === undefined) {
      errors.push({ path: [...at, 'ports', i, 'port'], message: `${JSON.stringify(port)} is not a port number (1-65535)` });
    }
    if (hasL7 && p.protocol === 'UDP') errors.push({ path: [...at, 'ports', i, 'protocol'], message: 'L7 rules apply to TCP only; use TCP or ANY' });
  });
  list(rules.http).forEach((item, i) => {
    const h = record(item);
    const base = [...at, 'rules', 'http', i];
    checkRegex(h.method, [...base, 'method'], errors);
    checkRegex(h.path, [...base, 'path'], errors);
    checkRegex(h.host, [...base, 'host'], errors);
  });
  list(rules.kafka).forEach((item, i) => {
    const k = record(item);
    const base = [...at, 'rules', 'kafka', i];
    const role = text(k.role);
    const apiKey = text(k.apiKey);
    if (role && apiKey) errors.push({ path: [...base, 'apiKey'], message: `role "${role}" and apiKey "${apiKey}" are mutually exclusive; give one` });
    if (role && kafkaRoleKeys(role) === undefined) errors.push({ path: [...base, 'role'], message: `unknown Kafka role "${role}" (expected produce or consume)` });
    if (apiKey && kafkaApiKey(apiKey) === undefined) errors.push({ path: [...base, 'apiKey'], message: `unknown Kafka API key "${apiKey}" (names such as produce, fetch, offsets, metadata, offsetcommit, offsetfetch, findcoordinator, joingroup, heartbeat, leavegroup, syncgroup, apiversions, createtopics, deletetopics)` });
    const version = k.apiVersion;
    if ((typeof version === 'number' || (typeof version === 'string' && version !== '')) && parseKafkaApiVersion(version) === undefined) {
      errors.push({ path: [...base, 'apiVersion'], message: `${JSON.stringify(version)} is not a Kafka API version (0-32767)` });
    }
  });
}

export function checkPolicySpec(value: Json): SemanticError[] {
  const errors: SemanticError[] = [];
  const spec = record(value);
  checkSelector(spec.endpointSelector, ['spec', 'endpointSelector'], errors);
  list(spec.ingress).forEach((item, i) => {
    const r = record(item);
    const at: PathSegment[] = ['spec', 'ingress', i];
    list(r.fromEndpoints).forEach((s, j) => checkSelector(s, [...at, 'fromEndpoints', j], errors));
    list(r.fromCIDR).forEach((c, j) => checkCidr(c, [...at, 'fromCIDR', j], errors));
    list(r.toPorts).forEach((p, j) => checkPortRule(p, [...at, 'toPorts', j], errors));
  });
  list(spec.egress).forEach((item, i) => {
    const r = record(item);
    const at: PathSegment[] = ['spec', 'egress', i];
    list(r.toEndpoints).forEach((s, j) => checkSelector(s, [...at, 'toEndpoints', j], errors));
    list(r.toCIDR).forEach((c, j) => checkCidr(c, [...at, 'toCIDR', j], errors));
    list(r.toPorts).forEach((p, j) => checkPortRule(p, [...at, 'toPorts', j], errors));
  });
  return settleRegexes(errors);
}

export function checkWorkloadSpec(value: Json): SemanticError[] {
  const errors: SemanticError[] = [];
  const spec = record(value);
  list(spec.addresses).forEach((a, i) => {
    // The parser the engine turns addresses into host routes with, so what passes here converts.
    if (typeof a === 'string' && (a.includes('/') || tryParseCidr(a) === undefined)) errors.push({ path: ['spec', 'addresses', i], message: `"${a}" is not an IPv4 or IPv6 address` });
  });
  const sa = text(spec.serviceAccount);
  if (sa !== undefined && !DNS_SUBDOMAIN.test(sa)) errors.push({ path: ['spec', 'serviceAccount'], message: 'must be a DNS-1123 subdomain' });
  if (spec.proxy !== undefined) {
    const proxy = record(spec.proxy);
    if ((proxy.nodeId !== undefined) === (proxy.nodeMetadata !== undefined)) errors.push({ path: ['spec', 'proxy'], message: 'give exactly one of nodeId or nodeMetadata' });
  }
  return errors;
}
