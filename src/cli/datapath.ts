import type { Command } from './command';
import { UsageError, optionList, optionValue, parseArgs, parsePort, OptionSpec } from './args';
import type { AttachOptions, DatapathStatus } from '../datapath/bpf/datapath';
import { calibLines, maskText, sourceText } from '../datapath/bpf/thresholds';

/**
 * `meshaccel datapath attach|detach|status`: the eBPF loopback accelerator. Missing
 * requirements (root, bpf(), cgroup v2, built objects/addon) are named and exit 1; the proxy
 * path works without any of this.
 */
const COMMON: Record<string, OptionSpec> = {
  'pin-dir': { value: true, description: 'bpffs directory for the pins (default /sys/fs/bpf/meshaccel)' },
  json: { description: 'print JSON' },
  help: { description: 'show this help' },
};

const ATTACH: Record<string, OptionSpec> = {
  cgroup: { value: true, description: 'cgroup v2 directory to accelerate (default: the cgroup2 root)' },
  ports: { value: true, repeated: true, description: 'only pairs using these ports (e.g. 15001,15006); default: all loopback' },
  'leave-delay-ms': { value: true, description: 'minimum ms a socket handed to TCP waits before leaving the sockhash once that is safe, or never (default 0)' },
  'bulk-streak': {
    value: true,
    description: 'one-way sends (a window) that must all suit TCP before a flow is handed to it (0 = never; default 16; at most 65535)',
  },
  'bulk-small-max': { value: true, description: 'sends below this many bytes suit TCP (rounded down to a power of two; default 16384); skips calibration' },
  'bulk-large-min': {
    value: true,
    description:
      'sends from this many bytes suit TCP when the reader is on another CPU (rounded up to a power of two; default 262144; 0 = off); skips calibration',
  },
  'layout-hold-ms': { value: true, description: 'ms a run whose sizes suit TCP on one CPU layout only must read that layout before it hands off (default 50)' },
  calibrate: {
    description:
      'measure on this machine which write sizes plain TCP carries better than redirection (about 6 s) even if a calibration is pinned; without threshold flags the first attach measures anyway',
  },
  'no-calibrate': { description: 'use the default thresholds instead of measuring them' },
  ...COMMON,
};

const STATUS: Record<string, OptionSpec> = {
  sockets: { value: true, description: 'list at most this many sockhash entries (default 20)' },
  ...COMMON,
};

function jsonText(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x), 2);
}

function nonNegative(text: string, what: string): number {
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${what}: "${text}" is not a non-negative integer`);
  return n;
}

function handoffLines(s: DatapathStatus): string[] {
  const leave =
    s.leaveDelayMs === 'never' ? 'never leave the sockhash' : `leave the sockhash when safe${s.leaveDelayMs ? `, no sooner than ${s.leaveDelayMs} ms` : ''}`;
  if (s.bulkStreak === 0) return [`bulk hand-off off; handed-off sockets ${leave}`];
  const t = s.thresholds;
  if (!t) return [`bulk hand-off after ${s.bulkStreak ?? '?'} one-way sends; handed-off sockets ${leave}`];
  const lines = [
    `hand-off:   a one-way run goes to plain TCP once ${s.bulkStreak} sends in a row suit it; handed-off sockets ${leave}`,
    `  suit TCP with the reader on the writer's CPU: ${maskText(t.tcpSameCpuMask)}`,
    `  suit TCP with the reader on another CPU:      ${maskText(t.tcpOtherCpuMask)}`,
    `  (the layout is read per flow: the CPU the reader last received on, against the writer's)`,
    `  a run that suits TCP on one layout only must read that layout for ${s.layoutHoldMs ?? '?'} ms first`,
    `  from ${sourceText(t)}`,
  ];
  for (const l of calibLines(t.calib)) lines.push(`    ${l}`);
  return lines;
}

