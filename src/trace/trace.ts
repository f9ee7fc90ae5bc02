import * as grpc from '@grpc/grpc-js';
import type { CompiledProxyPolicy, PolicyOrigin } from '../policy/compiled';
import type { PolicyEngine } from '../policy/engine';
import type { RedirectConfig } from '../net/capture-config';
import { lookupType } from '../envoy/protos';
import { TypeUrl } from '../resource/type-urls';
import { buildProxyResourceJson, encodeGenerated, istioEnvoyFilterFor } from '../envoy/proxy-resources';
import { istioInboundChain, patchedIstioChain, type PatchedChain } from './istio-chain';
import { listenerName } from '../envoy/builders/listeners';
import { grpcServerListenerName } from '../envoy/builders/grpc-server';
import type { GrpcImplementation } from '../envoy/builders/grpc-js-peers';
import type { Direction } from '../envoy/builders/ecds';
import type { KafkaRequestSpec } from '../kafka/request-frame';
import { describeKafkaRules, judgeKafkaRequest, kafkaModuleFile } from './kafka';

/**
 * Judges one connection (and optionally one HTTP request on it) the way the proxy would: it
 * builds the resources that would be served to the proxy, decodes their bytes, walks the
 * capture listener's chain for the port, and runs every RBAC config on that chain through
 * gRPC's own RBAC engine (@grpc/grpc-js-xds, what XdsServer enforces with). So a trace cannot
 * drift from enforcement by reading the policy a second time.
 */

interface RbacPolicy {
  matches(info: RbacInfo): boolean;
}
interface RbacGroup {
  policies: Map<string, RbacPolicy>;
  allow: boolean;
}
interface RbacInfo {
  headers: grpc.Metadata;
  urlPath: string;
  sourceIp: string;
  destinationIp: string;
  destinationPort: number;
  tls: boolean;
  peerCertificate: null | { subject: { CN: string }; subjectaltname: string };
}

const { parseConfig } = require('@grpc/grpc-js-xds/build/src/rbac') as { parseConfig(rules: unknown): RbacGroup };

export interface HttpRequestSpec {
  method?: string;
  path?: string;
  host?: string;
  headers?: Record<string, string>;
}

export interface ConnectionSpec {
  sourceIp: string;
  destinationIp: string;
  port: number;
  /** mTLS identity of the source (`spiffe://...`), if any. */
  principal?: string;
  http?: HttpRequestSpec;
  /** A Kafka request to judge with the Kafka filter on a Kafka port. */
  kafka?: KafkaRequestSpec;
}

/** One RBAC filter's verdict on the connection or request. */
export interface FilterVerdict {
  /** ECDS resource (or inline filter) name. */
  filter: string;
  layer: 'L4' | 'L7';
  action: 'ALLOW' | 'DENY';
  /** The RBAC policy that matched, and the rule behind it; undefined: none matched. */
  policy?: string;
  origin?: PolicyOrigin;
  allowed: boolean;
  /** The Kafka filter: the request judged, the deciding rules or the reason, and what the client sees. */
  kafka?: { request: string; rules?: string; reason?: string; client: string };
}

export interface SideVerdict {
  direction: Direction;
  proxy: string;
  chain: string;
  allowed: boolean;
  filters: FilterVerdict[];
  /** Set when the chain parses HTTP but no request was given: only the L4 part was judged. */
  l7Skipped?: boolean;
  /** Set when the chain runs the Kafka filter but no Kafka request was given: only the L4 part was judged. */
  kafkaUnjudged?: boolean;
  /** What the verdict rests on that the policy does not say (how a gRPC server sees its client). */
  notes?: string[];
}

const RBAC_TYPES: Record<string, { type: string; layer: 'L4' | 'L7' }> = {
  'type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC': { type: 'envoy.extensions.filters.network.rbac.v3.RBAC', layer: 'L4' },
  'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC': { type: 'envoy.extensions.filters.http.rbac.v3.RBAC', layer: 'L7' },
};
const KAFKA_WASM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.wasm.v3.Wasm';
const HCM_TYPE = 'type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager';
const OBJECT_OPTIONS = { enums: String, longs: String, defaults: true, oneofs: true };

