import * as net from 'net';
import type { PathSegment } from './diagnostics';
import { kafkaApiKey, kafkaRoleKeys, parseKafkaApiVersion } from './kafka';
import type { LabelSelectorSpec, L7PolicySpec, PortRuleSpec, WorkloadSpec } from './model';
import { re2SyntaxError } from './re2';

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

function checkSelector(sel: LabelSelectorSpec, at: PathSegment[], errors: SemanticError[]): void {
  (sel.matchExpressions ?? []).forEach((req, i) => {
    const hasValues = (req.values?.length ?? 0) > 0;
    if ((req.operator === 'In' || req.operator === 'NotIn') && !hasValues) {
      errors.push({ path: [...at, 'matchExpressions', i, 'values'], message: `operator ${req.operator} needs at least one value` });
    }
    if ((req.operator === 'Exists' || req.operator === 'DoesNotExist') && hasValues) {
      errors.push({ path: [...at, 'matchExpressions', i, 'values'], message: `operator ${req.operator} takes no values` });
    }
  });
}

function checkCidr(text: string, at: PathSegment[], errors: SemanticError[]): void {
  if (parseCidr(text) === undefined) errors.push({ path: at, message: `"${text}" is not an IPv4 or IPv6 CIDR` });
}

/** Normalises `10.0.0.0/8`, `10.1.2.3` (→ /32) and IPv6 forms; undefined if invalid. */
export function parseCidr(text: string): { address: string; prefix: number; family: 4 | 6 } | undefined {
  const slash = text.indexOf('/');
  const address = slash < 0 ? text : text.slice(0, slash);
  const family = net.isIP(address);
  if (family !== 4 && family !== 6) return undefined;
  const max = family === 4 ? 32 : 128;
  let prefix = max;
  if (slash >= 0) {
    const p = text.slice(slash + 1);
    if (!/^[0-9]{1,3}$/.test(p) || Number(p) > max) return undefined;
    prefix = Number(p);
  }
  return { address, prefix, family };
}

export function parsePortNumber(port: number | string): number | undefined {
  const n = typeof port === 'number' ? port : /^[0-9]{1,5}$/.test(port) ? Number(port) : NaN;
  return Number.isInteger(n) && n >= 1 && n <= 65535 ? n : undefined;
}

function checkRegex(value: string | undefined, at: PathSegment[], errors: SemanticError[]): void {
  if (value === undefined) return;
  const problem = re2SyntaxError(value);
  if (problem !== undefined) errors.push({ path: at, message: `invalid RE2 regular expression: ${problem}` });
}

function checkPortRule(pr: PortRuleSpec, at: PathSegment[], errors: SemanticError[]): void {
  const hasL7 = pr.rules !== undefined && (pr.rules.http !== undefined || pr.rules.kafka !== undefined);
  pr.ports.forEach((p, i) => {
    if (parsePortNumber(p.port) === undefined) errors.push({ path: [...at, 'ports', i, 'port'], message: `${JSON.stringify(p.port)} is not a port number (1-65535)` });
    if (hasL7 && p.protocol === 'UDP') errors.push({ path: [...at, 'ports', i, 'protocol'], message: 'L7 rules apply to TCP only; use TCP or ANY' });
  });
  pr.rules?.http?.forEach((h, i) => {
    const base = [...at, 'rules', 'http', i];
    checkRegex(h.method, [...base, 'method'], errors);
    checkRegex(h.path, [...base, 'path'], errors);
    checkRegex(h.host, [...base, 'host'], errors);
  });
  pr.rules?.kafka?.forEach((k, i) => {
    const base = [...at, 'rules', 'kafka', i];
    if (k.role && k.apiKey) errors.push({ path: [...base, 'apiKey'], message: `role "${k.role}" and apiKey "${k.apiKey}" are mutually exclusive; give one` });
    if (k.role && kafkaRoleKeys(k.role) === undefined) errors.push({ path: [...base, 'role'], message: `unknown Kafka role "${k.role}" (expected produce or consume)` });
    if (k.apiKey && kafkaApiKey(k.apiKey) === undefined) errors.push({ path: [...base, 'apiKey'], message: `unknown Kafka API key "${k.apiKey}" (names such as produce, fetch, offsets, metadata, offsetcommit, offsetfetch, findcoordinator, joingroup, heartbeat, leavegroup, syncgroup, apiversions, createtopics, deletetopics)` });
    if (k.apiVersion !== undefined && k.apiVersion !== '' && parseKafkaApiVersion(k.apiVersion) === undefined) {
      errors.push({ path: [...base, 'apiVersion'], message: `${JSON.stringify(k.apiVersion)} is not a Kafka API version (0-32767)` });
    }
  });
}

export function checkPolicySpec(spec: L7PolicySpec): SemanticError[] {
  const errors: SemanticError[] = [];
  checkSelector(spec.endpointSelector, ['spec', 'endpointSelector'], errors);
  spec.ingress?.forEach((r, i) => {
    const at: PathSegment[] = ['spec', 'ingress', i];
    r.fromEndpoints?.forEach((s, j) => checkSelector(s, [...at, 'fromEndpoints', j], errors));
    r.fromCIDR?.forEach((c, j) => checkCidr(c, [...at, 'fromCIDR', j], errors));
    r.toPorts?.forEach((p, j) => checkPortRule(p, [...at, 'toPorts', j], errors));
  });
  spec.egress?.forEach((r, i) => {
    const at: PathSegment[] = ['spec', 'egress', i];
    r.toEndpoints?.forEach((s, j) => checkSelector(s, [...at, 'toEndpoints', j], errors));
    r.toCIDR?.forEach((c, j) => checkCidr(c, [...at, 'toCIDR', j], errors));
    r.toPorts?.forEach((p, j) => checkPortRule(p, [...at, 'toPorts', j], errors));
  });
  return errors;
}

export function checkWorkloadSpec(spec: WorkloadSpec): SemanticError[] {
  const errors: SemanticError[] = [];
  spec.addresses.forEach((a, i) => {
    if (net.isIP(a) === 0) errors.push({ path: ['spec', 'addresses', i], message: `"${a}" is not an IPv4 or IPv6 address` });
  });
  if (spec.serviceAccount !== undefined && !DNS_SUBDOMAIN.test(spec.serviceAccount)) {
    errors.push({ path: ['spec', 'serviceAccount'], message: 'must be a DNS-1123 subdomain' });
  }
  const byId = spec.proxy.nodeId !== undefined;
  const byMeta = spec.proxy.nodeMetadata !== undefined;
  if (byId === byMeta) errors.push({ path: ['spec', 'proxy'], message: 'give exactly one of nodeId or nodeMetadata' });
  return errors;
}
