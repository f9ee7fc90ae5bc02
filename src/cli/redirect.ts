/**
 * `meshaccel redirect apply|remove|status`: the node agent's TPROXY capture of a namespace's
 * TCP flows into its proxy (see src/datapath/redirect). Ports and marks default to the shared
 * RedirectConfig the Envoy listener builders use, so the two agree unless overridden on both.
 */
import type { Command } from './command';
import { optionList, optionValue, parseArgs, parsePort, usageText, UsageError, type OptionSpec, type ParsedArgs } from './args';
import { DEFAULT_REDIRECT_CONFIG, type RedirectConfig } from '../net/capture-config';
import type { CaptureMode } from '../datapath/redirect/validate';

const SPEC: Record<string, OptionSpec> = {
  netns: { value: true, description: 'network namespace name (/run/netns/NAME) or path; default: this one (the host)' },
  mode: { value: true, description: 'nft (nftables tproxy, default) or bpf (tc ingress + bpf_sk_assign)' },
  'inbound-proxy-port': { value: true, description: `proxy port for captured inbound flows (default ${DEFAULT_REDIRECT_CONFIG.inboundProxyPort})` },
  'outbound-proxy-port': { value: true, description: `proxy port for captured outbound flows (default ${DEFAULT_REDIRECT_CONFIG.outboundProxyPort})` },
  'inbound-ports': { value: true, repeated: true, description: 'capture inbound only to these ports (default: every port)' },
  'exclude-inbound-ports': {
    value: true,
    repeated: true,
    description: `inbound ports never captured (added to ${DEFAULT_REDIRECT_CONFIG.excludeInboundPorts.join(',')})`,
  },
  'exclude-outbound-ports': { value: true, repeated: true, description: 'outbound destination ports never captured' },
  'exclude-inbound-cidrs': { value: true, repeated: true, description: 'inbound clients (source CIDRs) never captured' },
  'exclude-outbound-cidrs': { value: true, repeated: true, description: 'outbound destination CIDRs never captured' },
  'proxy-mark': { value: true, description: `SO_MARK of the proxy's own sockets, never captured (default ${hex(DEFAULT_REDIRECT_CONFIG.proxyMark)})` },
  'proxy-uid': { value: true, description: 'uid the proxy runs as; its traffic is never captured' },
  'tproxy-mark': { value: true, description: `fwmark of captured packets (default ${hex(DEFAULT_REDIRECT_CONFIG.tproxyMark)})` },
  'route-table': { value: true, description: `routing table with the local default route (default ${DEFAULT_REDIRECT_CONFIG.routeTable})` },
  'no-ipv6': { description: 'capture IPv4 only (when the proxy listens on IPv4 only)' },
  interfaces: { value: true, repeated: true, description: 'devices whose inbound TCP is captured (default: all but lo)' },
  'dry-run': { description: 'apply: print the nft transaction instead of running it' },
  json: { description: 'status: print JSON' },
  help: { description: 'show this help' },
};

const SUMMARY = "TPROXY capture of a namespace's TCP flows into its proxy: apply | remove | status";

function hex(n: number): string {
  return `0x${n.toString(16)}`;
}

function parseU32(text: string, what: string): number {
  const n = /^0x[0-9a-f]+$/i.test(text) ? parseInt(text, 16) : Number(text);
  if (!Number.isInteger(n) || n < 0 || n > 0xffffffff) throw new UsageError(`--${what}: "${text}" is not a 32-bit number`);
  return n;
}

function ports(args: ParsedArgs, name: string): number[] {
  return optionList(args, name).map((p) => parsePort(p, `--${name}`));
}

