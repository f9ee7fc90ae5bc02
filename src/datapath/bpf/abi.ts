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
] as const;

export type CounterName = (typeof COUNTER_NAMES)[number];
export type Counters = Record<CounterName, number>;

export const DEFAULT_PIN_DIR = '/sys/fs/bpf/meshaccel';
export const BPFFS_MOUNT = '/sys/fs/bpf';

/**
 * Bulk small-write hand-off defaults (see struct meshaccel_config): a direction that sends
 * this many messages shorter than bulkSmallMax in a row, while its peer sends nothing, goes
 * to plain TCP, which coalesces small writes better than per-message redirection.
 */
export const DEFAULT_BULK_STREAK = 16;
export const DEFAULT_BULK_SMALL_MAX = 16384;
/**
 * Sends of at least this many bytes that find the reader still holding its socket (copying out
 * the previous message on another CPU) count toward the same streak: the redirect would wait
 * for it, where TCP lets both copy in parallel. Measured on 2 CPUs: 1 MiB writes ran at 0.81-0.86x
 * of plain loopback redirected, 64 KiB writes at 1.4-1.7x, hence the floor between them.
 */
export const DEFAULT_BULK_LARGE_MIN = 262144;
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
