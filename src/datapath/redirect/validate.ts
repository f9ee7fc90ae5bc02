/**
 * Validation of a RedirectConfig before anything is rendered from it: every number ends up in
 * an nft ruleset, an `ip rule`, or a BPF map, so a bad value must fail here, by name.
 */
import { cidrsOf, parseCidr, type Cidr } from '../../net/cidr';
import { DEFAULT_REDIRECT_CONFIG, type RedirectConfig } from '../../net/capture-config';

export type CaptureMode = 'nft' | 'bpf';

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
      throw new Error(
        `${what}: ${count} distinct entries, but bpf mode's tc program holds at most ${BPF_REDIRECT_MAP_ENTRIES} (use --mode nft, or merge them into fewer)`,
      );
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
export function validateRedirectConfig(config: RedirectConfig, mode?: CaptureMode): void {
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

export function hex(n: number): string {
  return `0x${(n >>> 0).toString(16)}`;
}