interface AnyMsg {
  type_url: string;
  value: Uint8Array;
}
interface FilterMsg {
  name: string;
  typed_config?: AnyMsg;
  config_discovery?: { type_urls?: string[] };
}
interface ChainMsg {
  name: string;
  filter_chain_match?: { destination_port?: { value: number } };
  filters: FilterMsg[];
}

function decode<T>(type: string, bytes: Uint8Array): T {
  const t = lookupType(type);
  return t.toObject(t.decode(bytes), OBJECT_OPTIONS) as T;
}

function requestInfo(c: ConnectionSpec, http: HttpRequestSpec | undefined): RbacInfo {
  const md = new grpc.Metadata();
  const path = http?.path ?? '/';
  if (http) {
    md.set(':method', http.method ?? 'GET');
    md.set(':path', path);
    md.set(':authority', http.host ?? c.destinationIp);
    for (const [k, v] of Object.entries(http.headers ?? {})) md.set(k.toLowerCase() === 'content-type' ? TRACE_CONTENT_TYPE : k.toLowerCase(), v);
  }
  return {
    headers: md,
    urlPath: http ? path : '',
    sourceIp: c.sourceIp,
    destinationIp: c.destinationIp,
    destinationPort: c.port,
    tls: c.principal !== undefined,
    peerCertificate: c.principal ? { subject: { CN: '' }, subjectaltname: `URI:${c.principal}` } : null,
  };
}

/**
 * gRPC's header matcher reads `content-type` as `application/grpc` whatever the request says
 * (true for gRPC, not for Envoy judging HTTP). So that the same matcher judges the request's
 * own value, the trace renames that header on both sides: in the decoded RBAC and in the request.
 */
const TRACE_CONTENT_TYPE = 'x-meshaccel-trace-content-type';

function renameContentType(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(renameContentType);
  if (!v || typeof v !== 'object') return v;
  const out: Record<string, unknown> = {};
  for (const [k, x] of Object.entries(v)) out[k] = renameContentType(x);
  if (typeof out.name === 'string' && out.name.toLowerCase() === 'content-type' && ('string_match' in out || 'present_match' in out || 'exact_match' in out))
    out.name = TRACE_CONTENT_TYPE;
  return out;
}

function judge(filter: string, layer: 'L4' | 'L7', rbacJson: { rules?: unknown }, info: RbacInfo, origins: Record<string, PolicyOrigin>): FilterVerdict {
  // No `rules` is no RBAC at all (Envoy then allows everything).
  if (!rbacJson.rules) return { filter, layer, action: 'ALLOW', allowed: true };
  const group = parseConfig(renameContentType(rbacJson.rules));
  const action = group.allow ? 'ALLOW' : 'DENY';
  for (const [name, p] of group.policies) {
    if (p.matches(info)) return { filter, layer, action, policy: name, origin: origins[name], allowed: group.allow };
  }
  return { filter, layer, action, allowed: !group.allow };
}

/** grpc mode: the host the traced XdsServer binds (its Listener's name carries it; the verdict does not depend on it). */
const GRPC_TRACE_HOST = '0.0.0.0';

/** The Envoy modes whose resources trace can walk: standalone's listeners, Istio's EnvoyFilter-patched chains. */
export type TraceMode = 'standalone' | 'istio';

/** The filters of the chain a connection to `c.port` takes, from the standalone listener or the Istio EnvoyFilter. */
function chainOf(
  compiled: CompiledProxyPolicy,
  direction: Direction,
  c: ConnectionSpec,
  mode: TraceMode,
  byName: Map<string, { value: Uint8Array }>,
): PatchedChain {
  if (mode === 'istio') {
    const port = compiled.ingress.find((p) => p.port === c.port && p.l7 !== undefined);
    return patchedIstioChain(istioEnvoyFilterFor(compiled), istioInboundChain(c.port, port?.l7, c.http !== undefined));
  }
  const listener = byName.get(`${TypeUrl.Listener}|${listenerName(direction)}`);
  if (!listener) throw new Error(`no ${listenerName(direction)} listener was built`);
  const l = decode<{ filter_chains: ChainMsg[]; default_filter_chain: ChainMsg }>('envoy.config.listener.v3.Listener', listener.value);
  const chain = l.filter_chains.find((ch) => ch.filter_chain_match?.destination_port?.value === c.port) ?? l.default_filter_chain;
  return {
    name: chain.name,
    filters: chain.filters.map((f) =>
      f.typed_config?.type_url === HCM_TYPE
        ? {
            name: f.name,
            http: decode<{ http_filters: FilterMsg[] }>(
              'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
              f.typed_config.value,
            ).http_filters,
          }
        : f,
    ),
  };
}