function statusText(s: DatapathStatus, maxSockets: number): string {
  const lines: string[] = [];
  lines.push(`pin dir:    ${s.pinDir}${s.loaded ? '' : ' (nothing loaded)'}`);
  if (!s.loaded && !s.attached) return lines.join('\n');
  const prog = (p: DatapathStatus['programs']['sockops']): string => (p ? `id ${p.id} ${p.name}` : 'not loaded');
  lines.push(`sockops:    ${prog(s.programs.sockops)}`);
  lines.push(`sk_msg:     ${prog(s.programs.skMsg)}${s.skMsgAttachedIds ? ` (attached to sockhash: ${s.skMsgAttachedIds.length > 0 ? 'yes' : 'no'})` : ''}`);
  lines.push(`reader CPU: ${prog(s.programs.readerCpu)}${s.programs.readerCpu ? ' (tracepoint sock_recv_length)' : ''}`);
  lines.push(`cgroup:     ${s.cgroup ? `${s.cgroup.path ?? '(removed)'} (id ${s.cgroup.id}, link ${s.cgroup.linkId})` : 'not attached'}`);
  lines.push(`mode:       ${s.mode ?? '?'}${s.mode === 'ports' ? ` ${s.ports.join(',')}` : ''}`);
  lines.push(...handoffLines(s));
  if (s.counters) {
    const c = s.counters;
    lines.push(`redirected: ${c.redirectedMessages} messages, ${c.redirectedBytes} bytes`);
    lines.push(`passed:     ${c.passedMessages} messages, ${c.passedBytes} bytes (misses ${c.misses}, bulk hand-offs ${c.bulkHandoffs})`);
    lines.push(
      `sockets:    ${c.socketsInserted} inserted, ${c.socketsClosed} closed, ${c.insertErrors} insert errors, ${c.socketsLeft} left for plain TCP (${c.leaveWaits} leave checks waited on a busy peer)`,
    );
    lines.push(
      `windows:    ${c.windowsSameCpu} judged with the reader on the writer's CPU, ${c.windowsOtherCpu} on another CPU (only windows whose sizes depend on it)`,
    );
  }
  lines.push(`sockhash:   ${s.socketCount} entries`);
  for (const e of s.sockets.slice(0, maxSockets)) {
    const addr = (a: string, p: number): string => (e.family === 6 ? `[${a}]:${p}` : `${a}:${p}`);
    lines.push(
      `  netns ${e.netnsCookie} ${addr(e.localAddress, e.localPort)} -> ${addr(e.remoteAddress, e.remotePort)} cookie ${e.socketCookie}${e.tcpOnly ? ' tcp-only' : ''}`,
    );
  }
  return lines.join('\n');
}

async function attachCmd(argv: string[]): Promise<number> {
  const args = parseArgs(argv, ATTACH, { command: 'datapath attach', summary: 'Load (or adopt) the sockops/sk_msg programs and attach them to a cgroup.' });
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  const ports = optionList(args, 'ports').map((p) => parsePort(p, '--ports'));
  const streak = optionValue(args, 'bulk-streak');
  const smallMax = optionValue(args, 'bulk-small-max');
  const largeMin = optionValue(args, 'bulk-large-min');
  const leaveDelay = optionValue(args, 'leave-delay-ms');
  const holdMs = optionValue(args, 'layout-hold-ms');
  const thresholdFlags = smallMax !== undefined || largeMin !== undefined;
  if (args.flags.has('calibrate') && args.flags.has('no-calibrate')) throw new UsageError('--calibrate and --no-calibrate exclude each other');
  if (thresholdFlags && args.flags.has('calibrate'))
    throw new UsageError('--calibrate measures the thresholds: drop --bulk-small-max/--bulk-large-min, or --calibrate');
  // Parsed before anything is loaded, so bad usage exits 2 and changes nothing.
  const options: AttachOptions = {
    cgroup: optionValue(args, 'cgroup'),
    pinDir: optionValue(args, 'pin-dir'),
    ports,
    bulkStreak: streak === undefined ? undefined : nonNegative(streak, '--bulk-streak'),
    bulkSmallMax: smallMax === undefined ? undefined : nonNegative(smallMax, '--bulk-small-max'),
    bulkLargeMin: largeMin === undefined ? undefined : nonNegative(largeMin, '--bulk-large-min'),
    leaveDelayMs: leaveDelay === undefined ? undefined : leaveDelay === 'never' ? 'never' : nonNegative(leaveDelay, '--leave-delay-ms (or never)'),
    layoutHoldMs: holdMs === undefined ? undefined : nonNegative(holdMs, '--layout-hold-ms'),
    // Without flags, a machine's first attach measures its own thresholds and later ones keep them.
    calibrate: thresholdFlags || args.flags.has('no-calibrate') ? false : args.flags.has('calibrate') ? true : 'if-missing',
  };
  if (options.bulkStreak !== undefined && options.bulkStreak > 65535) throw new UsageError(`--bulk-streak: ${options.bulkStreak} is above 65535`);
  const dp = await import('../datapath/bpf/datapath');
  const pre = await import('../datapath/bpf/preflight');
  try {
    const r = dp.attach(options);
    if (args.flags.has('json')) console.log(jsonText(r));
    else
      console.log(
        `datapath ${r.alreadyAttached ? 'already attached' : 'attached'} to ${r.cgroup} (cgroup id ${r.cgroupId}, link ${r.linkId}); ` +
          `programs ${r.adopted ? 'adopted from' : r.upgraded ? 'of another build replaced under' : 'loaded and pinned under'} ${r.pinDir}; mode ${r.mode}${r.mode === 'ports' ? ` ${r.ports.join(',')}` : ''}\n` +
          handoffLines(dp.status({ pinDir: r.pinDir, maxSockets: 0 })).join('\n'),
      );
    return 0;
  } catch (err) {
    if (err instanceof pre.PreflightError) {
      console.error('meshaccel datapath attach: cannot attach the eBPF datapath; missing:');
      for (const m of err.missing) console.error(`  - ${m.name}: ${m.detail}`);
      console.error('The proxy path keeps working without it (plain loopback TCP).');
      return 1;
    }
    console.error(`meshaccel datapath attach: ${(err as Error).message}`);
    return 1;
  }
}

