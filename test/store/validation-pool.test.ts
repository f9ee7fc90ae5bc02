import * as assert from 'node:assert/strict';
import { compareDiagnostics } from '../../src/policy/diagnostics';
import { loadText } from '../../src/policy/loader';
import { PolicyStore } from '../../src/store/policy-store';
import { ValidationPool } from '../../src/store/validation-pool';

/** Objects validated in worker threads: the same diagnostics as in-process, and a failing worker never takes the last good state away. */

let address = 0;
const workload = (name: string, extra = ''): string =>
  `apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata:\n  name: ${name}\n  labels: {app: ${name}${extra}}\nspec:\n  addresses: [10.0.${address >> 8}.${address++ & 255}]\n  proxy: {nodeId: ${name}}\n`;

const policy = (path: string): string =>
  `apiVersion: meshaccel.io/v1alpha1\nkind: L7Policy\nmetadata:\n  name: p\nspec:\n  endpointSelector: {matchLabels: {app: api}}\n  ingress:\n    - fromEndpoints: [{matchLabels: {app: web}}]\n` +
  `    - fromEndpoints: [{matchLabels: {app: web}}]\n      toPorts:\n        - ports: [{port: 80, protocol: TCP}]\n          rules:\n            http:\n              - path: "${path}"\n`;

const batch = (objects: { id: string; text: string }[]) => [{ type: 'replace-all' as const, source: 'file', objects }];

describe('validation in worker threads', function () {
  this.timeout(120000);

  it('reports exactly the diagnostics of in-process validation, and compiled rules point at the lines they were written on', async () => {
    const bad = `${policy('(?=x)')}---\napiVersion: meshaccel.io/v1alpha1\nkind: L7Policy\nmetadata:\n  name: q\nspec:\n  endpointSelector: {matchLabels: {app: 7}}\n  bogus: 1\n`;
    const r = await new PolicyStore().apply(batch([{ id: 'bad.yaml', text: bad }]));
    assert.equal(r.applied, false);
    assert.ok(r.diagnostics.length >= 3, JSON.stringify(r.diagnostics));
    assert.deepEqual(r.diagnostics, loadText('bad.yaml', bad).diagnostics.sort(compareDiagnostics));

    const store = new PolicyStore();
    const ok = await store.apply(
      batch([
        { id: 'w.yaml', text: `${workload('api')}---\n${workload('web')}` },
        { id: 'p.yaml', text: policy('/v1/.*') },
      ]),
    );
    assert.equal(ok.applied, true, JSON.stringify(ok.diagnostics));
    const rule = store.policyForNode('api')?.ingress.find((p) => p.port === 80)?.rules[0];
    assert.deepEqual([rule?.origin.file, rule?.origin.line, rule?.origin.rule], ['p.yaml', 9, { section: 'ingress', index: 1 }]);
  });

  it('a worker that runs out of memory is replaced: the batch is refused naming the file, the last good state keeps serving', async () => {
    const pool = new ValidationPool({ heapMb: 24, threads: 1 });
    const store = new PolicyStore({ validation: pool });
    try {
      const api = workload('api');
      assert.equal((await store.apply(batch([{ id: 'w.yaml', text: api }]))).applied, true);
      const good = store.current();
      // About 3.6 MB of YAML: within the file cap, far more than a 24 MiB heap can parse.
      const huge = Array.from({ length: 1000 }, (_, i) => workload(`w${i}`, `, pad: "${'x'.repeat(3500)}"`)).join('---\n');
      const r = await store.apply(
        batch([
          { id: 'w.yaml', text: api },
          { id: 'huge.yaml', text: huge },
        ]),
      );
      assert.equal(r.applied, false);
      assert.deepEqual(
        r.diagnostics.map((d) => [d.file, d.line, d.path]),
        [['huge.yaml', 1, '']],
      );
      assert.match(
        r.diagnostics[0].message,
        /^not validated: the validator ran out of memory \(its heap is limited to 24 MiB\); the last good configuration keeps serving$/,
      );
      assert.equal(store.current(), good);
      assert.ok(store.policyForNode('api'));

      const next = await store.apply(batch([{ id: 'w.yaml', text: `${api}---\n${workload('web')}` }]));
      assert.equal(next.applied, true, `the next batch validates in a fresh worker: ${JSON.stringify(next.diagnostics)}`);
      assert.equal(pool.workersStarted, 2);
    } finally {
      pool.close();
    }
  });

  it('a worker that does not finish in time is ended and the batch refused; nothing half-validated is served', async () => {
    // No worker even starts within 1 ms: every object times out.
    const pool = new ValidationPool({ timeoutMs: 1, threads: 1 });
    const store = new PolicyStore({ validation: pool });
    try {
      const r = await store.apply(
        batch([
          { id: 'a.yaml', text: workload('a') },
          { id: 'b.yaml', text: workload('b') },
        ]),
      );
      assert.equal(r.applied, false);
      assert.deepEqual(
        r.diagnostics.map((d) => [d.file, d.message]),
        ['a.yaml', 'b.yaml'].map((f) => [f, 'not validated: validation did not finish within 1 ms; the last good configuration keeps serving']),
      );
      assert.equal(store.hasCommitted(), false);
      assert.equal(pool.workersStarted, 2, 'each stuck worker was replaced');
    } finally {
      pool.close();
    }
  });
});