/**
 * Judges `c` at one side of one proxy, over the resources that would be served to it in `mode`
 * (istio: inbound only, since istio mode refuses egress rules).
 */
export function traceSide(
  compiled: CompiledProxyPolicy,
  direction: Direction,
  c: ConnectionSpec,
  redirect: RedirectConfig,
  mode: TraceMode = 'standalone',
): SideVerdict {
  const build = buildProxyResourceJson(compiled, { mode, redirect });
  const encoded = encodeGenerated(build.resources);
  const origins = new Map(build.resources.map((r) => [r.name, r.policyOrigins ?? {}]));
  const byName = new Map(encoded.map((e) => [`${e.typeUrl}|${e.name}`, e]));
  const chain = chainOf(compiled, direction, c, mode, byName);
  const verdict: SideVerdict = { direction, proxy: compiled.nodeId, chain: chain.name, allowed: true, filters: [] };
  const ecds = (name: string): { layer: 'L4' | 'L7'; json: { rules?: unknown } } => {
    const r = byName.get(`${TypeUrl.ExtensionConfig}|${name}`);
    if (!r) throw new Error(`filter ${name} names an ECDS resource that is not served (Envoy would apply its deny-all default)`);
    const tec = decode<{ typed_config: AnyMsg }>('envoy.config.core.v3.TypedExtensionConfig', r.value);
    const kind = RBAC_TYPES[tec.typed_config.type_url];
    if (!kind) throw new Error(`ECDS resource ${name} is a ${tec.typed_config.type_url}, not an RBAC`);
    return { layer: kind.layer, json: decode(kind.type, tec.typed_config.value) };
  };
  const run = (name: string, info: RbacInfo): boolean => {
    const { layer, json } = ecds(name);
    const v = judge(name, layer, json, info, origins.get(name) ?? {});
    verdict.filters.push(v);
    if (!v.allowed) verdict.allowed = false;
    return v.allowed;
  };
  const connection = requestInfo(c, undefined);
  for (const f of chain.filters) {
    if (f.config_discovery) {
      if (f.config_discovery.type_urls?.includes(KAFKA_WASM_TYPE)) {
        if (!c.kafka) {
          verdict.kafkaUnjudged = true;
          return verdict;
        }
        const v = judgeKafkaOnChain(f, byName.get(`${TypeUrl.ExtensionConfig}|${f.name}`)?.value, c, origins.get(f.name) ?? {});
        verdict.filters.push(v);
        if (!v.allowed) verdict.allowed = false;
        return verdict;
      }
      if (!run(f.name, connection)) return verdict;
      continue;
    }
    if (!f.http) continue;
    if (!c.http) {
      verdict.l7Skipped = true;
      return verdict;
    }
    const request = requestInfo(c, c.http);
    for (const hf of f.http) if (hf.config_discovery && !run(hf.name, request)) return verdict;
  }
  return verdict;
}

/**
 * How an XdsServer of @grpc/grpc-js-xds presents a client to its RBAC: it listens on `[::]`
 * whatever host it binds, so an IPv4 address arrives as `::ffff:a.b.c.d`.
 */
export function grpcJsPeerAddress(ip: string): string {
  return ip.includes(':') ? ip : `::ffff:${ip}`;
}

const GRPC_JS_V4_NOTE = (ip: string): string =>
  `an XdsServer of @grpc/grpc-js-xds sees this IPv4 client as ${grpcJsPeerAddress(ip)}, which no IPv4 range matches: rules naming it by address (CIDR, workload address, world) deny it; principals (mTLS) and rules for any peer are matched`;
const GRPC_JS_V6_NOTE =
  'an XdsServer of @grpc/grpc-js-xds is served no IPv6 range (one IPv4 client checked against it would end the server process): an IPv6 client is matched by principal (mTLS) or by rules for any peer only';

