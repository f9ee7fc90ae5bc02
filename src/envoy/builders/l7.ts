import type { CompiledPortPolicy, L7Kind } from '../../policy/compiled';
import type { Direction } from './ecds';
import { httpChain } from './http';
import { compileRbac, httpPermission, type Json, type RbacCompilation, type RbacOptions } from './rbac';

/**
 * One L7 protocol on the Envoy side. `enforcement` is absent for a protocol that policy accepts
 * and compiles but no Envoy filter enforces yet; the mode builders decide what to do with such
 * a port. The policy-side counterpart is `policy/l7`.
 */
export interface L7Builder {
  kind: L7Kind;
  name: string;
  enforcement?: L7Enforcement;
}

export interface L7Enforcement {
  /** The filter config (RBAC) for one port's rules of this kind. */
  rbac(port: CompiledPortPolicy, options: RbacOptions): RbacCompilation;
  /** The capture listener's filter chain for one port of this kind (standalone mode). */
  chain(direction: Direction, port: number): Json;
}

const BUILDERS: { readonly [K in L7Kind]: L7Builder & { kind: K } } = {
  http: { kind: 'http', name: 'HTTP', enforcement: { rbac: (port, options) => compileRbac(port, options, httpPermission), chain: httpChain } },
  kafka: { kind: 'kafka', name: 'Kafka' },
};

export function l7Builder(kind: L7Kind): L7Builder {
  return BUILDERS[kind];
}

/** Whether Envoy enforces this port's L7 rules (a port without L7 rules has none to enforce). */
export function enforcedL7(port: CompiledPortPolicy): boolean {
  return port.l7 !== undefined && l7Builder(port.l7).enforcement !== undefined;
}

/** Ports whose L7 rules Envoy enforces, one entry per port (TCP and ANY entries share a chain). */
export function l7ChainPorts(ports: readonly CompiledPortPolicy[]): CompiledPortPolicy[] {
  const seen = new Map<number, CompiledPortPolicy>();
  for (const p of ports) if (enforcedL7(p) && p.protocol !== 'UDP' && !seen.has(p.port)) seen.set(p.port, p);
  return [...seen.values()].sort((a, b) => a.port - b.port);
}

/** The enforcement of a port that `enforcedL7` accepted. */
export function l7Enforcement(port: CompiledPortPolicy): L7Enforcement {
  const e = port.l7 === undefined ? undefined : l7Builder(port.l7).enforcement;
  if (!e) throw new Error(`port ${port.port} has no L7 rules that Envoy enforces`);
  return e;
}
