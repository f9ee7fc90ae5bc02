import * as assert from 'assert';
import { CALIB_SIZES } from '../../src/datapath/bpf/abi';
import {
  CalibPoint,
  REDIRECT_MARGIN,
  calibIndexOf,
  maskText,
  masksFromCalibration,
  masksFromThresholds,
  redirectCutOf,
  tcpBetter,
} from '../../src/datapath/bpf/thresholds';

/** The masks behind the hand-off, derived from thresholds or figures (no kernel needed). */
describe('datapath: hand-off masks (no kernel needed)', function () {
  it('turns the old default thresholds into < 16 KiB, plus >= 256 KiB with a busy reader', function () {
    const m = masksFromThresholds(16384, 262144);
    assert.strictEqual(m.tcpSameCpuMask, 0x3fff);
    assert.strictEqual(m.tcpOtherCpuMask, (0x3fff | 0xfffc0000) >>> 0);
    assert.strictEqual(maskText(m.tcpSameCpuMask), '< 16 KiB');
    assert.strictEqual(maskText(m.tcpOtherCpuMask), '< 16 KiB, >= 256 KiB');
    assert.strictEqual(maskText(masksFromThresholds(0, 0).tcpOtherCpuMask), 'none');
    assert.strictEqual(maskText(masksFromThresholds(20000, 100000).tcpOtherCpuMask), '< 16 KiB, >= 128 KiB', 'rounded to whole buckets');
  });

  it('follows the calibration: each size bucket takes its measured point, small ones go to TCP', function () {
    const pt = (ratio: number): CalibPoint => ({ tcpBps: 1e9, redirectBps: ratio * 1e9 });
    // same CPU: redirect wins from 16 KiB; two CPUs: redirect loses at 64 KiB and 256 KiB only.
    const same = [0.5, 0.9, 1.5, 1.6, 1.7, 1.8].map(pt);
    const two = [0.5, 0.9, 1.2, 0.8, 0.9, 1.5].map(pt);
    assert.strictEqual(CALIB_SIZES.length, same.length);
    const m = masksFromCalibration([same, two]);
    assert.strictEqual(maskText(m.tcpSameCpuMask), '< 8 KiB');
    assert.strictEqual(maskText(m.tcpOtherCpuMask), '< 8 KiB, 32 KiB to < 512 KiB');
    assert.strictEqual(calibIndexOf(0), 0);
    assert.strictEqual(calibIndexOf(16), 3);
    assert.strictEqual(calibIndexOf(19), 5);
    assert.strictEqual(calibIndexOf(31), 5);
    // One CPU measured: the busy-reader mask is the idle one.
    const one = masksFromCalibration([same]);
    assert.strictEqual(one.tcpOtherCpuMask, one.tcpSameCpuMask);
    // Below 16 KiB the layouts cannot be told apart at run time: one verdict, the lesser loss.
    const split = (r4kSame: number, r4kTwo: number): string => {
      const m2 = masksFromCalibration([[0.5, r4kSame, 1.5, 1.5, 1.5, 1.5].map(pt), [0.5, r4kTwo, 1.5, 1.5, 1.5, 1.5].map(pt)]);
      assert.strictEqual(m2.tcpSameCpuMask, m2.tcpOtherCpuMask);
      return maskText(m2.tcpSameCpuMask);
    };
    assert.strictEqual(split(0.7, 1.2), '< 8 KiB');
    assert.strictEqual(split(0.9, 1.3), '< 8 KiB');
    assert.strictEqual(split(1.1, 1.1), '< 8 KiB', 'a small write needs a clear win to stay redirected');
    assert.strictEqual(split(1.3, 1.4), '< 2 KiB');
    // From 16 KiB redirection keeps a size only when it won by the margin: a near tie goes to TCP.
    assert.strictEqual(REDIRECT_MARGIN, 1.05);
    assert.strictEqual(redirectCutOf(65536), REDIRECT_MARGIN);
    assert.strictEqual(redirectCutOf(4096), 1.25);
    assert.ok(tcpBetter(pt(1.03), 65536) && !tcpBetter(pt(1.06), 65536) && tcpBetter(pt(1.2), 4096));
    const tie = masksFromCalibration([[0.5, 0.5, 1.5, 1.03, 1.06, 1.5].map(pt)]);
    assert.strictEqual(maskText(tie.tcpSameCpuMask), '< 8 KiB, 32 KiB to < 128 KiB');
    // Redirect losing at 1 MiB covers every larger size too.
    assert.strictEqual(maskText(masksFromCalibration([[0.5, 1.3, 1.3, 1.2, 1.2, 0.9].map(pt)]).tcpSameCpuMask), '< 2 KiB, >= 512 KiB');
  });
});
