import * as fs from 'fs';
import {
  BPFFS_MOUNT,
  COUNTER_NAMES,
  Counters,
  DEFAULT_BULK_SMALL_MAX,
  DEFAULT_BULK_LARGE_MIN,
  DEFAULT_LAYOUT_HOLD_MS,
  DEFAULT_LEAVE_DELAY_MS,
  DEFAULT_BULK_STREAK,
  DEFAULT_PIN_DIR,
  LeaveDelay,
  leaveDelayOf,
  leaveDelayValue,
  MODE_VALUES,
  SkMsgMode,
  modeName,
  CALIB_SIZES,
  THRESHOLD_SOURCES,
} from './abi';
import { makePinDir, mountBpffs } from './bpffs';
import { CalibPoint, Thresholds, masksFromCalibration, masksFromThresholds, redirectCutOf } from './thresholds';
import { cgroup2Root, cgroupPathOf } from './cgroup';
import { NativeConfig, NativeProgInfo, NativeSocket, loadNative } from './native';
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
  /** Sends below this size hand off (rounded down to a power of two); setting it or bulkLargeMin means "flags". */
  bulkSmallMax?: number;
  /** Sends from this size hand off when the reader is on another CPU (rounded up to a power of two; 0 = off). */
  bulkLargeMin?: number;
  /**
   * Measure which sizes TCP carries better on this machine (see calibrate()) instead of using
   * the default thresholds. 'if-missing': keep the pinned calibration when there is one, else
   * measure. Not combinable with bulkSmallMax/bulkLargeMin. Default false (the defaults).
   */
  calibrate?: boolean | 'if-missing';
  /** How long a run that suits TCP on one CPU layout only must read that layout before it hands off (default 50 ms). */
  layoutHoldMs?: number;
  /** Calibration trial length and rounds (default 30 ms, 5). */
  calibrateTrialMs?: number;
  calibrateRounds?: number;
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
  /** The hand-off masks now in force and where they came from. */
  thresholds: Thresholds;
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
  programs: { sockops: ProgramInfo | null; skMsg: ProgramInfo | null; readerCpu: ProgramInfo | null };
  cgroup: { id: number; path: string | null; linkId: number } | null;
  /** Program ids attached to the sockhash (null when the kernel cannot say). */
  skMsgAttachedIds: number[] | null;
  mode: SkMsgMode | 'unknown' | null;
  bulkStreak: number | null;
  bulkSmallMax: number | null;
  bulkLargeMin: number | null;
  leaveDelayMs: LeaveDelay | null;
  layoutHoldMs: number | null;
  /** The hand-off masks, where they came from and the calibration's figures. */
  thresholds: Thresholds | null;
  ports: number[];
  counters: Counters | null;
  socketCount: number;
  sockets: SocketEntry[];
}

function pinDirOf(t: DatapathTarget): string {
  return t.pinDir ?? DEFAULT_PIN_DIR;
}

/** Only the default bpffs is ours to mount; a pin directory elsewhere must already be on bpffs. */
function preparePinDir(pinDir: string): void {
  if (pinDir === DEFAULT_PIN_DIR || pinDir.startsWith(BPFFS_MOUNT + '/')) mountBpffs(BPFFS_MOUNT);
  makePinDir(pinDir);
}

function validPorts(ports: number[]): number[] {
  for (const p of ports) if (!Number.isInteger(p) || p < 1 || p > 65535) throw new Error(`not a port: ${p}`);
  return [...new Set(ports)].sort((a, b) => a - b);
}

function thresholdsOf(c: NativeConfig): Thresholds {
  const source = THRESHOLD_SOURCES[c.thresholdSource] ?? 'defaults';
  const calib = source === 'calibration' ? c.calib.map((layout) => layout.map((p) => ({ tcpBps: p.tcpKBps * 1000, redirectBps: p.redirectKBps * 1000 }))) : [];
  // A one-CPU calibration leaves the second layout unmeasured (zeros).
  if (calib.length > 1 && calib[1].every((p) => p.tcpBps === 0)) calib.pop();
  return {
    source,
    tcpSameCpuMask: c.tcpSameCpuMask >>> 0,
    tcpOtherCpuMask: c.tcpOtherCpuMask >>> 0,
    bulkSmallMax: c.bulkSmallMax,
    bulkLargeMin: c.bulkLargeMin,
    calibratedAt: c.calibratedAt,
    calib,
  };
}

/** CPUs this process may run on (Cpus_allowed_list), in order. */
function allowedCpus(): number[] {
  const line = fs.readFileSync('/proc/self/status', 'utf8').split('\n').find((l) => l.startsWith('Cpus_allowed_list:'));
  const cpus: number[] = [];
  for (const part of (line?.split(':')[1] ?? '').trim().split(',')) {
    const [lo, hi] = part.split('-').map(Number);
    if (!Number.isInteger(lo)) continue;
    for (let c = lo; c <= (Number.isInteger(hi) ? hi : lo); c++) cpus.push(c);
  }
  return cpus.length > 0 ? cpus : [0];
}