/**
 * Judges one RPC at a proxyless gRPC server (grpc mode), over the Listener that would be served
 * to the XdsServer bound at `host`:`port`: its inline RBAC filters, in order, through the same
 * engine. gRPC's RBAC filter judges every RPC as `POST` to its method path (`c.http.path`).
 * `implementation` (default grpc-js) is what serves it; a grpc-js server judges the addresses as
 * it sees them (`grpcJsPeerAddress`).
 */
export function traceGrpcServer(
  compiled: CompiledProxyPolicy,
  c: ConnectionSpec,
  options: { host: string; redirect: RedirectConfig; servedPorts?: readonly number[]; implementation?: GrpcImplementation },
): SideVerdict {
  const implementation = options.implementation ?? 'grpc-js';
  const build = buildProxyResourceJson(compiled, {
    mode: 'grpc',
    redirect: options.redirect,
    grpcServerHost: options.host,
    servedPorts: options.servedPorts,
    grpcServerImplementation: implementation,
  });
  const name = grpcServerListenerName(options.host, c.port);
  const generated = build.resources.find((r) => r.typeUrl === TypeUrl.Listener && r.name === name);
  if (!generated) throw new Error(`no Listener ${name} is served: an XdsServer bound there never starts serving`);
  const [listener] = encodeGenerated([generated]);
  const l = decode<{ default_filter_chain: ChainMsg }>('envoy.config.listener.v3.Listener', listener.value);
  const verdict: SideVerdict = { direction: 'inbound', proxy: compiled.nodeId, chain: l.default_filter_chain.name, allowed: true, filters: [] };
  const hcmFilter = l.default_filter_chain.filters.find((f) => f.typed_config?.type_url === HCM_TYPE);
  if (!hcmFilter?.typed_config) throw new Error(`Listener ${name} has no HTTP connection manager`);
  const hcm = decode<{ http_filters: FilterMsg[] }>(
    'envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager',
    hcmFilter.typed_config.value,
  );
  const seen = implementation === 'grpc-js' ? { ...c, sourceIp: grpcJsPeerAddress(c.sourceIp), destinationIp: grpcJsPeerAddress(c.destinationIp) } : c;
  if (implementation === 'grpc-js') verdict.notes = [c.sourceIp.includes(':') ? GRPC_JS_V6_NOTE : GRPC_JS_V4_NOTE(c.sourceIp)];
  const request = requestInfo(seen, { ...c.http, method: 'POST', path: c.http?.path ?? '/', host: c.http?.host ?? c.destinationIp });
  for (const hf of hcm.http_filters) {
    const kind = hf.typed_config && RBAC_TYPES[hf.typed_config.type_url];
    if (!hf.typed_config || kind?.layer !== 'L7') continue;
    const v = judge(hf.name, 'L7', decode(kind.type, hf.typed_config.value), request, generated.policyOrigins ?? {});
    verdict.filters.push(v);
    if (!v.allowed) {
      verdict.allowed = false;
      break;
    }
  }
  return verdict;
}

interface WasmMsg {
  config: { vm_config: { code: { local?: { filename?: string } } }; configuration: AnyMsg };
}

function peerAddress(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}

/**
 * The Kafka filter's verdict on `c.kafka`, with the configuration Envoy would run: the served
 * ECDS resource, or the filter's deny-all default when none is served.
 */
function judgeKafkaOnChain(f: FilterMsg, served: Uint8Array | undefined, c: ConnectionSpec, origins: Record<string, PolicyOrigin>): FilterVerdict {
  const typed = served
    ? decode<{ typed_config: AnyMsg }>('envoy.config.core.v3.TypedExtensionConfig', served).typed_config
    : (f.config_discovery as { default_config?: AnyMsg }).default_config;
  if (!typed) throw new Error(`filter ${f.name} has neither a served configuration nor a default`);
  const wasm = decode<WasmMsg>('envoy.extensions.filters.network.wasm.v3.Wasm', typed.value);
  const config = decode<{ value: Uint8Array }>('google.protobuf.BytesValue', wasm.config.configuration.value).value;
  const j = judgeKafkaRequest(
    kafkaModuleFile(wasm.config.vm_config.code.local?.filename),
    config,
    {
      'source.address': peerAddress(c.sourceIp, 40000),
      'destination.address': peerAddress(c.destinationIp, c.port),
      'connection.uri_san_peer_certificate': c.principal,
    },
    c.kafka as KafkaRequestSpec,
  );
  const first = j.by[0];
  return {
    filter: served ? f.name : `${f.name} (not served: its deny-all default)`,
    layer: 'L7',
    action: 'ALLOW',
    policy: first ? `rule ${first.rule}` : undefined,
    origin: first ? origins[String(first.rule)] : undefined,
    allowed: j.allowed,
    kafka: { request: j.request, rules: j.allowed ? describeKafkaRules(j, origins, describeRule) : undefined, reason: j.reason, client: j.client },
  };
}

