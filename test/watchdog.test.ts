import * as assert from 'assert';
import { spawn } from 'child_process';
import * as path from 'path';

const MOCHA = path.join(__dirname, '../../node_modules/mocha/bin/mocha.js');
const FIXTURE = path.join(__dirname, 'fixtures/hangs.fixture.js');

function runHangingSuite(env: Record<string, string>): Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string; ms: number }> {
  const started = Date.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [MOCHA, '--no-config', '--reporter', path.join(__dirname, 'summary-reporter.js'), '--timeout', '60000', FIXTURE], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    // The bound on this test itself, should the watchdog not work.
    const guard = setTimeout(() => child.kill('SIGKILL'), 40_000);
    child.on('exit', (code, signal) => {
      clearTimeout(guard);
      resolve({ code, signal, stderr, ms: Date.now() - started });
    });
  });
}

describe('test watchdog: a hang fails the run and names where it hung', function () {
  this.timeout(50_000);

  it('a blocked event loop (where mocha timeouts never fire) is reported with the test title', async () => {
    const r = await runHangingSuite({ HANG: 'loop', MESHACCEL_TEST_STALL_S: '3' });
    assert.ok(r.code !== 0, 'the run must fail');
    assert.match(r.stderr, /watchdog: the test process's event loop has been blocked for 3 s/);
    assert.match(r.stderr, /in: .*hangs\.fixture\.js: a suite that hangs blocks the event loop/);
    assert.ok(r.ms < 30_000, `the watchdog took ${r.ms} ms`);
  });

  it('a test file over its time limit is reported with the child processes still running, which are killed', async () => {
    const r = await runHangingSuite({ HANG: 'child', MESHACCEL_TEST_FILE_S: '3' });
    assert.ok(r.code !== 0, 'the run must fail');
    assert.match(r.stderr, /watchdog: one test file has run for more than 3 s/);
    assert.match(r.stderr, /in: .*a suite that hangs waits on a child process with no timeout/);
    assert.match(r.stderr, /\d+ \(running [\d:]+\) sleep 37/);
    assert.ok(r.ms < 30_000, `the watchdog took ${r.ms} ms`);
  });
});
