/**
 * Renders the `inet meshaccel` table from a RedirectConfig. The text is applied as ONE
 * `nft -f -` transaction (see nft.ts) that adds, deletes and recreates the table, so a
 * namespace is never left half-configured and applying twice equals applying once.
 *
 * Packet paths (IPv4 shown; IPv6 is the same with ip6 rules and `local ::/0`):
 *
 * Inbound (a remote client to the workload, arriving on eth0/veth):
 *   PREROUTING (mangle prio) chain `prerouting`: not lo, TCP, port captured, source not
 *   excluded -> `tproxy to :inboundProxyPort meta mark set tproxyMark`. The socket lookup
 *   assigns the SYN to the IP_TRANSPARENT listener without touching the header; the mark makes
 *   policy routing (`ip rule fwmark tproxyMark lookup routeTable`, table holding
 *   `local 0.0.0.0/0 dev lo`) deliver it locally even when the destination address is not
 *   local. The capture also sets tproxyMark in the conntrack mark (OR-ed, other bits kept):
 *   later packets of the flow match it and get the routing mark without another socket lookup
 *   (the stack's own lookup then finds the proxy's accepted socket). SYNs always take the
 *   tproxy path, so a retransmitted SYN still finds its request socket.
 *
 * Outbound (the workload connects out; locally generated, so PREROUTING never sees it):
 *   1. connect() -> route lookup (main table) -> OUTPUT; chain `output` (type route) sets
 *      meta mark = tproxyMark unless excluded (reply direction, the proxy's SO_MARK or uid,
 *      loopback destinations, excluded ports/CIDRs), and records it in the conntrack mark so
 *      the flow's later packets skip the exclusion checks.
 *   2. A `type route` chain re-runs the route lookup when the mark changes: the fwmark rule
 *      now selects routeTable, whose `local default dev lo` sends the packet out of lo.
 *   3. lo loops it back into PREROUTING (mark, destination and route survive); chain
 *      `prerouting` sees iif lo + tproxyMark on the SYN and TPROXYs it to :outboundProxyPort.
 *      Later packets already carry a local route and reach the accepted socket directly.
 *   4. The proxy's accepted socket has the original destination as its local address; the
 *      proxy connects upstream with SO_MARK = proxyMark, which `output` skips, so the upstream
 *      SYN follows the main table out of the pod.
 *   Replies from the proxy to the workload are local (oif lo) and are never marked.
 *
 * In bpf mode the table keeps only step 1-2 (`output`); a tc ingress program on lo and on the
 * workload's interfaces does the socket assignment (bpf_sk_assign) instead of `tproxy`.
 */
import type { RedirectConfig } from '../../net/capture-config';
import { cidrsOf } from '../../net/cidr';
import { hex, type CaptureMode } from './validate';

export const TABLE_FAMILY = 'inet';
export const TABLE_NAME = 'meshaccel';

/** Named counters, in the order `status` prints them. */
export const COUNTERS = [
  'inbound_captured',
  'established',
  'inbound_excluded',
  'outbound_marked',
  'outbound_captured',
  'outbound_excluded',
  'proxy_bypass',
] as const;
export type CounterName = (typeof COUNTERS)[number];

function elements(values: readonly (string | number)[]): string {
  return values.length === 0 ? '' : `\t\telements = { ${values.join(', ')} }\n`;
}

function portSet(name: string, ports: readonly number[]): string {
  const unique = [...new Set(ports)].sort((a, b) => a - b);
  return `\tset ${name} {\n\t\ttype inet_service\n${elements(unique)}\t}\n`;
}

function cidrSet(name: string, family: 4 | 6, cidrs: readonly string[]): string {
  const list = cidrsOf(cidrs, family).map((c) => c.text);
  return `\tset ${name} {\n\t\ttype ${family === 4 ? 'ipv4_addr' : 'ipv6_addr'}\n\t\tflags interval\n\t\tauto-merge\n${elements([...new Set(list)])}\t}\n`;
}

export interface RenderOptions {
  /** Inbound capture only on these devices (default: every device but lo). */
  interfaces?: readonly string[];
}

function quoteIfname(name: string): string {
  if (!/^[A-Za-z0-9_.:@-]{1,15}$/.test(name)) throw new Error(`"${name}" is not an interface name`);
  return `"${name}"`;
}