/** The RedirectConfig fields the options set; the rest come from DEFAULT_REDIRECT_CONFIG. */
export function configFromArgs(args: ParsedArgs): Partial<RedirectConfig> {
  const c: Partial<RedirectConfig> = {};
  const inPort = optionValue(args, 'inbound-proxy-port');
  if (inPort) c.inboundProxyPort = parsePort(inPort, '--inbound-proxy-port');
  const outPort = optionValue(args, 'outbound-proxy-port');
  if (outPort) c.outboundProxyPort = parsePort(outPort, '--outbound-proxy-port');
  if (args.options.has('inbound-ports')) c.inboundPorts = ports(args, 'inbound-ports');
  if (args.options.has('exclude-inbound-ports'))
    c.excludeInboundPorts = [...DEFAULT_REDIRECT_CONFIG.excludeInboundPorts, ...ports(args, 'exclude-inbound-ports')];
  if (args.options.has('exclude-outbound-ports')) c.excludeOutboundPorts = ports(args, 'exclude-outbound-ports');
  if (args.options.has('exclude-inbound-cidrs')) c.excludeInboundCidrs = optionList(args, 'exclude-inbound-cidrs');
  if (args.options.has('exclude-outbound-cidrs')) c.excludeOutboundCidrs = optionList(args, 'exclude-outbound-cidrs');
  const proxyMark = optionValue(args, 'proxy-mark');
  if (proxyMark) c.proxyMark = parseU32(proxyMark, 'proxy-mark');
  const uid = optionValue(args, 'proxy-uid');
  if (uid) c.proxyUid = parseU32(uid, 'proxy-uid');
  const mark = optionValue(args, 'tproxy-mark');
  if (mark) c.tproxyMark = parseU32(mark, 'tproxy-mark');
  if (args.flags.has('no-ipv6')) c.captureIpv6 = false;
  const table = optionValue(args, 'route-table');
  if (table) c.routeTable = parseU32(table, 'route-table');
  return c;
}

function modeFromArgs(args: ParsedArgs): CaptureMode {
  const mode = optionValue(args, 'mode') ?? 'nft';
  if (mode !== 'nft' && mode !== 'bpf') throw new UsageError(`--mode: "${mode}" is not nft or bpf`);
  return mode;
}

async function apply(args: ParsedArgs): Promise<number> {
  const redirect = await import('../datapath/redirect');
  const partial = configFromArgs(args);
  const mode = modeFromArgs(args);
  const config = redirect.withDefaults(partial);
  try {
    redirect.validateRedirectConfig(config, mode);
  } catch (err) {
    throw new UsageError((err as Error).message);
  }
  if (args.flags.has('dry-run')) {
    process.stdout.write(
      redirect.renderApplyTransaction(config, mode, { interfaces: args.options.has('interfaces') ? optionList(args, 'interfaces') : undefined }),
    );
    return 0;
  }
  const netns = optionValue(args, 'netns');
  const interfaces = args.options.has('interfaces') ? optionList(args, 'interfaces') : undefined;
  const state = await redirect.applyRedirect(partial, { netns, mode, interfaces });
  console.log(
    `redirect applied in ${netns ?? 'the host namespace'} (mode ${mode}): inbound -> :${config.inboundProxyPort}, outbound -> :${config.outboundProxyPort}, ` +
      `fwmark ${hex(config.tproxyMark)} -> table ${config.routeTable}, proxy mark ${hex(config.proxyMark)}` +
      (config.proxyUid !== undefined ? `, proxy uid ${config.proxyUid}` : '') +
      (state.devices ? `, tc ingress on ${state.devices.join(', ')}` : ''),
  );
  return 0;
}

async function remove(args: ParsedArgs): Promise<number> {
  const redirect = await import('../datapath/redirect');
  const netns = optionValue(args, 'netns');
  const outcome = await redirect.removeRedirect({ netns }, configFromArgs(args));
  console.log(
    outcome === 'namespace-gone'
      ? `redirect: namespace ${netns} is gone (its rules with it); freed the agent's record and BPF pins`
      : `redirect removed from ${netns ?? 'the host namespace'}`,
  );
  return 0;
}

