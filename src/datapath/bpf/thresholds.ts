/**
 * The hand-off masks (struct meshaccel_config.tcp_idle_mask / tcp_busy_mask): which send sizes
 * plain loopback TCP carries better than sk_msg redirection, with the reader idle between sends
 * (one CPU) and with it busy copying out (another CPU). They come from the two size thresholds
 * (defaults or flags) or from a calibration on this machine; this module derives them and says
 * in words what they mean and where they came from. No kernel access: pure functions.
 */
import { CALIB_LAYOUTS, CALIB_SIZES, ThresholdSource } from './abi';

/** Bit b of a mask covers sends of 2^b to 2^(b+1)-1 bytes; bit 31 everything from 2 GiB. */
export const MASK_BITS = 32;

/** One calibration measurement, bytes per second (0: not measured). */
export interface CalibPoint {
  tcpBps: number;
  redirectBps: number;
}

export interface Thresholds {
  source: ThresholdSource;
  tcpIdleMask: number;
  tcpBusyMask: number;
  /** The thresholds the masks came from (defaults, flags); 0 when calibrated. */
  bulkSmallMax: number;
  bulkLargeMin: number;
  /** Unix seconds, 0 unless calibrated. */
  calibratedAt: number;
  /** [layout][CALIB_SIZES index]; empty unless calibrated. Layout 1 is absent on one CPU. */
  calib: CalibPoint[][];
}

const bit = (b: number): number => (b === 31 ? 0x80000000 : 1 << b) >>> 0;

/**
 * Masks from size thresholds, rounded to whole powers of two: "below smallMax" covers the
 * buckets that lie entirely below it, "from largeMin" those that start at or above it.
 */
export function masksFromThresholds(smallMax: number, largeMin: number): { tcpIdleMask: number; tcpBusyMask: number } {
  let idle = 0;
  let busy = 0;
  for (let b = 0; b < MASK_BITS; b++) {
    if (2 ** (b + 1) <= smallMax) idle |= bit(b);
    if (largeMin > 0 && 2 ** b >= largeMin) busy |= bit(b);
  }
  return { tcpIdleMask: idle >>> 0, tcpBusyMask: (idle | busy) >>> 0 };
}

/** Below the smallest measured size, TCP's coalescing only gains as writes shrink. */
const SMALLEST_LOG2 = Math.log2(CALIB_SIZES[0]);

/**
 * Which measured size decides bucket b: the one at its upper end for odd buckets (sizes a
 * factor of 4 apart), the last for everything above the largest.
 */
export function calibIndexOf(b: number): number {
  const i = Math.ceil((b - SMALLEST_LOG2) / 2);
  return Math.max(0, Math.min(CALIB_SIZES.length - 1, i));
}


/**
 * Below this bucket (16 KiB) a reader copies a message too quickly to be caught holding its
 * lock: measured here, 4 KiB one-way runs on two CPUs read "idle" for thousands of windows in a
 * row, 16 KiB ones read "busy" within a few. So there the two layouts cannot be told apart at
 * run time and a bucket gets one verdict for both (see masksFromCalibration).
 */
export const SEPARABLE_FROM_BIT = 14;

/**
 * Below SEPARABLE_FROM_BIT a size goes to redirection only when it won by this factor (geometric
 * mean over the layouts). Short trials flatter redirection for small writes: TCP's coalescing
 * grows with the queue a long run builds. Measured here under load: 4 KiB calibrated at 0.75x to
 * 1.00x on one CPU and 0.52x to 1.22x on two, while 1.5 s bench runs of the reference program
 * gave 0.69x to 0.90x.
 */
export const SMALL_REDIRECT_MARGIN = 1.25;

/** redirect/TCP for a point (1 when unmeasured). */
const ratioOf = (p: CalibPoint): number => (p.tcpBps > 0 && p.redirectBps > 0 ? p.redirectBps / p.tcpBps : 1);

/**
 * From 16 KiB a size stays redirected only when redirection won by this factor. Between 0.97x
 * and 1.05x the two paths are equal within what a shared machine lets a bench tell apart (and
 * the bench counts a reference gain only from 1.05x), so TCP, which costs nothing once the
 * sockets have left the sockhash, takes that band: a size misjudged there lands near 1.0x
 * either way, while redirecting a size that loses a little lands under plain loopback.
 */
export const REDIRECT_MARGIN = 1.05;

/** The redirected/TCP ratio from which a measured size stays redirected (see the margins). */
export const redirectCutOf = (bytes: number): number => (bytes < 2 ** SEPARABLE_FROM_BIT ? SMALL_REDIRECT_MARGIN : REDIRECT_MARGIN);

