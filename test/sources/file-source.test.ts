import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { FilePolicySource, nodeAffected, type PolicyUpdate } from '../../src/sources/file-source';
import type { Diagnostic } from '../../src/policy/diagnostics';
import { l7RulesOf, type CompiledRule } from '../../src/policy/compiled';

const httpPathOf = (rule: CompiledRule | undefined): string | undefined => (rule ? l7RulesOf(rule, 'http')?.[0].path : undefined);

/** Real files in a tmp dir and a real fs.watch: the source as `meshaccel serve` will run it. */

const workload = (name: string, app: string, address: string, nodeId = name): string =>
  `apiVersion: meshaccel.io/v1alpha1\nkind: Workload\nmetadata:\n  name: ${name}\n  labels: {app: ${app}}\nspec:\n  addresses: [${address}]\n  proxy: {nodeId: ${nodeId}}\n`;

const allowHttp = (from: string, to: string, pathRe = '/.*'): string =>
  `apiVersion: meshaccel.io/v1alpha1\nkind: L7Policy\nmetadata:\n  name: ${to}\nspec:\n  endpointSelector: {matchLabels: {app: ${to}}}\n  ingress:\n    - fromEndpoints: [{matchLabels: {app: ${from}}}]\n      toPorts:\n        - ports: [{port: 80, protocol: TCP}]\n          rules:\n            http:\n              - path: "${pathRe}"\n`;