async function detachCmd(argv: string[]): Promise<number> {
  const args = parseArgs(argv, COMMON, { command: 'datapath detach', summary: 'Detach and unpin; live connections continue over plain TCP.' });
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  const dp = await import('../datapath/bpf/datapath');
  try {
    const r = dp.detach({ pinDir: optionValue(args, 'pin-dir') });
    if (args.flags.has('json')) console.log(jsonText(r));
    else
      console.log(
        r.removed.length > 0 ? `datapath detached; removed ${r.removed.join(', ')} from ${r.pinDir}` : `datapath not attached (nothing under ${r.pinDir})`,
      );
    return 0;
  } catch (err) {
    console.error(`meshaccel datapath detach: ${(err as Error).message}`);
    return 1;
  }
}

async function statusCmd(argv: string[]): Promise<number> {
  const args = parseArgs(argv, STATUS, { command: 'datapath status', summary: 'Programs, cgroup attachment, counters and sockhash entries.' });
  if (args.positionals.length > 0) throw new UsageError(`unexpected argument "${args.positionals[0]}"`);
  const max = optionValue(args, 'sockets');
  const maxSockets = max === undefined ? 20 : nonNegative(max, '--sockets');
  const dp = await import('../datapath/bpf/datapath');
  try {
    const s = dp.status({ pinDir: optionValue(args, 'pin-dir'), maxSockets });
    console.log(args.flags.has('json') ? jsonText(s) : statusText(s, maxSockets));
    return 0;
  } catch (err) {
    console.error(`meshaccel datapath status: ${(err as Error).message}`);
    return 1;
  }
}

const SUBCOMMANDS: Record<string, (argv: string[]) => Promise<number>> = { attach: attachCmd, detach: detachCmd, status: statusCmd };

export const command: Command = {
  summary: 'eBPF loopback acceleration: datapath attach|detach|status',
  async run(argv: string[]): Promise<number> {
    const [sub, ...rest] = argv;
    if (!sub || sub === '--help' || sub === 'help') {
      console.log('usage: meshaccel datapath attach|detach|status [options]\n\nRun `meshaccel datapath <sub> --help` for options.');
      return sub ? 0 : 2;
    }
    const run = SUBCOMMANDS[sub];
    if (!run) throw new UsageError(`unknown datapath subcommand "${sub}" (attach, detach, status)`);
    return run(rest);
  },
};