/** TCP is better for a measured point unless redirection won by the margin for its size. */
export const tcpBetter = (p: CalibPoint, bytes = 2 ** SEPARABLE_FROM_BIT): boolean => ratioOf(p) < redirectCutOf(bytes);

/**
 * Masks from calibration figures. Buckets below the smallest measured size go to TCP; each
 * other bucket follows its measured size (calibIndexOf), per layout. With one CPU measured, the
 * busy reader's mask is the idle one's (there is no other CPU for a reader to be busy on). Below
 * SEPARABLE_FROM_BIT both layouts get one verdict from the geometric mean of their ratios, and
 * redirection needs SMALL_REDIRECT_MARGIN to take it.
 */
export function masksFromCalibration(calib: CalibPoint[][]): { tcpIdleMask: number; tcpBusyMask: number } {
  const same = calib[0];
  const two = calib[1] && calib[1].length > 0 ? calib[1] : same;
  let idle = 0;
  let busy = 0;
  for (let b = 0; b < MASK_BITS; b++) {
    if (b < SMALLEST_LOG2) {
      idle |= bit(b);
      busy |= bit(b);
      continue;
    }
    const [s, t] = [same[calibIndexOf(b)], two[calibIndexOf(b)]];
    let [tcpIdle, tcpBusy] = [tcpBetter(s), tcpBetter(t)];
    if (b < SEPARABLE_FROM_BIT) tcpIdle = tcpBusy = Math.sqrt(ratioOf(s) * ratioOf(t)) < SMALL_REDIRECT_MARGIN;
    if (tcpIdle) idle |= bit(b);
    if (tcpBusy) busy |= bit(b);
  }
  return { tcpIdleMask: idle >>> 0, tcpBusyMask: busy >>> 0 };
}

export function sizeText(bytes: number): string {
  if (bytes >= 1 << 30 && bytes % (1 << 30) === 0) return `${bytes / (1 << 30)} GiB`;
  if (bytes >= 1 << 20 && bytes % (1 << 20) === 0) return `${bytes / (1 << 20)} MiB`;
  if (bytes >= 1024 && bytes % 1024 === 0) return `${bytes / 1024} KiB`;
  return `${bytes} B`;
}

/** A mask as size ranges: "< 16 KiB, >= 256 KiB", "none", "any size". */
export function maskText(mask: number): string {
  const ranges: string[] = [];
  for (let b = 0; b < MASK_BITS; b++) {
    if (!(mask & bit(b))) continue;
    let e = b;
    while (e + 1 < MASK_BITS && mask & bit(e + 1)) e++;
    if (b === 0 && e === MASK_BITS - 1) return 'any size';
    if (b === 0) ranges.push(`< ${sizeText(2 ** (e + 1))}`);
    else if (e === MASK_BITS - 1) ranges.push(`>= ${sizeText(2 ** b)}`);
    else ranges.push(`${sizeText(2 ** b)} to < ${sizeText(2 ** (e + 1))}`);
    b = e;
  }
  return ranges.length > 0 ? ranges.join(', ') : 'none';
}

/** The calibration figures, one line per layout: "1 KiB 0.61x (TCP), ..." (redirect/TCP). */
export function calibLines(calib: CalibPoint[][]): string[] {
  return calib
    .map((points, layout) => {
      if (points.length === 0 || points.every((p) => p.tcpBps === 0)) return '';
      const cells = points.map((p, i) => {
        const ratio = p.tcpBps > 0 ? (p.redirectBps / p.tcpBps).toFixed(2) : '?';
        return `${sizeText(CALIB_SIZES[i])} ${(p.tcpBps / 1e6).toFixed(0)}/${(p.redirectBps / 1e6).toFixed(0)} MB/s ${ratio}x ${tcpBetter(p, CALIB_SIZES[i]) ? 'TCP' : 'redirect'}`;
      });
      return `${CALIB_LAYOUTS[layout]}: ${cells.join('; ')}`;
    })
    .filter((l) => l !== '');
}

/** Where the masks came from, in words. */
export function sourceText(t: Thresholds): string {
  if (t.source === 'calibration') {
    const when = t.calibratedAt > 0 ? new Date(t.calibratedAt * 1000).toISOString() : 'an unknown time';
    return `calibration on this machine at ${when} (plain TCP/redirected one-way throughput, median redirected/plain ratio of paired trials, the path taken: redirect from ${REDIRECT_MARGIN}x, ${SMALL_REDIRECT_MARGIN}x under ${sizeText(2 ** SEPARABLE_FROM_BIT)})`;
  }
  const large = t.bulkLargeMin > 0 ? `, bulk-large-min ${t.bulkLargeMin} B` : ', bulk-large-min off';
  return `${t.source === 'flags' ? 'flags' : 'defaults (not calibrated)'}: bulk-small-max ${t.bulkSmallMax} B${large}`;
}