/** Resolves with the next event of either kind, or rejects after `ms`. */
function nextEvent(source: FilePolicySource, ms = 5000): Promise<{ update?: PolicyUpdate; errors?: Diagnostic[] }> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no event within ${ms} ms`));
    }, ms);
    const onUpdate = (update: PolicyUpdate): void => {
      cleanup();
      resolve({ update });
    };
    const onError = (errors: Diagnostic[]): void => {
      cleanup();
      resolve({ errors });
    };
    const cleanup = (): void => {
      clearTimeout(timer);
      source.off('update', onUpdate);
      source.off('error', onError);
    };
    source.on('update', onUpdate);
    source.on('error', onError);
  });
}

describe('FilePolicySource', function () {
  this.timeout(20000);
  let dir: string;
  let source: FilePolicySource | undefined;

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshaccel-source-'));
    fs.mkdirSync(path.join(dir, 'workloads'));
    fs.writeFileSync(path.join(dir, 'workloads', 'all.yaml'), [workload('api', 'api', '10.0.0.1'), workload('web', 'web', '10.0.0.2'), workload('db', 'db', '10.0.0.3')].join('---\n'));
    fs.writeFileSync(path.join(dir, 'api.yaml'), allowHttp('web', 'api'));
  });

  afterEach(() => {
    source?.stop();
    source = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads the directory recursively and serves every proxy', () => {
    source = new FilePolicySource({ directories: [dir], watch: false });
    const r = source.start();
    assert.equal(r.applied, true);
    assert.deepEqual(r.update?.changed, ['api', 'db', 'web']);
    const state = source.current();
    assert.equal(state.version, 1);
    assert.equal(httpPathOf(state.proxies.get('api')?.ingress[0].rules[0]), '/.*');
    assert.deepEqual(state.proxies.get('api')?.ingress[0].rules[0].peers.cidrs, ['10.0.0.2/32']);
    assert.equal(source.policyForNode('api')?.nodeId, 'api');
  });

  it('a watched edit pushes only the proxies whose policy changed', async () => {
    source = new FilePolicySource({ directories: [dir], debounceMs: 50 });
    source.start();
    const event = nextEvent(source);
    fs.writeFileSync(path.join(dir, 'api.yaml'), allowHttp('web', 'api', '/v2/.*'));
    const { update, errors } = await event;
    assert.equal(errors, undefined);
    assert.ok(update);
    assert.deepEqual(update.changed, ['api']);
    assert.equal(update.state.version, 2);
    assert.equal(httpPathOf(source.current().proxies.get('api')?.ingress[0].rules[0]), '/v2/.*');
    assert.ok(nodeAffected(update.changed, 'api'));
    assert.ok(!nodeAffected(update.changed, 'web'));
  });

  it('a new workload file updates the peers of the proxies that select it, and the new proxy', async () => {
    source = new FilePolicySource({ directories: [dir], debounceMs: 50 });
    source.start();
    const event = nextEvent(source);
    fs.writeFileSync(path.join(dir, 'workloads', 'web2.yaml'), workload('web-2', 'web', '10.0.0.4'));
    const { update } = await event;
    assert.ok(update);
    assert.deepEqual(update.changed, ['api', 'web-2']);
    assert.deepEqual(source.current().proxies.get('api')?.ingress[0].rules[0].peers.cidrs, ['10.0.0.2/32', '10.0.0.4/32']);
    const removal = nextEvent(source);
    fs.unlinkSync(path.join(dir, 'workloads', 'web2.yaml'));
    const gone = (await removal).update;
    assert.ok(gone);
    assert.deepEqual(gone.changed, ['api']);
    assert.deepEqual(gone.removed, ['web-2']);
  });

  it('a bad file is reported with file:line and the last good state keeps serving', async () => {
    source = new FilePolicySource({ directories: [dir], debounceMs: 50 });
    source.start();
    const good = source.current();
    const event = nextEvent(source);
    // Valid YAML, valid schema, invalid RE2 — plus a good change in another file that must not half-apply.
    fs.writeFileSync(path.join(dir, 'web.yaml'), allowHttp('api', 'web') + '---\n' + allowHttp('db', 'db', '(?<!x)y').replace('name: db', 'name: db-policy'));
    const { update, errors } = await event;
    assert.equal(update, undefined);
    assert.ok(errors);
    assert.equal(errors.length, 1);
    assert.equal(errors[0].file, path.join(dir, 'web.yaml'));
    assert.equal(errors[0].line, 27);
    assert.equal(errors[0].document, 2);
    assert.equal(errors[0].path, 'spec.ingress[0].toPorts[0].rules.http[0].path');
    assert.match(errors[0].message, /invalid RE2/);
    assert.equal(source.current(), good, 'state object unchanged');
    assert.equal(source.current().proxies.get('web')?.ingress[0].rules[0].peers.any, true, 'web policy not half-applied');
    // What nodes connecting now are served comes from the engine, not the state object above.
    assert.equal(source.policyForNode('web')?.ingress[0].rules[0].peers.any, true, 'the engine serves the last good web policy');
    assert.deepEqual(source.errors(), errors);

    const fixed = nextEvent(source);
    fs.writeFileSync(path.join(dir, 'web.yaml'), allowHttp('api', 'web'));
    const after = await fixed;
    assert.ok(after.update);
    assert.deepEqual(after.update.changed, ['web']);
    assert.deepEqual(source.errors(), []);
  });

  it('an L7 conflict across files is rejected and rolled back', async () => {
    source = new FilePolicySource({ directories: [dir], debounceMs: 50 });
    source.start();
    const before = JSON.stringify([...source.current().proxies]);
    const servedBefore = JSON.stringify(['api', 'db', 'web'].map((n) => source!.policyForNode(n) ?? null));
    const event = nextEvent(source);
    const kafka = allowHttp('web', 'api').replace('name: api', 'name: api-kafka').replace(/http:\n\s+- path: "\/\.\*"/, 'kafka:\n              - role: produce');
    // A second, independent change in the same reload must not be applied either.
    fs.writeFileSync(path.join(dir, 'more.yaml'), `${kafka}---\n${allowHttp('api', 'db')}`);
    const { errors } = await event;
    assert.ok(errors);
    assert.equal(errors.length, 1);
    // Kafka rules are refused (not enforced yet) before they could clash with the HTTP ones.
    assert.match(`${errors[0].path}: ${errors[0].message}`, /rules\.kafka: Kafka rules are validated but not enforced yet/);
    assert.equal(JSON.stringify([...source.current().proxies]), before);
    assert.equal(JSON.stringify(['api', 'db', 'web'].map((n) => source!.policyForNode(n) ?? null)), servedBefore, 'the engine serves what it served before');
    // After rollback the engine is consistent: removing the conflict applies only the db change.
    const fixed = nextEvent(source);
    fs.writeFileSync(path.join(dir, 'more.yaml'), allowHttp('api', 'db'));
    const after = await fixed;
    assert.ok(after.update);
    assert.deepEqual(after.update.changed, ['db']);
  });

  it('a burst of writes is debounced into one reload', async () => {
    source = new FilePolicySource({ directories: [dir], debounceMs: 200 });
    source.start();
    let updates = 0;
    source.on('update', () => updates++);
    // Counted at the reload itself: extra reloads of the same final content emit no update, so
    // counting updates alone would pass without any debounce.
    let reloads = 0;
    const reload = source.reload.bind(source);
    source.reload = () => (reloads++, reload());
    for (let i = 0; i < 5; i++) fs.writeFileSync(path.join(dir, 'api.yaml'), allowHttp('web', 'api', `/v${i}/.*`));
    await new Promise((r) => setTimeout(r, 800));
    assert.equal(reloads, 1, 'one reload for the burst');
    assert.equal(updates, 1);
    assert.equal(httpPathOf(source.current().proxies.get('api')?.ingress[0].rules[0]), '/v4/.*');
  });

  it('an initial load that fails serves nothing and reports; stop() ends watching', async () => {
    fs.writeFileSync(path.join(dir, 'broken.yaml'), 'kind: [\n');
    source = new FilePolicySource({ directories: [dir], debounceMs: 50 });
    const r = source.start();
    assert.equal(r.applied, false);
    assert.equal(r.diagnostics[0].file, path.join(dir, 'broken.yaml'));
    assert.equal(source.current().version, 0);
    assert.equal(source.current().proxies.size, 0);
    source.stop();
    let events = 0;
    source.on('update', () => events++);
    fs.unlinkSync(path.join(dir, 'broken.yaml'));
    await new Promise((r2) => setTimeout(r2, 300));
    assert.equal(events, 0);
  });
});