function setText(values: string[] | undefined): string {
  return values && values.length > 0 ? values.join(', ') : '-';
}

async function status(args: ParsedArgs): Promise<number> {
  const redirect = await import('../datapath/redirect');
  const netns = optionValue(args, 'netns');
  const s = await redirect.redirectStatus({ netns });
  if (args.flags.has('json')) {
    console.log(JSON.stringify(s, null, 2));
    return 0;
  }
  const where = netns ?? 'the host namespace';
  if (!s.installed) {
    console.log(`redirect: not installed in ${where}`);
    for (const r of [...s.routing.rules, ...s.routing.routes]) console.log(`  leftover: ${r}`);
    return 0;
  }
  const lines = [`redirect: installed in ${where} (mode ${s.mode}${s.appliedAt ? `, applied ${s.appliedAt}` : ''})`];
  if (s.config) {
    const c = s.config;
    lines.push(
      `  inbound -> :${c.inboundProxyPort}  outbound -> :${c.outboundProxyPort}  fwmark ${hex(c.tproxyMark)} -> table ${c.routeTable}  proxy mark ${hex(c.proxyMark)}${c.proxyUid !== undefined ? `  proxy uid ${c.proxyUid}` : ''}`,
    );
  }
  lines.push('  policy routing:', ...[...s.routing.rules, ...s.routing.routes].map((r) => `    ${r}`));
  lines.push(
    '  sets:',
    `    inbound ports:          ${setText(s.nft.sets.inbound_ports) === '-' ? 'all' : setText(s.nft.sets.inbound_ports)}`,
    `    excluded inbound ports: ${setText(s.nft.sets.exclude_inbound_ports)}`,
    `    excluded inbound from:  ${setText([...(s.nft.sets.exclude_inbound_v4 ?? []), ...(s.nft.sets.exclude_inbound_v6 ?? [])])}`,
    `    excluded outbound ports: ${setText(s.nft.sets.exclude_outbound_ports)}`,
    `    excluded outbound to:   ${setText([...(s.nft.sets.exclude_outbound_v4 ?? []), ...(s.nft.sets.exclude_outbound_v6 ?? [])])}`,
  );
  lines.push('  nft counters (packets / bytes):');
  for (const [name, v] of Object.entries(s.nft.counters)) lines.push(`    ${name.padEnd(22)} ${String(v.packets).padStart(10)} / ${v.bytes}`);
  if (s.bpf) {
    lines.push(`  tc ingress program on: ${setText(s.bpf.devices)}`, '  bpf counters (packets):');
    for (const [name, v] of Object.entries(s.bpf.stats)) lines.push(`    ${name.padEnd(22)} ${String(v).padStart(10)}`);
  }
  for (const w of s.warnings) lines.push(`  warning: ${w}`);
  console.log(lines.join('\n'));
  return 0;
}

export const command: Command = {
  summary: SUMMARY,
  async run(argv: string[]): Promise<number> {
    const usage = { command: 'redirect apply|remove|status [options]', summary: SUMMARY };
    const args = parseArgs(argv, SPEC, usage);
    const [action, ...extra] = args.positionals;
    if (!action) {
      console.log(usageText(usage.command, usage.summary, SPEC));
      return 2;
    }
    if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);
    const actions: Record<string, (a: ParsedArgs) => Promise<number>> = { apply, remove, status };
    const fn = actions[action];
    if (!fn) throw new UsageError(`unknown action "${action}" (apply, remove or status)`);
    const { PrerequisiteError } = await import('../datapath/redirect');
    try {
      return await fn(args);
    } catch (err) {
      if (err instanceof PrerequisiteError) {
        console.error(`meshaccel redirect ${action}: cannot run here, missing:\n${err.missing.map((m) => `  - ${m}`).join('\n')}`);
        return 1;
      }
      if (err instanceof UsageError) throw err;
      console.error(`meshaccel redirect ${action}: ${(err as Error).message}`);
      return 1;
    }
  },
};
