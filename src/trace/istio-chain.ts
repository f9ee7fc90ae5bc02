import type { Json } from '../envoy/builders/rbac';
import { HCM_FILTER, ISTIO_VIRTUAL_INBOUND, TCP_PROXY_FILTER } from '../envoy/builders/istio-envoyfilter';

/**
 * Istio mode's inbound chain for a trace: the chain istiod builds for the port (a Service port's
 * `0.0.0.0_<port>` chain, or a passthrough chain), with the generated EnvoyFilter's patches
 * applied the way istiod applies them (pilot/pkg/networking/core/envoyfilter/listener_patch.go:
 * on the virtual inbound listener `portNumber` matches the chain's destination port; a filter
 * match inserts before the first filter of that name; patches apply in order). The filters it
 * yields are the patch values themselves, which Envoy then runs.
 */

export interface IstioChain {
  name: string;
  /** Absent on the passthrough chains, which match every port no other chain takes. */
  destinationPort?: number;
  terminal: typeof HCM_FILTER | typeof TCP_PROXY_FILTER;
}

export interface PatchedChain {
  name: string;
  /** Network filters in order; the HCM's carries its HTTP filters. */
  filters: { name: string; config_discovery?: { type_urls?: string[] }; http?: { name: string; config_discovery?: { type_urls?: string[] } }[] }[];
}

interface Patch {
  applyTo: string;
  match?: {
    context?: string;
    listener?: { name?: string; portNumber?: number; filterChain?: { name?: string; filter?: { name?: string; subFilter?: { name?: string } } } };
  };
  patch: { operation: string; value: { name: string; config_discovery?: { type_urls?: string[] } } };
}

function chainMatches(p: Patch, chain: IstioChain): boolean {
  const l = p.match?.listener;
  if (p.match?.context !== 'SIDECAR_INBOUND') return false;
  if (!l) return true;
  if (l.name !== undefined && l.name !== ISTIO_VIRTUAL_INBOUND) return false;
  if (l.portNumber !== undefined && l.portNumber !== chain.destinationPort) return false;
  if (l.filterChain?.name !== undefined && l.filterChain.name !== chain.name) return false;
  return true;
}

function insertBefore<T extends { name: string }>(list: T[], before: string | undefined, value: T): void {
  if (before === undefined) {
    list.unshift(value);
    return;
  }
  const i = list.findIndex((f) => f.name === before);
  if (i >= 0) list.splice(i, 0, value);
}

/** Applies the EnvoyFilter's patches to `chain`. Only what the generator emits is understood; anything else throws. */
export function patchedIstioChain(envoyFilter: Json, chain: IstioChain): PatchedChain {
  const http: PatchedChain['filters'][number]['http'] = chain.terminal === HCM_FILTER ? [{ name: 'envoy.filters.http.router' }] : undefined;
  const filters: PatchedChain['filters'] = [{ name: chain.terminal, ...(http ? { http } : {}) }];
  const patches = ((envoyFilter.spec as { configPatches?: Patch[] }).configPatches ?? []) as Patch[];
  for (const p of patches) {
    if (p.applyTo === 'CLUSTER') continue;
    if (p.patch.operation !== 'INSERT_BEFORE') throw new Error(`trace does not apply ${p.patch.operation} patches`);
    if (!chainMatches(p, chain)) continue;
    const filterName = p.match?.listener?.filterChain?.filter?.name;
    if (p.applyTo === 'NETWORK_FILTER') insertBefore(filters, filterName, { ...p.patch.value });
    else if (p.applyTo === 'HTTP_FILTER') {
      const hcm = filters.find((f) => f.name === (filterName ?? HCM_FILTER) && f.http);
      if (hcm?.http) insertBefore(hcm.http, p.match?.listener?.filterChain?.filter?.subFilter?.name, { ...p.patch.value });
    } else throw new Error(`trace does not apply ${p.applyTo} patches`);
  }
  return { name: chain.name, filters };
}

/**
 * The chain a connection to `port` takes: an L7 port's Service chain (istio mode needs its
 * Service to declare it, HTTP for HTTP rules, TCP for Kafka), otherwise a passthrough chain (a
 * Service chain of such a port carries the same network RBAC verdict: see modes/istio.ts).
 */
export function istioInboundChain(port: number, l7: 'http' | 'kafka' | undefined, httpRequest: boolean): IstioChain {
  if (l7 === 'http') return { name: `0.0.0.0_${port}`, destinationPort: port, terminal: HCM_FILTER };
  if (l7 === 'kafka') return { name: `0.0.0.0_${port}`, destinationPort: port, terminal: TCP_PROXY_FILTER };
  return httpRequest ? { name: 'virtualInbound-catchall-http', terminal: HCM_FILTER } : { name: 'virtualInbound', terminal: TCP_PROXY_FILTER };
}
