/**
 * The TypeScript side of bpf/include/meshaccel_abi.h: modes, counter indices and pin names.
 * Kept next to the header's order; test/datapath checks the counters against real traffic.
 */
export type SkMsgMode = 'off' | 'all' | 'ports';

export const MODE_VALUES: Readonly<Record<SkMsgMode, number>> = Object.freeze({ off: 0, all: 1, ports: 2 });

export function modeName(value: number): SkMsgMode | 'unknown' {
  for (const [name, v] of Object.entries(MODE_VALUES)) if (v === value) return name as SkMsgMode;
  return 'unknown';
}

/** Index order of enum meshaccel_counter. */
export const COUNTER_NAMES = [
  'redirectedMessages',
  'redirectedBytes',
  'misses',
  'passedMessages',
  'passedBytes',
  'bulkHandoffs',
  'socketsInserted',
  'insertErrors',
  'socketsClosed',
  'socketsLeft',
  'leaveWaits',
  'windowsSameCpu',
  'windowsOtherCpu',
] as const;

export type CounterName = (typeof COUNTER_NAMES)[number];
export type Counters = Record<CounterName, number>;

export const DEFAULT_PIN_DIR = '/sys/fs/bpf/meshaccel';
export const BPFFS_MOUNT = '/sys/fs/bpf';

/**
 * Hand-off defaults (see struct meshaccel_config), used when neither flags nor a calibration
 * say otherwise: a direction whose last 16 sends were all shorter than 16 KiB, or (with the
 * reader on another CPU) at least 256 KiB, while its peer sent nothing, goes to plain TCP.
 * They were tuned on one machine; `datapath attach --calibrate` measures the masks instead.
 */
export const DEFAULT_BULK_STREAK = 16;
export const DEFAULT_BULK_SMALL_MAX = 16384;
export const DEFAULT_BULK_LARGE_MIN = 262144;
/**
 * A run whose sizes suit TCP on one layout only hands off after its windows have read that
 * layout this long in a row (see struct meshaccel_config): 50 ms of the slower path, against
 * an unpinned reader that visits the writer's CPU for a moment giving up redirection for good.
 */
export const DEFAULT_LAYOUT_HOLD_MS = 50;
/** enum meshaccel_threshold_source */
export type ThresholdSource = 'defaults' | 'flags' | 'calibration';
export const THRESHOLD_SOURCES: readonly ThresholdSource[] = ['defaults', 'flags', 'calibration'];
/** The calibration's write sizes (MESHACCEL_CALIB_*): 1 KiB to 1 MiB, a factor of 4 apart. */
export const CALIB_SIZES: readonly number[] = [10, 12, 14, 16, 18, 20].map((b) => 2 ** b);
export const CALIB_LAYOUTS = ['same CPU', 'two CPUs'] as const;
/**
 * Minimum ms a TCP-only socket waits after its hand-off before it leaves the sockhash. Safety
 * does not depend on it (sockops checks the peer can no longer redirect into the socket), so it
 * is 0: leave as soon as that holds. `'never'` keeps handed-off sockets in the sockhash.
 */
export const DEFAULT_LEAVE_DELAY_MS = 0;
export type LeaveDelay = number | 'never';
/** MESHACCEL_LEAVE_NEVER */
export const LEAVE_NEVER_VALUE = 0xffffffff;
export const leaveDelayValue = (d: LeaveDelay): number => (d === 'never' ? LEAVE_NEVER_VALUE : d);
export const leaveDelayOf = (v: number): LeaveDelay => (v === LEAVE_NEVER_VALUE ? 'never' : v);