export interface CalibrateOptions extends DatapathTarget {
  trialMs?: number;
  /** Paired trials per size and layout (default 5)... */
  rounds?: number;
  /** ...and up to this many (default 2 x rounds) while they disagree on the verdict. */
  maxRounds?: number;
}

/**
 * Measures, on this machine and now, one-way loopback throughput over plain TCP and over
 * sk_msg redirection for writes of 1 KiB to 1 MiB, with writer and reader on one CPU and on two
 * (when the process may use two), and derives the hand-off masks: a size hands off where TCP was
 * faster by the margin for its size (see thresholds.ts). Each size runs TCP and redirected trials
 * back to back in pairs, at nice -20 so other load takes little of their CPU, and is judged by the
 * median of the pairs' ratios; a size whose pairs disagree on the verdict gets more pairs. The
 * redirected side runs this build's programs from a private pin directory (never the live maps),
 * redirecting every message with no hand-off; the live attachment's entries for the measuring
 * sockets, if this process is in its cgroup, are removed before any byte is sent.
 * 2 layouts x 6 sizes x 2 paths x 5 to 10 rounds of 15 + trialMs each: 6 to 12 s with the
 * defaults (13 s measured here at load 14, where the old single-priority run took 50 s).
 */
export function calibrate(opts: CalibrateOptions = {}): Thresholds {
  const objects = opts.objects ?? defaultObjectPaths();
  const native = loadNative(opts.addon);
  const live = pinDirOf(opts);
  const tmp = `${live}-calibrate-${process.pid}`;
  preparePinDir(tmp);
  let points: { tcpBps: number; redirectBps: number }[][];
  try {
    native.load({ pinDir: tmp, sockopsObject: objects.sockops, skMsgObject: objects.skMsg });
    native.configure(tmp, { ...configOf('all', 0, thresholdsFromFlags('defaults', DEFAULT_BULK_SMALL_MAX, DEFAULT_BULK_LARGE_MIN), 0) }, []);
    const rounds = opts.rounds ?? 5;
    points = native.calibrate(tmp, fs.existsSync(live) ? live : '', {
      sizes: [...CALIB_SIZES],
      cpus: allowedCpus().slice(0, 2),
      trialMs: opts.trialMs ?? 30,
      warmMs: 15,
      rounds,
      maxRounds: Math.max(rounds, opts.maxRounds ?? 2 * rounds),
      cuts: CALIB_SIZES.map(redirectCutOf),
    });
    // The redirected trials must really have gone through sk_msg, or the figures compare TCP
    // with itself.
    const c = countersFrom(native.status(tmp, 0).counters ?? []);
    if (c.redirectedMessages === 0 || c.passedMessages > 0)
      throw new Error(`calibration: the redirected trials were not redirected (${c.redirectedMessages} redirected, ${c.passedMessages} passed to TCP)`);
  } finally {
    native.detach(tmp);
    fs.rmSync(tmp, { recursive: true, force: true });
  }
  // redirectBps is tcpBps x the median paired ratio, so the figures kept carry the decision's ratio.
  const calib: CalibPoint[][] = points.map((layout) => layout.map((p) => ({ tcpBps: p.tcpBps, redirectBps: p.redirectBps })));
  return { source: 'calibration', ...masksFromCalibration(calib), bulkSmallMax: 0, bulkLargeMin: 0, calibratedAt: Math.floor(Date.now() / 1000), calib };
}

function thresholdsFromFlags(source: 'defaults' | 'flags', smallMax: number, largeMin: number): Thresholds {
  return { source, ...masksFromThresholds(smallMax, largeMin), bulkSmallMax: smallMax, bulkLargeMin: largeMin, calibratedAt: 0, calib: [] };
}

function configOf(mode: SkMsgMode, bulkStreak: number, t: Thresholds, leaveDelayMs: number, layoutHoldMs = DEFAULT_LAYOUT_HOLD_MS): NativeConfig {
  const kB = (x: number): number => Math.min(0xffffffff, Math.round(x / 1000));
  return {
    mode: MODE_VALUES[mode],
    bulkStreak,
    bulkSmallMax: t.bulkSmallMax,
    bulkLargeMin: t.bulkLargeMin,
    leaveDelayMs,
    tcpSameCpuMask: t.tcpSameCpuMask,
    tcpOtherCpuMask: t.tcpOtherCpuMask,
    thresholdSource: THRESHOLD_SOURCES.indexOf(t.source),
    layoutHoldMs,
    calibratedAt: t.calibratedAt,
    calib: t.calib.map((layout) => layout.map((p) => ({ tcpKBps: kB(p.tcpBps), redirectKBps: kB(p.redirectBps) }))),
  };
}

