/**
 * Validation of a RedirectConfig before anything is rendered from it: every number ends up in
 * an nft ruleset, an `ip rule`, or a BPF map, so a bad value must fail here, by name.
 */
import * as net from 'net';
import { DEFAULT_REDIRECT_CONFIG, type RedirectConfig } from '../redirect-config';

export type RedirectMode = 'nft' | 'bpf';

export function withDefaults(partial: Partial<RedirectConfig>): RedirectConfig {
  const base = DEFAULT_REDIRECT_CONFIG;
  return {
    ...base,
    inboundPorts: [...base.inboundPorts],
    excludeInboundPorts: [...base.excludeInboundPorts],
    excludeOutboundPorts: [...base.excludeOutboundPorts],
    excludeInboundCidrs: [...base.excludeInboundCidrs],
    excludeOutboundCidrs: [...base.excludeOutboundCidrs],
    ...partial,
  };
}

export interface Cidr {
  family: 4 | 6;
  address: string;
  prefix: number;
  text: string;
}

/** Parses `a.b.c.d[/n]` or `x::y[/n]`; a bare address is a host route (/32, /128). */
export function parseCidr(text: string): Cidr {
  const [address, prefixText, extra] = text.trim().split('/');
  const family = net.isIP(address);
  // net.isIP accepts zone ids (fe80::1%eth0), which no CIDR set can hold.
  if (extra !== undefined || (family !== 4 && family !== 6) || address.includes('%')) throw new Error(`"${text}" is not an IPv4/IPv6 CIDR`);
  const max = family === 4 ? 32 : 128;
  // Decimal digits only: Number() would also take `0x8`, `1e1`, ` 8` or `8.0`.
  const prefix = prefixText === undefined ? max : /^[0-9]{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > max) {
    throw new Error(`"${text}": prefix length must be 0-${max}`);
  }
  return { family, address, prefix, text: `${address}/${prefix}` };
}

function checkPort(value: number, what: string): void {
  if (!Number.isInteger(value) || value < 1 || value > 65535) throw new Error(`${what}: ${value} is not a port (1-65535)`);
}

function checkU32(value: number, what: string, allowZero: boolean): void {
  if (!Number.isInteger(value) || value < (allowZero ? 0 : 1) || value > 0xffffffff) {
    throw new Error(`${what}: ${value} is not a ${allowZero ? '' : 'non-zero '}32-bit value`);
  }
}

/**
 * Entries each of the tc program's port and CIDR maps holds (RD_MAP_ENTRIES in
 * bpf/tproxy_sk_assign.bpf.c). nft sets have no such bound.
 */
export const BPF_REDIRECT_MAP_ENTRIES = 1024;

function checkBpfCapacity(config: RedirectConfig): void {
  const over = (what: string, count: number): void => {
    if (count > BPF_REDIRECT_MAP_ENTRIES) {
      throw new Error(`${what}: ${count} distinct entries, but bpf mode's tc program holds at most ${BPF_REDIRECT_MAP_ENTRIES} (use --mode nft, or merge them into fewer)`);
    }
  };
  over('inboundPorts', new Set(config.inboundPorts).size);
  over('excludeInboundPorts', new Set(config.excludeInboundPorts).size);
  for (const family of [4, 6] as const) {
    over(`excludeInboundCidrs (IPv${family})`, new Set(cidrsOf(config.excludeInboundCidrs, family).map((c) => c.text)).size);
  }
}

/**
 * Throws an Error naming the first bad field. With a mode, also what that mode cannot hold, so
 * an apply fails before it changes anything.
 */
export function validateRedirectConfig(config: RedirectConfig, mode?: RedirectMode): void {
  checkPort(config.inboundProxyPort, 'inboundProxyPort');
  checkPort(config.outboundProxyPort, 'outboundProxyPort');
  checkU32(config.tproxyMark, 'tproxyMark', false);
  checkU32(config.proxyMark, 'proxyMark', false);
  if (config.tproxyMark === config.proxyMark) {
    throw new Error(`tproxyMark and proxyMark are both ${config.tproxyMark}: the proxy's own traffic would be captured`);
  }
  if (!Number.isInteger(config.routeTable) || config.routeTable < 1 || config.routeTable > 0xfffffffe || [253, 254, 255].includes(config.routeTable)) {
    throw new Error(`routeTable: ${config.routeTable} must be a free table id (not 0, 253 default, 254 main, 255 local)`);
  }
  if (config.proxyUid !== undefined) checkU32(config.proxyUid, 'proxyUid', true);
  config.inboundPorts.forEach((p) => checkPort(p, 'inboundPorts'));
  config.excludeInboundPorts.forEach((p) => checkPort(p, 'excludeInboundPorts'));
  config.excludeOutboundPorts.forEach((p) => checkPort(p, 'excludeOutboundPorts'));
  for (const c of config.excludeInboundCidrs) parseCidrNamed(c, 'excludeInboundCidrs');
  for (const c of config.excludeOutboundCidrs) parseCidrNamed(c, 'excludeOutboundCidrs');
  if (mode === 'bpf') checkBpfCapacity(config);
}

function parseCidrNamed(text: string, what: string): Cidr {
  try {
    return parseCidr(text);
  } catch (err) {
    throw new Error(`${what}: ${(err as Error).message}`);
  }
}

export function cidrsOf(list: readonly string[], family: 4 | 6): Cidr[] {
  return list.map((c) => parseCidr(c)).filter((c) => c.family === family);
}

export function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}
