import { createHash } from 'crypto';
import { sealPortPolicy, type CompiledPortPolicy, type CompiledProxyPolicy } from '../policy/compiled';
import type { EncodedResource } from '../resource/encoded';
import { encodeEnvoyResource } from './encode';
import { contentKey } from '../json/shared-text';
import { l7Builder, l7EnforcedIn } from './builders/l7';
import { GRPC } from './modes/grpc';
import { ISTIO, istioL7Ports } from './modes/istio';
import { istioEnvoyFilter, type EnvoyFilterOptions } from './builders/istio-envoyfilter';
import type { Json } from './builders/rbac';
import { DEFAULT_REDIRECT_CONFIG } from '../net/capture-config';
import { UnenforceableError, type EnvoyMode, type GeneratedResource, type ModeBuilder, type PortsByDirection, type ProxyBuildOptions } from './modes/mode';
import { STANDALONE } from './modes/standalone';
import { isBuiltOnce } from './modes/built-once';
import { kafkaFilterWasmPath } from '../kafka/wasm-path';

/**
 * The one entry from a proxy's compiled policy to the xDS resources serving it:
 * - standalone: capture listeners, routes, ORIGINAL_DST clusters, one ECDS HTTP RBAC per HTTP
 *   port, one ECDS Kafka filter (proxy-wasm) configuration per Kafka port and the ECDS network RBAC (L3/L4 allows per chain, deny rules per direction);
 * - istio: only ECDS resources (network RBAC, HTTP RBAC, Kafka filter), which the filters of the
 *   generated EnvoyFilter reference (istiod stays the main control plane and owns listeners/routes/clusters);
 * - grpc: one server Listener per ingress port with the RBAC inline, L3/L4 rules included (no ECDS in gRPC).
 * What a mode cannot enforce throws UnenforceableError: never served.
 */

export type { EnvoyMode, GeneratedResource, ProxyBuildOptions } from './modes/mode';
export { UnenforceableError } from './modes/mode';

export interface ProxyBuild {
  resources: GeneratedResource[];
  warnings: string[];
}

/** Merges entries for the same port (TCP and ANY, say): rules are OR-ed anyway. */
function mergeByPort(ports: readonly CompiledPortPolicy[], mode: EnvoyMode): CompiledPortPolicy[] {
  const byPort = new Map<number, CompiledPortPolicy>();
  for (const p of ports) {
    if (p.protocol === 'UDP') {
      if (p.rules.length > 0) throw new UnenforceableError(`UDP rules on port ${p.port} cannot be enforced (meshaccel captures TCP only)`, p.rules);
      continue;
    }
    if (p.port === 0) {
      // The schema refuses L7 rules without a port; this guards compiled policies that did not come through it.
      if (p.l7 !== undefined) throw new UnenforceableError('L7 rules on port 0 (any port) cannot be enforced: Envoy chains L7 filters per port', p.rules);
      continue;
    }
    const prev = byPort.get(p.port);
    if (prev?.l7 !== undefined && p.l7 !== undefined && prev.l7 !== p.l7) {
      // TCP and ANY entries of one port meet here. The engine's PortTable already reports such a
      // clash as a conflict; this guards compiled policies that did not come through it, since
      // choosing either protocol would drop the other's rules (fail open).
      const policies = [...new Set([...prev.rules, ...p.rules].map((r) => r.origin.policy))].join(', ');
      throw new Error(`port ${p.port} has both ${prev.l7} and ${p.l7} rules (from ${policies}); one port carries one L7 protocol`);
    }
    if (p.l7 !== undefined && !l7EnforcedIn(p.l7, mode)) {
      // `policy check` and the loader refuse these; this guards compiled policies that did not come through them.
      throw new UnenforceableError(`${l7Builder(p.l7).name} rules on port ${p.port} are not enforced by Envoy in ${mode} mode`, p.rules);
    }
    // A port of one entry is that entry (sealed by the engine, it keeps what is built from it).
    if (!prev) byPort.set(p.port, p);
    else byPort.set(p.port, { ...prev, l7: prev.l7 ?? p.l7, rules: [...prev.rules, ...p.rules] });
  }
  return [...byPort.values()].sort((a, b) => a.port - b.port);
}

/** Adds an empty (no L7) entry for each served port the compiled policy does not mention. */
function withServedPorts(ports: CompiledPortPolicy[], served: readonly number[] | undefined): CompiledPortPolicy[] {
  if (!served || served.length === 0) return ports;
  const have = new Set(ports.map((p) => p.port));
  const extra = [...new Set(served)].filter((p) => !have.has(p)).map(servedOnly);
  return [...ports, ...extra].sort((a, b) => a.port - b.port);
}