/** The rules of the table alone (no add/delete preamble). */
export function renderTable(config: RedirectConfig, mode: CaptureMode, options: RenderOptions = {}): string {
  const mark = hex(config.tproxyMark);
  const proxyMark = hex(config.proxyMark);
  const proxyPorts = [config.inboundProxyPort, config.outboundProxyPort];
  const v6 = config.captureIpv6 !== false;
  const out: string[] = [];
  out.push(`table ${TABLE_FAMILY} ${TABLE_NAME} {`);
  out.push(`\tcomment "meshaccel redirect agent (mode ${mode}); rewritten as a whole by every apply"`);
  for (const c of COUNTERS) out.push(`\tcounter ${c} {\n\t}`);
  const sets =
    portSet('inbound_ports', config.inboundPorts) +
    portSet('exclude_inbound_ports', [...config.excludeInboundPorts, ...proxyPorts]) +
    portSet('exclude_outbound_ports', config.excludeOutboundPorts) +
    cidrSet('exclude_inbound_v4', 4, config.excludeInboundCidrs) +
    cidrSet('exclude_inbound_v6', 6, config.excludeInboundCidrs) +
    cidrSet('exclude_outbound_v4', 4, config.excludeOutboundCidrs) +
    cidrSet('exclude_outbound_v6', 6, config.excludeOutboundCidrs);
  out.push(sets.replace(/\n$/, ''));

  if (mode === 'nft') {
    out.push(`\tchain prerouting {
\t\ttype filter hook prerouting priority mangle; policy accept;
\t\tmeta l4proto != tcp return
\t\t# Replies to connections opened from here (incl. the proxy's upstream) are never captured.
\t\tct direction reply return
\t\t# Later packets of captured flows: route them locally (SYNs always go through tproxy).
\t\tct mark and ${mark} == ${mark} tcp flags & (syn | ack) != syn meta mark set ${mark} counter name "established" accept
\t\t# Outbound flows marked in \`output\` come back through lo.
\t\tiif "lo" meta mark ${mark} jump outbound_tproxy
\t\tiif "lo" return
\t\tjump inbound
\t}`);
    out.push(`\tchain outbound_tproxy {
\t\tmeta nfproto ipv4 meta l4proto tcp counter name "outbound_captured" tproxy ip to :${config.outboundProxyPort} accept
${v6 ? `\t\tmeta nfproto ipv6 meta l4proto tcp counter name "outbound_captured" tproxy ip6 to :${config.outboundProxyPort} accept\n` : ''}\t}`);
    const inbound: string[] = [];
    if (options.interfaces && options.interfaces.length > 0) {
      inbound.push(`\t\tiifname != { ${options.interfaces.map(quoteIfname).join(', ')} } return`);
    }
    inbound.push(
      `\t\ttcp dport @exclude_inbound_ports counter name "inbound_excluded" return`,
      `\t\tip saddr @exclude_inbound_v4 counter name "inbound_excluded" return`,
      `\t\tip6 saddr @exclude_inbound_v6 counter name "inbound_excluded" return`,
    );
    if (config.inboundPorts.length > 0) inbound.push(`\t\ttcp dport != @inbound_ports return`);
    inbound.push(
      `\t\tmeta nfproto ipv4 meta l4proto tcp counter name "inbound_captured" tproxy ip to :${config.inboundProxyPort} meta mark set ${mark} ct mark set ct mark or ${mark} accept`,
    );
    if (v6)
      inbound.push(
        `\t\tmeta nfproto ipv6 meta l4proto tcp counter name "inbound_captured" tproxy ip6 to :${config.inboundProxyPort} meta mark set ${mark} ct mark set ct mark or ${mark} accept`,
      );
    out.push(`\tchain inbound {\n${inbound.join('\n')}\n\t}`);
  }

  const output = [
    `\t\ttype route hook output priority mangle; policy accept;`,
    `\t\tmeta l4proto != tcp return`,
    ...(v6 ? [] : [`\t\tmeta nfproto ipv6 return`]),
    `\t\t# Replies (e.g. the proxy answering a captured inbound client) are never captured.`,
    `\t\tct direction reply return`,
    // The proxy's own sockets first: a source-preserving upstream can share the 5-tuple (and so
    // the conntrack entry and its mark) of the flow it proxies, and must never be re-marked.
    `\t\tmeta mark ${proxyMark} counter name "proxy_bypass" return`,
  ];
  if (config.proxyUid !== undefined) output.push(`\t\tmeta skuid ${config.proxyUid} counter name "proxy_bypass" return`);
  output.push(
    `\t\t# Later packets of a flow captured at its first packet.`,
    `\t\tct mark and ${mark} == ${mark} counter name "outbound_marked" meta mark set ${mark} return`,
  );
  output.push(
    `\t\t# Destinations already routed to lo are local (loopback, own addresses).`,
    `\t\toif "lo" return`,
    `\t\ttcp dport @exclude_outbound_ports counter name "outbound_excluded" return`,
    `\t\tip daddr @exclude_outbound_v4 counter name "outbound_excluded" return`,
    `\t\tip6 daddr @exclude_outbound_v6 counter name "outbound_excluded" return`,
    `\t\tcounter name "outbound_marked" meta mark set ${mark} ct mark set ct mark or ${mark}`,
  );
  out.push(`\tchain output {\n${output.join('\n')}\n\t}`);
  out.push('}');
  return out.join('\n') + '\n';
}

/**
 * The whole transaction: `add table` makes the following `delete table` valid whether or not
 * the table existed, then the table is recreated. nft applies the file atomically.
 */
export function renderApplyTransaction(config: RedirectConfig, mode: CaptureMode, options: RenderOptions = {}): string {
  return `add table ${TABLE_FAMILY} ${TABLE_NAME}\ndelete table ${TABLE_FAMILY} ${TABLE_NAME}\n${renderTable(config, mode, options)}`;
}

export function renderRemoveTransaction(): string {
  return `add table ${TABLE_FAMILY} ${TABLE_NAME}\ndelete table ${TABLE_FAMILY} ${TABLE_NAME}\n`;
}
