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
  it('turns the old default thresholds into < 16 KiB, plus >= 256 KiB with the reader on another CPU', function () {
    const m = masksFromThresholds(16384, 262144);
    assert.strictEqual(m.tcpSameCpuMask, 0x3fff);
    assert.strictEqual(m.tcpOtherCpuMask, (0x3fff | 0xfffc0000) >>> 0);
    assert.strictEqual(maskText(m.tcpSameCpuMask), '< 16 KiB');
    assert.strictEqual(maskText(m.tcpOtherCpuMask), '< 16 KiB, >= 256 KiB');
    assert.strictEqual(maskText(masksFromThresholds(0, 0).tcpOtherCpuMask), 'none');
    assert.strictEqual(maskText(masksFromThresholds(20000, 100000).tcpOtherCpuMask), '< 16 KiB, >= 128 KiB', 'rounded to whole buckets');
  });

  it('follows the calibration: each size bucket takes its measured point on each layout', function () {
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
    // One CPU measured: the other-CPU mask is the same-CPU one.
    const one = masksFromCalibration([same]);
    assert.strictEqual(one.tcpOtherCpuMask, one.tcpSameCpuMask);
    // Each layout takes its own verdict, small sizes too (the programs read the layout per flow):
    // this machine's calibration, where 4 KiB lost on one CPU (0.69x) and won on two (1.28x).
    const here = masksFromCalibration([[0.66, 0.69, 1.4, 1.11, 1.03, 1.06].map(pt), [1.39, 1.28, 1.21, 1.37, 1.62, 1.41].map(pt)]);
    assert.strictEqual(maskText(here.tcpSameCpuMask), '< 8 KiB, 128 KiB to < 512 KiB');
    assert.strictEqual(maskText(here.tcpOtherCpuMask), 'none');
    // Below 16 KiB a small write needs a clear win to stay redirected.
    const small = (r4k: number): string => maskText(masksFromCalibration([[1.5, r4k, 1.5, 1.5, 1.5, 1.5].map(pt)]).tcpSameCpuMask);
    assert.strictEqual(small(1.08), '2 KiB to < 8 KiB');
    assert.strictEqual(small(1.12), 'none');
    // From 16 KiB redirection keeps a size only when it won by the margin: a near tie goes to TCP.
    assert.strictEqual(REDIRECT_MARGIN, 1.05);
    assert.strictEqual(redirectCutOf(65536), REDIRECT_MARGIN);
    assert.strictEqual(redirectCutOf(4096), 1.1);
    assert.ok(tcpBetter(pt(1.03), 65536) && !tcpBetter(pt(1.06), 65536) && tcpBetter(pt(1.08), 4096) && !tcpBetter(pt(1.12), 4096));
    const tie = masksFromCalibration([[0.5, 0.5, 1.5, 1.03, 1.06, 1.5].map(pt)]);
    assert.strictEqual(maskText(tie.tcpSameCpuMask), '< 8 KiB, 32 KiB to < 128 KiB');
    // Redirect losing at 1 MiB covers every larger size too.
    assert.strictEqual(maskText(masksFromCalibration([[0.5, 1.3, 1.3, 1.2, 1.2, 0.9].map(pt)]).tcpSameCpuMask), '< 2 KiB, >= 512 KiB');
  });
});
