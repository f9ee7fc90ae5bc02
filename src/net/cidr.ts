import * as net from 'net';

/**
 * The one CIDR parser: policy validation, the compiler, the RBAC builder and the TPROXY agent
 * all use it, so they agree on what a CIDR is (zone ids such as `fe80::1%eth0` are not).
 */
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

/** `parseCidr`, or undefined where it would throw. */
export function tryParseCidr(text: string): Cidr | undefined {
  try {
    return parseCidr(text);
  } catch {
    return undefined;
  }
}

export function cidrsOf(list: readonly string[], family: 4 | 6): Cidr[] {
  return list.map((c) => parseCidr(c)).filter((c) => c.family === family);
}
