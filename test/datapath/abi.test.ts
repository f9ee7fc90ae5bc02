import * as assert from 'assert';
import { execFileSync } from 'child_process';
import * as fs from 'fs';
import { makePinDir } from '../../src/datapath/bpf/bpffs';
import { loadNative } from '../../src/datapath/bpf/native';
import { defaultObjectPaths } from '../../src/datapath/bpf/preflight';
import { skipUnlessKernel } from './helpers';

/**
 * Maps pinned by another build (other key or value sizes) are never used for raw I/O: the
 * addon would otherwise read or write past this build's structs.
 */
describe('datapath: pinned maps of another build (real kernel)', function () {
  const pinDir = `/sys/fs/bpf/meshaccel-test-abi-${process.pid}`;

  before(function () {
    skipUnlessKernel(this);
    makePinDir(pinDir);
    const bpftool = (args: string[]): void => void execFileSync('bpftool', args, { stdio: 'pipe' });
    bpftool(['map', 'create', `${pinDir}/ma_ports`, 'type', 'hash', 'key', '2', 'value', '1', 'entries', '16', 'name', 'ma_ports']);
    // A config slot of an older build (three words; this build's is larger).
    bpftool(['map', 'create', `${pinDir}/ma_config`, 'type', 'array', 'key', '4', 'value', '12', 'entries', '1', 'name', 'ma_config']);
  });

  after(() => {
    fs.rmSync(pinDir, { recursive: true, force: true });
  });

  it('configure refuses the map and says what to do; status leaves it out', () => {
    const native = loadNative();
    assert.throws(
      () =>
        native.configure(
          pinDir,
          {
            mode: 1,
            bulkStreak: 16,
            bulkSmallMax: 16384,
            bulkLargeMin: 262144,
            leaveDelayMs: 0,
            tcpSameCpuMask: 0x3fff,
            tcpOtherCpuMask: 0xfffc3fff,
            thresholdSource: 0,
            layoutHoldMs: 50,
            calibratedAt: 0,
            calib: [],
          },
          [],
        ),
      /ma_config has another build's layout .*datapath detach/,
    );
    assert.strictEqual(native.status(pinDir, 16).config, null);
  });

  it('load refuses to reuse it, naming the map and what to do', () => {
    const objects = defaultObjectPaths();
    assert.throws(
      () => loadNative().load({ pinDir, sockopsObject: objects.sockops, skMsgObject: objects.skMsg }),
      /pinned map ma_config has another build's layout .*datapath detach/,
    );
  });
});