const SERVED_ONLY = new Map<number, CompiledPortPolicy>();

/** A served port no rule names: the same sealed entry every time. */
function servedOnly(port: number): CompiledPortPolicy {
  let entry = SERVED_ONLY.get(port);
  if (!entry) SERVED_ONLY.set(port, (entry = sealPortPolicy({ port, protocol: 'TCP', rules: [] })));
  return entry;
}

const MODES: { readonly [M in EnvoyMode]: ModeBuilder } = { standalone: STANDALONE, istio: ISTIO, grpc: GRPC };

/** The Istio EnvoyFilter for a compiled proxy policy: network RBAC on every inbound chain, and per-port patches for the ports with HTTP or Kafka rules. */
export function istioEnvoyFilterFor(compiled: CompiledProxyPolicy, options: EnvoyFilterOptions = {}): Json {
  const ports = istioL7Ports(portsOf(compiled, { mode: 'istio', redirect: DEFAULT_REDIRECT_CONFIG }));
  return istioEnvoyFilter(ports, { ...options, kafkaModule: options.kafkaModule ?? { localPath: kafkaFilterWasmPath() } });
}

function portsOf(compiled: CompiledProxyPolicy, options: ProxyBuildOptions): PortsByDirection {
  const wildcard = (list: readonly CompiledPortPolicy[]): CompiledPortPolicy | undefined => list.find((p) => p.port === 0);
  const ports = {
    ingress: withServedPorts(mergeByPort(compiled.ingress, options.mode), options.servedPorts),
    egress: mergeByPort(compiled.egress, options.mode),
    wildcard: { ingress: wildcard(compiled.ingress), egress: wildcard(compiled.egress) },
    deny: {
      ingress: (compiled.ingressDeny ?? []).filter((p) => p.protocol !== 'UDP'),
      egress: (compiled.egressDeny ?? []).filter((p) => p.protocol !== 'UDP'),
    },
  };
  return ports;
}

export function buildProxyResourceJson(compiled: CompiledProxyPolicy, options: ProxyBuildOptions): ProxyBuild {
  const warnings: string[] = [];
  return { resources: MODES[options.mode].build(portsOf(compiled, options), options, warnings), warnings };
}

/**
 * Checked and encoded resources, by the frozen JSON `builtOnce` shares between the proxies that
 * serve it (what the builders rebuild keeps its encoding while they reuse it) and, for other
 * JSON, by content: a resource rebuilt as it was before (an identity gone again, a policy put
 * back) costs a hash, not a check. The check and encode read only type, name and JSON; the
 * origins name the policies in a failure, which is thrown, never kept.
 */
const ENCODED_BY_JSON = new WeakMap<object, EncodedResource>();
const ENCODED = new Map<string, EncodedResource>();
const ENCODED_LIMIT = 16384;

function encodeOne(r: GeneratedResource): EncodedResource {
  const kept = isBuiltOnce(r.json);
  if (kept) {
    const hit = ENCODED_BY_JSON.get(r.json);
    if (hit && hit.typeUrl === r.typeUrl && hit.name === r.name) return hit;
  }
  const encoded = encodeByContent(r);
  if (kept) ENCODED_BY_JSON.set(r.json, encoded);
  return encoded;
}

function encodeByContent(r: GeneratedResource): EncodedResource {
  const key = `${r.typeUrl}\0${r.name}\0${createHash('sha256').update(contentKey(r.json)).digest('base64')}`;
  const hit = ENCODED.get(key);
  if (hit) {
    ENCODED.delete(key);
    ENCODED.set(key, hit);
    return hit;
  }
  const encoded = encodeEnvoyResource(r.typeUrl, r.name, r.json, { origins: r.origins, keepShared: true });
  ENCODED.set(key, encoded);
  if (ENCODED.size > ENCODED_LIMIT) ENCODED.delete(ENCODED.keys().next().value as string);
  return encoded;
}

/** Checks and encodes; throws SchemaError naming the policies behind the first bad resource. */
export function encodeGenerated(resources: readonly GeneratedResource[]): EncodedResource[] {
  return resources.map(encodeOne);
}

export function buildProxyResources(compiled: CompiledProxyPolicy, options: ProxyBuildOptions): EncodedResource[] {
  return encodeGenerated(buildProxyResourceJson(compiled, options).resources);
}
