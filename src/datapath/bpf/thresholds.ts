/**
 * The hand-off masks (struct meshaccel_config.tcp_same_cpu_mask / tcp_other_cpu_mask): which send
 * sizes plain loopback TCP carries better than sk_msg redirection, with the reader on the writer's
 * CPU and with it on another CPU (the programs read which per flow at run time). They come from the two size thresholds
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
  tcpSameCpuMask: number;
  tcpOtherCpuMask: number;
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
 * Masks from size thresholds, rounded to whole powers of two: "below smallMax" (either layout)
 * covers the buckets that lie entirely below it, "from largeMin" (reader on another CPU) those
 * that start at or above it.
 */
export function masksFromThresholds(smallMax: number, largeMin: number): { tcpSameCpuMask: number; tcpOtherCpuMask: number } {
  let small = 0;
  let large = 0;
  for (let b = 0; b < MASK_BITS; b++) {
    if (2 ** (b + 1) <= smallMax) small |= bit(b);
    if (largeMin > 0 && 2 ** b >= largeMin) large |= bit(b);
  }
  return { tcpSameCpuMask: small >>> 0, tcpOtherCpuMask: (small | large) >>> 0 };
}

/**
 * Which measured size decides bucket b: the one at its upper end for odd buckets (sizes a
 * factor of 4 apart), the smallest for everything below it, the largest for everything above.
 */
export function calibIndexOf(b: number): number {
  const i = Math.ceil((b - Math.log2(CALIB_SIZES[0])) / 2);
  return Math.max(0, Math.min(CALIB_SIZES.length - 1, i));
}

/** Sizes below this (16 KiB) need SMALL_REDIRECT_MARGIN to stay redirected. */
export const SMALL_BELOW = 16384;

/**
 * Below SMALL_BELOW a size stays redirected only when redirection won by this factor. Short
 * trials flatter redirection for small writes (TCP's coalescing grows with the queue a long run
 * builds): on two CPUs here 4 KiB calibrated at 1.28x where 1.5 s bench runs of the reference
 * program gave 1.20x (C) and 1.42x (Node); on one CPU 0.69x-0.75x where the bench gave 0.68x.
 */
export const SMALL_REDIRECT_MARGIN = 1.1;

/** redirect/TCP for a point (1 when unmeasured). */
const ratioOf = (p: CalibPoint): number => (p.tcpBps > 0 && p.redirectBps > 0 ? p.redirectBps / p.tcpBps : 1);

/**
 * From SMALL_BELOW a size stays redirected only when redirection won by this factor. Between
 * 0.97x and 1.05x the two paths are equal within what a shared machine lets a bench tell apart
 * (and the bench counts a reference gain only from 1.05x), so TCP, which costs nothing once the
 * sockets have left the sockhash, takes that band: a size misjudged there lands near 1.0x
 * either way, while redirecting a size that loses a little lands under plain loopback.
 */
export const REDIRECT_MARGIN = 1.05;

/** The redirected/TCP ratio from which a measured size stays redirected (see the margins). */
export const redirectCutOf = (bytes: number): number => (bytes < SMALL_BELOW ? SMALL_REDIRECT_MARGIN : REDIRECT_MARGIN);

/** TCP is better for a measured point unless redirection won by the margin for its size. */
export const tcpBetter = (p: CalibPoint, bytes: number): boolean => ratioOf(p) < redirectCutOf(bytes);

/**
 * Masks from calibration figures: each size bucket follows its measured size (calibIndexOf) on
 * each layout, with that size's margin. With one CPU measured, the other-CPU mask is the
 * same-CPU one (a reader cannot be on another CPU there).
 */
export function masksFromCalibration(calib: CalibPoint[][]): { tcpSameCpuMask: number; tcpOtherCpuMask: number } {
  const same = calib[0];
  const two = calib[1] && calib[1].length > 0 ? calib[1] : same;
  let sameMask = 0;
  let otherMask = 0;
  for (let b = 0; b < MASK_BITS; b++) {
    const i = calibIndexOf(b);
    if (tcpBetter(same[i], CALIB_SIZES[i])) sameMask |= bit(b);
    if (tcpBetter(two[i], CALIB_SIZES[i])) otherMask |= bit(b);
  }
  return { tcpSameCpuMask: sameMask >>> 0, tcpOtherCpuMask: otherMask >>> 0 };
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
    return `calibration on this machine at ${when} (plain TCP/redirected one-way throughput, median redirected/plain ratio of paired trials, the path taken: redirect from ${REDIRECT_MARGIN}x, ${SMALL_REDIRECT_MARGIN}x under ${sizeText(SMALL_BELOW)})`;
  }
  const large = t.bulkLargeMin > 0 ? `, bulk-large-min ${t.bulkLargeMin} B` : ', bulk-large-min off';
  return `${t.source === 'flags' ? 'flags' : 'defaults (not calibrated)'}: bulk-small-max ${t.bulkSmallMax} B${large}`;
}
