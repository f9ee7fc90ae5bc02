import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../../paths';

/**
 * The addon's raw surface (src/datapath/native/bpf_addon.cc), with every returned shape
 * checked on the way in so the rest of the code never handles untyped values.
 */
export interface NativeProgInfo {
  id: number;
  name: string;
  runCount: number;
  runTimeNs: number;
}

export interface NativeSocket {
  netnsCookie: bigint;
  family: number;
  localAddress: string;
  remoteAddress: string;
  localPort: number;
  remotePort: number;
  socketCookie: bigint;
  tcpOnly?: boolean;
}

export interface NativeConfig {
  mode: number;
  bulkStreak: number;
  bulkSmallMax: number;
  bulkLargeMin: number;
  leaveDelayMs: number;
  tcpSameCpuMask: number;
  tcpOtherCpuMask: number;
  thresholdSource: number;
  layoutHoldMs: number;
  calibratedAt: number;
  /** [layout][size] in KB/s, see struct meshaccel_calib_point. */
  calib: { tcpKBps: number; redirectKBps: number }[][];
}

export interface NativeCalibrateOptions {
  sizes: number[];
  cpus: number[];
  trialMs: number;
  rounds: number;
  /** More rounds, up to this, for a size whose pairs fall on both sides of its cut. */
  maxRounds?: number;
  /** Per size: the redirected/TCP ratio the decision separates at. */
  cuts?: number[];
  /** Priority of the trial's writer thread and reader process (default -20). */
  nice?: number;
  warmMs?: number;
}

/** One size on one layout: the median TCP rate, and that times the median paired redirected/TCP ratio. */
export interface NativeCalibPoint {
  tcpBps: number;
  redirectBps: number;
}

export interface NativeStatus {
  prog_sockops: NativeProgInfo | null;
  prog_sk_msg: NativeProgInfo | null;
  prog_reader_cpu: NativeProgInfo | null;
  link: { id: number; cgroupId: number; progId: number } | null;
  config: NativeConfig | null;
  ports: number[] | null;
  counters: number[] | null;
  sockets: NativeSocket[] | null;
  socketCount: number | null;
  skMsgAttachedIds: number[] | null;
}

export interface NativeBpf {
  probeBpf(): { ok: boolean; errno?: number; message?: string };
  load(opts: { pinDir: string; sockopsObject: string; skMsgObject: string; readerCpuObject?: string }): { adopted: boolean; upgraded: boolean };
  attachCgroup(pinDir: string, cgroupPath: string): { linkId: number; cgroupId: number; already: boolean };
  configure(pinDir: string, config: NativeConfig, ports: number[]): void;
  status(pinDir: string, maxSockets: number): NativeStatus;
  detach(pinDir: string): string[];
  calibrate(pinDir: string, livePinDir: string, opts: NativeCalibrateOptions): NativeCalibPoint[][];
}

export function addonPath(): string {
  return path.join(packageRoot(), 'src/datapath/native/build/Release/meshaccel_bpf.node');
}

const cache = new Map<string, NativeBpf>();

/** Loads the addon; throws an Error that says how to build it when it is missing. */
export function loadNative(file: string = addonPath()): NativeBpf {
  const hit = cache.get(file);
  if (hit) return hit;
  if (!fs.existsSync(file)) throw new Error(`BPF addon not built: ${file} is missing (run \`make addon\`)`);
  const mod = require(file) as Partial<NativeBpf>;
  for (const fn of ['probeBpf', 'load', 'attachCgroup', 'configure', 'status', 'detach', 'calibrate'] as const) {
    if (typeof mod[fn] !== 'function') throw new Error(`BPF addon ${file} has no ${fn}(): rebuild it (\`make addon\`)`);
  }
  cache.set(file, mod as NativeBpf);
  return mod as NativeBpf;
}