/** Describes where a rule was written: `ns/name (file:line) spec.ingress[0]`. */
export function describeRule(origin: PolicyOrigin | undefined, policy: string | undefined): string {
  if (!origin) return policy ?? '(unknown)';
  const where = origin.file ? ` (${origin.file}:${origin.line ?? 1})` : '';
  const rule = origin.rule ? ` spec.${origin.rule.section}[${origin.rule.index}]` : '';
  return `${origin.policy}${where}${rule}`;
}

export interface TraceQuery {
  /** The source: a workload (`ns/name`), or an address, optionally with the labels of a workload to imagine there. */
  from: { workload?: string; ip?: string; labels?: Record<string, string>; namespace?: string; serviceAccount?: string; principal?: string };
  /** The destination: a workload (`ns/name`), or an address outside every workload. */
  to: { workload?: string; ip?: string };
  port: number;
  http?: HttpRequestSpec;
  kafka?: KafkaRequestSpec;
}

export interface TraceResult {
  allowed: boolean;
  /** The source's egress (when it has a proxy), then the destination's ingress (when it has one). */
  sides: SideVerdict[];
  /** One line: which rule decided, or that default deny did. */
  decidedBy: string;
}

function sideDecision(side: SideVerdict): string {
  const where = `${side.direction === 'inbound' ? 'ingress' : 'egress'} of ${side.proxy}`;
  const last = side.filters[side.filters.length - 1];
  if (!last) return `${where}: no RBAC on chain ${side.chain}`;
  if (last.kafka) {
    const k = last.kafka;
    return `${where}: Kafka ${k.request} ${last.allowed ? `allowed by ${k.rules}` : `denied: ${k.reason}`} (L7, ${last.filter}); the client gets ${k.client}`;
  }
  if (last.policy) return `${where}: ${last.allowed ? 'allowed' : 'denied'} by ${describeRule(last.origin, last.policy)} (${last.layer}, ${last.filter})`;
  return `${where}: default deny (no rule of ${last.filter} matches, ${last.layer})`;
}

/**
 * Traces a connection through the engine's current state: the source's proxy judges it on
 * egress, the destination's on ingress, each over the resources it would be served.
 */
