import * as fs from 'fs';
import {
  BPFFS_MOUNT,
  COUNTER_NAMES,
  Counters,
  DEFAULT_BULK_SMALL_MAX,
  DEFAULT_BULK_LARGE_MIN,
  DEFAULT_LEAVE_DELAY_MS,
  DEFAULT_BULK_STREAK,
  DEFAULT_PIN_DIR,
  LeaveDelay,
  leaveDelayOf,
  leaveDelayValue,
  MODE_VALUES,
  SkMsgMode,
  modeName,
} from './abi';
import { makePinDir, mountBpffs } from './bpffs';
import { cgroup2Root, cgroupPathOf } from './cgroup';
import { NativeProgInfo, NativeSocket, loadNative } from './native';
import { ObjectPaths, PreflightError, defaultObjectPaths, missingRequirements, preflight } from './preflight';

/**
 * The eBPF loopback accelerator: load (or adopt) the programs, attach to a cgroup, configure,
 * report and detach. Each call works from the pins alone, so any process (the agent, the CLI,
 * a second agent) sees and controls the same state.
 */
export interface DatapathTarget {
  /** bpffs directory holding the pins; tests use their own so they never touch the default. */
  pinDir?: string;
  objects?: ObjectPaths;
  addon?: string;
}

export interface AttachOptions extends DatapathTarget {
  /** cgroup v2 directory whose sockets are accelerated; the cgroup2 root by default. */
  cgroup?: string;
  /** Only pairs with one of these ports (sidecar ports); every loopback pair when empty. */
  ports?: number[];
  bulkStreak?: number;
  bulkSmallMax?: number;
  /** Sends from this size that find the reader busy count toward the hand-off streak (0 = off). */
  bulkLargeMin?: number;
  /** Minimum ms a TCP-only socket waits before leaving the sockhash once that is safe (`'never'`: it stays). */
  leaveDelayMs?: LeaveDelay;
}

export interface AttachResult {
  pinDir: string;
  cgroup: string;
  cgroupId: number;
  linkId: number;
  mode: SkMsgMode;
  ports: number[];
  /** The pinned programs (a previous start) were this build's and were reused. */
  adopted: boolean;
  /** Programs of another build were pinned and were replaced in place by this build's. */
  upgraded: boolean;
  /** The cgroup link already existed; only the configuration was updated. */
  alreadyAttached: boolean;
}

export interface SocketEntry {
  netnsCookie: bigint;
  family: 4 | 6;
  localAddress: string;
  localPort: number;
  remoteAddress: string;
  remotePort: number;
  socketCookie: bigint;
  tcpOnly: boolean;
}

export interface ProgramInfo {
  id: number;
  name: string;
  runCount: number;
  runTimeNs: number;
}

export interface DatapathStatus {
  pinDir: string;
  loaded: boolean;
  attached: boolean;
  programs: { sockops: ProgramInfo | null; skMsg: ProgramInfo | null };
  cgroup: { id: number; path: string | null; linkId: number } | null;
  /** Program ids attached to the sockhash (null when the kernel cannot say). */
  skMsgAttachedIds: number[] | null;
  mode: SkMsgMode | 'unknown' | null;
  bulkStreak: number | null;
  bulkSmallMax: number | null;
  bulkLargeMin: number | null;
  leaveDelayMs: LeaveDelay | null;
  ports: number[];
  counters: Counters | null;
  socketCount: number;
  sockets: SocketEntry[];
}

function pinDirOf(t: DatapathTarget): string {
  return t.pinDir ?? DEFAULT_PIN_DIR;
}

function validPorts(ports: number[]): number[] {
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`not a port: ${p}`);
  return [...new Set(ports)].sort((a, b) => a - b);
}

/** Loads or adopts the programs, configures them and attaches sockops to the cgroup. */
export function attach(opts: AttachOptions = {}): AttachResult {
  const cgroup = opts.cgroup ?? cgroup2Root() ?? '/sys/fs/cgroup';
  const objects = opts.objects ?? defaultObjectPaths();
  const missing = missingRequirements(preflight({ cgroup, objects, addon: opts.addon, bpffsMountable: true }));
  if (missing.length > 0) throw new PreflightError(missing);
  const pinDir = pinDirOf(opts);
  // Only the default location is ours to mount; a pin directory elsewhere must already be on bpffs.
  if (pinDir === DEFAULT_PIN_DIR || pinDir.startsWith(BPFFS_MOUNT + '/')) mountBpffs(BPFFS_MOUNT);
  makePinDir(pinDir);
  const native = loadNative(opts.addon);

  const { adopted, upgraded } = native.load({ pinDir, sockopsObject: objects.sockops, skMsgObject: objects.skMsg });
  const ports = validPorts(opts.ports ?? []);
  const mode: SkMsgMode = ports.length > 0 ? 'ports' : 'all';
  // Configure before attaching, so the first socket established in the cgroup already sees
  // the mode it should.
  native.configure(
    pinDir,
    {
      mode: MODE_VALUES[mode],
      bulkStreak: opts.bulkStreak ?? DEFAULT_BULK_STREAK,
      bulkSmallMax: opts.bulkSmallMax ?? DEFAULT_BULK_SMALL_MAX,
      bulkLargeMin: opts.bulkLargeMin ?? DEFAULT_BULK_LARGE_MIN,
      leaveDelayMs: leaveDelayValue(opts.leaveDelayMs ?? DEFAULT_LEAVE_DELAY_MS),
    },
    ports,
  );
  const link = native.attachCgroup(pinDir, cgroup);
  return { pinDir, cgroup, cgroupId: link.cgroupId, linkId: link.linkId, mode, ports, adopted, upgraded, alreadyAttached: link.already };
}

