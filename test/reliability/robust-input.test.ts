import * as assert from 'node:assert/strict';
import { spawnSync } from 'child_process';
import * as fs from 'fs';
import * as net from 'net';
import * as path from 'path';
import { MAX_INPUT_BYTES } from '../../src/input-file';
import { formatDiagnostic } from '../../src/policy/diagnostics';
import { loadFiles, loadText, MAX_DOCUMENTS_PER_FILE } from '../../src/policy/loader';
import { policyDoc, ROOT, tmpDir } from '../policy/helpers';

/**
 * Issue #12 item 11 (the CLIs on special files) and the file caps of item 9: `policy check
 * /dev/zero` read until memory ran out, a FIFO hung, a directory without YAML said "ok (0
 * files)", and a 10,000-document file held the event loop for seconds.
 */

/** The real binary; killed after `timeoutMs` so a hang fails the test instead of stalling it. */
function meshaccel(args: string[], timeoutMs = 15000): { status: number | null; stdout: string; stderr: string; signal: NodeJS.Signals | null } {
  const r = spawnSync(process.execPath, [path.join(ROOT, 'bin', 'meshaccel'), ...args], {
    encoding: 'utf8',
    cwd: ROOT,
    timeout: timeoutMs,
    killSignal: 'SIGKILL',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, signal: r.signal };
}

function workloadDoc(i: number): string {
  return `apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata:\n  name: w-${i}\n  namespace: default\n  labels:\n    app: w${i}\nspec:\n  addresses: ["10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}"]\n  proxy:\n    nodeId: node-${i}\n`;
}

describe('robust: the CLIs and the loader read only bounded regular files (#12 items 9, 11)', function () {
  this.timeout(120000);
  let dir: string;
  let server: net.Server | undefined;

  beforeEach(() => (dir = tmpDir('robust-input')));
  afterEach(async () => {
    if (server) await new Promise<void>((resolve) => server?.close(() => resolve()));
    server = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('policy check and envoy check refuse a FIFO promptly, naming it, with status 1', () => {
    const fifo = path.join(dir, 'policy.yaml');
    assert.equal(spawnSync('mkfifo', [fifo]).status, 0);
    const policy = meshaccel(['policy', 'check', fifo]);
    assert.equal(policy.signal, null, 'policy check hung on the FIFO');
    assert.equal(policy.status, 1);
    assert.equal(policy.stderr.split('\n')[0], `${fifo}:1:1: cannot read: not a regular file (a FIFO); only regular files are read`);
    const envoy = meshaccel(['envoy', 'check', fifo]);
    assert.equal(envoy.signal, null, 'envoy check hung on the FIFO');
    assert.equal(envoy.status, 1);
    assert.match(envoy.stderr, new RegExp(`^${fifo}: not a regular file \\(a FIFO\\)`));
  });

  it('policy check and envoy check refuse /dev/zero and a socket instead of reading them', async () => {
    const socket = path.join(dir, 'sock.yaml');
    server = net.createServer();
    await new Promise<void>((resolve) => server?.listen(socket, resolve));
    for (const [file, kind] of [
      ['/dev/zero', 'a character device'],
      [socket, 'a socket'],
    ]) {
      const policy = meshaccel(['policy', 'check', file], 10000);
      assert.equal(policy.signal, null, `policy check ${file} did not finish`);
      assert.equal(policy.status, 1);
      assert.equal(policy.stderr.split('\n')[0], `${file}:1:1: cannot read: not a regular file (${kind}); only regular files are read`);
      const envoy = meshaccel(['envoy', 'check', file], 10000);
      assert.equal(envoy.signal, null, `envoy check ${file} did not finish`);
      assert.equal(envoy.status, 1);
      assert.match(envoy.stderr, /not a regular file/);
    }
  });

  it('policy check and envoy check refuse a file over the size cap', () => {
    const big = path.join(dir, 'big.yaml');
    // A comment, so that without a cap the file is read, parsed and passes as zero resources.
    fs.writeFileSync(big, `# ${'x'.repeat(MAX_INPUT_BYTES)}\n`);
    const policy = meshaccel(['policy', 'check', big]);
    assert.equal(policy.status, 1);
    assert.equal(policy.stderr.split('\n')[0], `${big}:1:1: cannot read: ${MAX_INPUT_BYTES + 3} bytes, over the ${MAX_INPUT_BYTES}-byte limit for one file`);
    const envoy = meshaccel(['envoy', 'check', big]);
    assert.equal(envoy.status, 1);
    assert.match(envoy.stderr, /over the [0-9]+-byte limit for one file/);
  });

  it('a directory without YAML is an error, not "ok (0 files)"', () => {
    const empty = path.join(dir, 'policies');
    fs.mkdirSync(empty);
    fs.writeFileSync(path.join(empty, 'README.txt'), 'not yaml\n');
    const r = meshaccel(['policy', 'check', empty]);
    assert.equal(r.status, 1);
    assert.equal(r.stdout, '');
    assert.equal(r.stderr, `${empty}:1:1: no .yaml or .yml files in this directory\npolicy check: 1 error (0 files, 0 valid resources)\n`);
    const compile = meshaccel(['policy', 'compile', '--policies', empty, '--workloads', path.join(ROOT, 'examples', 'workloads')]);
    assert.equal(compile.status, 1);
    assert.equal(compile.stderr.split('\n')[0], `${empty}:1:1: no .yaml or .yml files in this directory`);
  });

  it('the loader refuses a 10,000-document file with its name and the reason, and keeps nothing of it', () => {
    const many = path.join(dir, 'workloads.yaml');
    fs.writeFileSync(many, Array.from({ length: 10000 }, (_, i) => workloadDoc(i)).join('---\n'));
    const other = path.join(dir, 'policy.yaml');
    fs.writeFileSync(other, policyDoc('  endpointSelector: {}\n'));
    const loaded = loadFiles([many, other]);
    // Eleven lines and a `---` per document: the extra one starts at its marker.
    const firstLineOfExtra = MAX_DOCUMENTS_PER_FILE * 12;
    assert.deepEqual(loaded.diagnostics.map(formatDiagnostic), [
      `${many}:${firstLineOfExtra}:1: more than ${MAX_DOCUMENTS_PER_FILE} YAML documents in one file (this is document ${MAX_DOCUMENTS_PER_FILE + 1}); split it into several files`,
    ]);
    assert.deepEqual(
      loaded.resources.map((r) => r.kind),
      ['L7Policy'],
      'no workload of the refused file is kept',
    );
  });

  it('the loader accepts a file of exactly the document cap', () => {
    const file = path.join(dir, 'workloads.yaml');
    fs.writeFileSync(file, Array.from({ length: MAX_DOCUMENTS_PER_FILE }, (_, i) => workloadDoc(i)).join('---\n'));
    const loaded = loadFiles([file]);
    assert.deepEqual(loaded.diagnostics.map(formatDiagnostic), []);
    assert.equal(loaded.resources.length, MAX_DOCUMENTS_PER_FILE);
  });

  it('the loader refuses text over the size cap however it is given', () => {
    // Counted in bytes: two-byte characters, so the text is under the cap in UTF-16 units.
    const text = `# ${'\u00e9'.repeat(MAX_INPUT_BYTES / 2 + 1)}\n`;
    assert.deepEqual(loadText('big.yaml', text).diagnostics.map(formatDiagnostic), [
      `big.yaml:1:1: ${MAX_INPUT_BYTES + 5} bytes, over the ${MAX_INPUT_BYTES}-byte limit for one file`,
    ]);
  });
});