/** Which masks an attach puts in force (see AttachOptions.calibrate). */
function chooseThresholds(opts: AttachOptions, pinDir: string): Thresholds {
  const flags = opts.bulkSmallMax !== undefined || opts.bulkLargeMin !== undefined;
  if (flags && opts.calibrate) throw new Error('calibrate and explicit bulk thresholds (bulkSmallMax/bulkLargeMin) exclude each other');
  if (flags) return thresholdsFromFlags('flags', opts.bulkSmallMax ?? DEFAULT_BULK_SMALL_MAX, opts.bulkLargeMin ?? DEFAULT_BULK_LARGE_MIN);
  if (opts.calibrate === 'if-missing') {
    const pinned = status({ pinDir, maxSockets: 0 }).thresholds;
    if (pinned?.source === 'calibration') return pinned;
  }
  if (opts.calibrate) return calibrate({ pinDir, objects: opts.objects, addon: opts.addon, trialMs: opts.calibrateTrialMs, rounds: opts.calibrateRounds });
  return thresholdsFromFlags('defaults', DEFAULT_BULK_SMALL_MAX, DEFAULT_BULK_LARGE_MIN);
}

/** Loads or adopts the programs, configures them and attaches sockops to the cgroup. */
export function attach(opts: AttachOptions = {}): AttachResult {
  const cgroup = opts.cgroup ?? cgroup2Root() ?? '/sys/fs/cgroup';
  const objects = opts.objects ?? defaultObjectPaths();
  const missing = missingRequirements(preflight({ cgroup, objects, addon: opts.addon, bpffsMountable: true }));
  if (missing.length > 0) throw new PreflightError(missing);
  const pinDir = pinDirOf(opts);
  preparePinDir(pinDir);
  const native = loadNative(opts.addon);

  const ports = validPorts(opts.ports ?? []);
  const mode: SkMsgMode = ports.length > 0 ? 'ports' : 'all';
  const streak = opts.bulkStreak ?? DEFAULT_BULK_STREAK;
  // The window counters in struct meshaccel_flow are 16-bit.
  if (!Number.isInteger(streak) || streak < 0 || streak > 65535) throw new Error(`bulkStreak must be an integer 0..65535, not ${streak}`);
  const hold = opts.layoutHoldMs ?? DEFAULT_LAYOUT_HOLD_MS;
  if (!Number.isInteger(hold) || hold < 0 || hold > 60000) throw new Error(`layoutHoldMs must be an integer 0..60000, not ${hold}`);
  // Before anything live is loaded or changed: a calibration that fails leaves the pins as they were.
  const thresholds = chooseThresholds({ ...opts, objects }, pinDir);
  const { adopted, upgraded } = native.load({ pinDir, sockopsObject: objects.sockops, skMsgObject: objects.skMsg, readerCpuObject: objects.readerCpu });
  // Configure before attaching, so the first socket established in the cgroup already sees
  // the mode it should.
  native.configure(pinDir, configOf(mode, streak, thresholds, leaveDelayValue(opts.leaveDelayMs ?? DEFAULT_LEAVE_DELAY_MS), hold), ports);
  const link = native.attachCgroup(pinDir, cgroup);
  return { pinDir, cgroup, cgroupId: link.cgroupId, linkId: link.linkId, mode, ports, adopted, upgraded, alreadyAttached: link.already, thresholds };
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
    programs: { sockops: null, skMsg: null, readerCpu: null },
    cgroup: null,
    skMsgAttachedIds: null,
    mode: null,
    bulkStreak: null,
    bulkSmallMax: null,
    bulkLargeMin: null,
    leaveDelayMs: null,
    layoutHoldMs: null,
    thresholds: null,
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
    programs: { sockops: program(s.prog_sockops), skMsg: program(s.prog_sk_msg), readerCpu: program(s.prog_reader_cpu) },
    cgroup: s.link ? { id: s.link.cgroupId, path: linkAlive ? cgroupPathOf(s.link.cgroupId) ?? null : null, linkId: s.link.id } : null,
    skMsgAttachedIds: s.skMsgAttachedIds,
    mode: s.config ? modeName(s.config.mode) : null,
    bulkStreak: s.config?.bulkStreak ?? null,
    bulkSmallMax: s.config?.bulkSmallMax ?? null,
    bulkLargeMin: s.config?.bulkLargeMin ?? null,
    leaveDelayMs: s.config ? leaveDelayOf(s.config.leaveDelayMs) : null,
    layoutHoldMs: s.config?.layoutHoldMs ?? null,
    thresholds: s.config ? thresholdsOf(s.config) : null,
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