export interface DetachResult {
  pinDir: string;
  /** Pins that existed and were removed (empty: nothing was attached). */
  removed: string[];
}

/**
 * Stops acceleration. Live accelerated connections keep working: they switch to plain TCP
 * (see Detach() in bpf_addon.cc for why their sockhash entries are left to die with them).
 */
export function detach(target: DatapathTarget = {}): DetachResult {
  const pinDir = pinDirOf(target);
  if (!fs.existsSync(pinDir)) return { pinDir, removed: [] };
  const native = loadNative(target.addon);
  const removed = native.detach(pinDir);
  try {
    fs.rmdirSync(pinDir);
  } catch (err) {
    // Something else pinned in our directory: keep it, it is not ours to remove.
    if ((err as NodeJS.ErrnoException).code !== 'ENOTEMPTY' && (err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  return { pinDir, removed };
}

function socketEntry(s: NativeSocket): SocketEntry {
  return {
    netnsCookie: s.netnsCookie,
    family: s.family === 10 ? 6 : 4,
    localAddress: s.localAddress,
    localPort: s.localPort,
    remoteAddress: s.remoteAddress,
    remotePort: s.remotePort,
    socketCookie: s.socketCookie,
    tcpOnly: s.tcpOnly === true,
  };
}

function program(p: NativeProgInfo | null): ProgramInfo | null {
  return p ? { id: p.id, name: p.name, runCount: p.runCount, runTimeNs: p.runTimeNs } : null;
}

export function countersFrom(values: number[]): Counters {
  const c = {} as Counters;
  COUNTER_NAMES.forEach((name, i) => (c[name] = values[i] ?? 0));
  return c;
}

/** Everything the pins show: programs, cgroup attachment, config, counters, sockets. */
export function status(target: DatapathTarget & { maxSockets?: number } = {}): DatapathStatus {
  const pinDir = pinDirOf(target);
  const empty: DatapathStatus = {
    pinDir,
    loaded: false,
    attached: false,
    programs: { sockops: null, skMsg: null },
    cgroup: null,
    skMsgAttachedIds: null,
    mode: null,
    bulkStreak: null,
    bulkSmallMax: null,
    bulkLargeMin: null,
    leaveDelayMs: null,
    ports: [],
    counters: null,
    socketCount: 0,
    sockets: [],
  };
  if (!fs.existsSync(pinDir)) return empty;
  const s = loadNative(target.addon).status(pinDir, target.maxSockets ?? 1024);
  const linkAlive = s.link !== null && s.link.cgroupId !== 0;
  return {
    pinDir,
    loaded: s.prog_sockops !== null && s.prog_sk_msg !== null,
    attached: linkAlive,
    programs: { sockops: program(s.prog_sockops), skMsg: program(s.prog_sk_msg) },
    cgroup: s.link ? { id: s.link.cgroupId, path: linkAlive ? cgroupPathOf(s.link.cgroupId) ?? null : null, linkId: s.link.id } : null,
    skMsgAttachedIds: s.skMsgAttachedIds,
    mode: s.config ? modeName(s.config.mode) : null,
    bulkStreak: s.config?.bulkStreak ?? null,
    bulkSmallMax: s.config?.bulkSmallMax ?? null,
    bulkLargeMin: s.config?.bulkLargeMin ?? null,
    leaveDelayMs: s.config ? leaveDelayOf(s.config.leaveDelayMs) : null,
    ports: s.ports ?? [],
    counters: s.counters ? countersFrom(s.counters) : null,
    socketCount: s.socketCount ?? 0,
    sockets: (s.sockets ?? []).map(socketEntry),
  };
}

/** Counters alone (summed over CPUs); null when nothing is loaded. */
export function counters(target: DatapathTarget = {}): Counters | null {
  return status({ ...target, maxSockets: 0 }).counters;
}

