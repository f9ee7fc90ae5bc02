import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { formatDiagnostic } from '../../src/policy/diagnostics';
import { loadFiles, loadText } from '../../src/policy/loader';
import { MAX_REGEX_LENGTH, re2WorkersStarted } from '../../src/policy/re2';
import { policyDoc, tmpDir } from '../policy/helpers';

/**
 * Issue #12 item 8: re2-wasm's 16 MB heap, once exhausted, aborted every later compile, so one
 * hostile file made every later valid edit (and unchanged files) "invalid RE2" until restart, and
 * a huge regex printed re2-wasm's out-of-memory abort to stderr.
 */

function httpPolicy(paths: readonly string[], name = 'api'): string {
  const rules = paths.map((p) => `              - path: ${JSON.stringify(p)}\n`).join('');
  return policyDoc(
    `  endpointSelector:\n    matchLabels:\n      app: ${name}\n  ingress:\n    - toPorts:\n        - ports:\n            - port: 80\n              protocol: TCP\n          rules:\n            http:\n${rules}`,
    name,
  );
}

/** Runs `fn` with everything written to this process's stderr captured (and still returned). */
function capturingStderr<T>(fn: () => T): { value: T; stderr: string } {
  const original = process.stderr.write.bind(process.stderr);
  let stderr = '';
  process.stderr.write = ((chunk: string | Uint8Array): boolean => {
    stderr += typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString();
    return true;
  }) as typeof process.stderr.write;
  try {
    return { value: fn(), stderr };
  } finally {
    process.stderr.write = original;
  }
}

const ABORT_TEXT = /abort\(|Cannot enlarge memory|OOM/;

describe('robust: RE2 validation survives heap exhaustion (#12 item 8)', function () {
  this.timeout(120000);
  let dir: string;
  let unchanged: string;

  beforeEach(() => {
    dir = tmpDir('robust-re2');
    unchanged = path.join(dir, 'unchanged.yaml');
    fs.writeFileSync(unchanged, httpPolicy(['/healthz', '/api/v[0-9]+/items/[a-z0-9-]+'], 'web'));
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('rejects a file of 50,000 distinct invalid regexes on their own merits, then validates a valid edit and the unchanged file', () => {
    const hostile = path.join(dir, 'hostile.yaml');
    fs.writeFileSync(hostile, httpPolicy(Array.from({ length: 50000 }, (_, i) => `/api/v1/users/${i}/orders/[0-9]+/(`)));
    const workersBefore = re2WorkersStarted();
    const { value: rejected, stderr } = capturingStderr(() => loadFiles([hostile, unchanged]));
    assert.equal(rejected.diagnostics.length, 50000);
    const notRe2Verdicts = rejected.diagnostics.filter((d) => d.file !== hostile || !/invalid RE2 regular expression: missing \): /.test(d.message));
    assert.deepEqual(notRe2Verdicts.map(formatDiagnostic), [], "every error is RE2's verdict on a hostile pattern");
    assert.doesNotMatch(stderr, ABORT_TEXT);
    assert.ok(re2WorkersStarted() - workersBefore >= 2, 'the validator was recycled along the way');

    // The valid edit: the same file, now with patterns never seen before.
    fs.writeFileSync(hostile, httpPolicy(Array.from({ length: 50 }, (_, i) => `/api/v2/fresh-${i}/[a-z]+`)));
    const after = capturingStderr(() => loadFiles([hostile, unchanged]));
    assert.deepEqual(after.value.diagnostics.map(formatDiagnostic), []);
    assert.equal(after.value.resources.length, 2);
    assert.doesNotMatch(after.stderr, ABORT_TEXT);
  });

  it('reports a pattern that exhausts an empty RE2 heap by itself at its field, and nothing else', () => {
    const file = path.join(dir, 'policy.yaml');
    // Nine characters that need more than re2-wasm's whole 16 MB.
    fs.writeFileSync(file, httpPolicy(['/ok/.*', '\\pL{1000}', '/also-ok/[0-9]+']));
    const { value, stderr } = capturingStderr(() => loadFiles([file, unchanged]));
    assert.deepEqual(
      value.diagnostics.map((d) => formatDiagnostic(d).replace(file, 'policy.yaml')),
      [
        'policy.yaml:18:23: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].rules.http[1].path: invalid RE2 regular expression: too large to compile (RE2 ran out of memory on this pattern alone); use fewer or smaller repetitions, especially of Unicode classes',
      ],
    );
    assert.doesNotMatch(stderr, ABORT_TEXT);
    fs.writeFileSync(file, httpPolicy(['/ok/.*', '/next/[a-z]{2,8}']));
    assert.deepEqual(loadFiles([file, unchanged]).diagnostics.map(formatDiagnostic), []);
  });

  it("refuses a 1 MB regex by the schema's length cap, with no re2-wasm abort, and validates the next file", () => {
    const file = path.join(dir, 'policy.yaml');
    fs.writeFileSync(file, httpPolicy(['a'.repeat(1 << 20)]));
    const { value, stderr } = capturingStderr(() => loadFiles([file]));
    assert.deepEqual(
      value.diagnostics.map((d) => formatDiagnostic(d).replace(file, 'policy.yaml')),
      [
        `policy.yaml:17:23: document 1 (L7Policy default/api): spec.ingress[0].toPorts[0].rules.http[0].path: must NOT have more than ${MAX_REGEX_LENGTH} characters`,
      ],
    );
    assert.doesNotMatch(stderr, ABORT_TEXT);
    fs.writeFileSync(file, httpPolicy(['/after/[0-9]+']));
    assert.deepEqual(loadFiles([file, unchanged]).diagnostics.map(formatDiagnostic), []);
  });

  it('counts the cap in characters as the schema does: a 1024-character pattern is still checked by RE2', () => {
    const file = path.join(dir, 'policy.yaml');
    const valid = '/' + 'a'.repeat(MAX_REGEX_LENGTH - 1);
    // 1023 astral characters and "(": 2047 UTF-16 units, 1024 characters, so within the cap.
    const astralInvalid = '\u{1F600}'.repeat(MAX_REGEX_LENGTH - 1) + '(';
    fs.writeFileSync(file, httpPolicy([valid, astralInvalid]));
    const messages = loadFiles([file]).diagnostics.map(
      (d) => `${d.path}: ${d.message.startsWith('invalid RE2 regular expression: missing ): ') ? 'RE2 verdict' : d.message}`,
    );
    assert.deepEqual(messages, ['spec.ingress[0].toPorts[0].rules.http[1].path: RE2 verdict']);
  });

  it("checks a document's patterns in one batch yet reports each at its own field, in document order", () => {
    const text = policyDoc(
      `  endpointSelector: {}\n  ingress:\n    - toPorts:\n        - ports: [{port: 80}]\n          rules:\n            http:\n              - {method: "GET(", path: "/ok"}\n              - {path: "/(?=x)"}\n              - {path: "/ok", host: "GET("}\n        - ports: [{port: 0}]\n`,
    );
    assert.deepEqual(
      loadText('p.yaml', text).diagnostics.map((d) => `${d.path}: ${d.message}`),
      [
        'spec.ingress[0].toPorts[0].rules.http[0].method: invalid RE2 regular expression: missing ): GET(',
        'spec.ingress[0].toPorts[0].rules.http[1].path: invalid RE2 regular expression: invalid perl operator: (?=',
        'spec.ingress[0].toPorts[0].rules.http[2].host: invalid RE2 regular expression: missing ): GET(',
        'spec.ingress[0].toPorts[1].ports[0].port: 0 is not a port number (1-65535)',
      ],
    );
  });
});