export function traceConnection(
  engine: PolicyEngine,
  q: TraceQuery,
  redirect: RedirectConfig,
  options: { mode?: TraceMode | 'grpc'; trustDomain?: string; grpcServers?: GrpcImplementation } = {},
): TraceResult {
  const mode = options.mode ?? 'standalone';
  let sourceKey = q.from.workload ?? (q.from.ip ? engine.workloadByAddress(q.from.ip) : undefined);
  let imagined = false;
  if (!sourceKey && q.from.labels) {
    if (!q.from.ip) throw new Error('a source given by labels needs an address too');
    const namespace = q.from.namespace ?? 'meshaccel-trace';
    engine.upsertWorkload({
      kind: 'Workload',
      name: 'meshaccel-trace-source',
      namespace,
      labels: q.from.labels,
      spec: { addresses: [q.from.ip], serviceAccount: q.from.serviceAccount, proxy: { nodeId: 'meshaccel-trace-source' } },
    });
    const c = engine.commit();
    if (c.conflicts.length > 0) throw new Error(`the imagined source workload makes the policies conflict: ${c.conflicts[0].message}`);
    sourceKey = `Workload/${namespace}/meshaccel-trace-source`;
    imagined = true;
  }
  try {
    const src = sourceKey ? engine.workload(sourceKey) : undefined;
    if (sourceKey && !src) throw new Error(`no workload ${sourceKey}`);
    const sourceIp = q.from.ip ?? src?.addresses[0];
    if (!sourceIp) throw new Error('the source needs a workload or an address');
    const destKey = q.to.workload ?? (q.to.ip ? engine.workloadByAddress(q.to.ip) : undefined);
    const dst = destKey ? engine.workload(destKey) : undefined;
    if (destKey && !dst) throw new Error(`no workload ${destKey}`);
    const destinationIp = q.to.ip ?? dst?.addresses[0];
    if (!destinationIp) throw new Error('the destination needs a workload or an address');
    // In Istio every sidecar presents its service account's SPIFFE identity over mTLS.
    const principal =
      q.from.principal ??
      (mode === 'istio' && src
        ? `spiffe://${options.trustDomain ?? 'cluster.local'}/ns/${src.resource.namespace}/sa/${src.resource.spec.serviceAccount ?? 'default'}`
        : undefined);
    const c: ConnectionSpec = { sourceIp, destinationIp, port: q.port, principal, http: q.http, kafka: q.kafka };
    const sides: SideVerdict[] = [];
    // Istio and grpc modes enforce ingress only (they refuse egress rules): the source's sidecar (or client) lets it out.
    if (src && mode === 'standalone') {
      const compiled = engine.proxy(src.proxyKey);
      if (compiled) sides.push(traceSide(compiled, 'outbound', c, redirect, mode));
    }
    if (dst && sides.every((s) => s.allowed)) {
      const compiled = engine.proxy(dst.proxyKey);
      if (compiled)
        sides.push(
          mode === 'grpc'
            ? traceGrpcServer(compiled, c, { host: GRPC_TRACE_HOST, redirect, servedPorts: [q.port], implementation: options.grpcServers })
            : traceSide(compiled, 'inbound', c, redirect, mode),
        );
    }
    const allowed = sides.every((s) => s.allowed);
    const deciding = sides.find((s) => !s.allowed) ?? sides[sides.length - 1];
    let decidedBy = deciding ? sideDecision(deciding) : 'no proxy on either end: nothing restricts this connection';
    if (!allowed && deciding?.notes) decidedBy += ' (see the note)';
    if (allowed && sides.some((s) => s.l7Skipped)) decidedBy += '; L7 not judged (no request given)';
    if (allowed && sides.some((s) => s.kafkaUnjudged)) decidedBy += '; Kafka requests not judged (no --kafka request given)';
    return { allowed, sides, decidedBy };
  } finally {
    if (imagined && sourceKey) {
      engine.removeWorkload(sourceKey);
      engine.commit();
    }
  }
}

export function formatTrace(r: TraceResult): string {
  const lines: string[] = [];
  for (const s of r.sides) {
    lines.push(`${s.direction === 'inbound' ? 'ingress' : 'egress'} at ${s.proxy}, chain ${s.chain}:`);
    for (const f of s.filters) {
      const what = f.policy
        ? `${f.action === 'DENY' ? 'deny rule' : 'allow rule'} ${describeRule(f.origin, f.policy)}`
        : f.action === 'DENY'
          ? 'no deny rule matches'
          : 'no allow rule matches';
      if (f.kafka) {
        lines.push(`  ${f.layer} ${f.filter}: Kafka ${f.kafka.request} ${f.allowed ? `pass (${f.kafka.rules})` : `DENY (${f.kafka.reason})`}`);
        lines.push(`    the client gets ${f.kafka.client}`);
        continue;
      }
      lines.push(`  ${f.layer} ${f.filter}: ${f.allowed ? 'pass' : 'DENY'} (${what})`);
    }
    if (s.l7Skipped) lines.push('  L7: the port parses HTTP; give a request (--method/--path/...) to judge it');
    for (const n of s.notes ?? []) lines.push(`  note: ${n}`);
    if (s.kafkaUnjudged) lines.push('  L7: the port runs the Kafka filter, which judges each request; give one (--kafka ... --topic ...) to judge it');
  }
  lines.push(`${r.allowed ? 'ALLOWED' : 'DENIED'}: ${r.decidedBy}`);
  return lines.join('\n');
}
