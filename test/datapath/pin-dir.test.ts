import * as assert from 'assert';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';

const BPFFS_MODULE = path.join(__dirname, '../../src/datapath/bpf/bpffs.js');

/**
 * Runs makePinDir in a child process, so a regression to a spinning mkdir fails this test by
 * its deadline instead of blocking mocha's event loop (and with it every timeout) for good.
 */
function makePinDirInChild(dir: string, wrap: string[] = []): { status: number | null; timedOut: boolean; stderr: string; ms: number } {
  const script = `try { require(${JSON.stringify(BPFFS_MODULE)}).makePinDir(${JSON.stringify(dir)}); process.exit(0); } catch (e) { console.error(e.message); process.exit(3); }`;
  const argv = [...wrap, process.execPath, '-e', script];
  const started = Date.now();
  const r = spawnSync(argv[0], argv.slice(1), { timeout: 10_000, encoding: 'utf8' });
  return {
    status: r.status,
    timedOut: r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ETIMEDOUT',
    stderr: r.stderr ?? '',
    ms: Date.now() - started,
  };
}

describe('datapath: pin directories only on bpffs', function () {
  it('refuses a directory that is not on bpffs, naming it and its filesystem', () => {
    const dir = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'meshaccel-pins-')), 'a', 'b');
    const r = makePinDirInChild(dir);
    assert.strictEqual(r.timedOut, false, 'makePinDir did not return within 10 s');
    assert.strictEqual(r.status, 3, `makePinDir should refuse; stderr: ${r.stderr}`);
    assert.match(r.stderr, new RegExp(`${dir.replace(/[/.]/g, '\\$&')} cannot hold BPF pins: .* is on tmpfs|ext4|overlayfs|filesystem 0x`));
    assert.ok(!fs.existsSync(dir), 'nothing was created');
  });

  it('refuses /sys/fs/bpf with no bpffs mounted, quickly, and says how to mount it', function () {
    // A private mount namespace lets the test see /sys/fs/bpf as a fresh machine has it,
    // whatever the other suites mounted there.
    if (process.getuid?.() !== 0) {
      console.log('    skipping: needs root for a private mount namespace (unshare -m)');
      this.skip();
    }
    const wrap = [
      'unshare',
      '--mount',
      '--propagation',
      'private',
      'sh',
      '-c',
      'while mountpoint -q /sys/fs/bpf; do umount /sys/fs/bpf || exit 9; done; exec "$0" "$@"',
    ];
    const r = makePinDirInChild('/sys/fs/bpf/meshaccel-test-nobpffs/pins', wrap);
    assert.strictEqual(r.timedOut, false, 'makePinDir spun for 10 s on a /sys/fs/bpf without bpffs');
    assert.strictEqual(r.status, 3, `makePinDir should refuse; stderr: ${r.stderr}`);
    assert.match(r.stderr, /\/sys\/fs\/bpf is on sysfs, not bpffs \(mount it with `mount -t bpf bpf \/sys\/fs\/bpf`\)/);
    assert.ok(r.ms < 5000, `took ${r.ms} ms`);
  });
});
