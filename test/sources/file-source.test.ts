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
    fs.writeFileSync(
      path.join(dir, 'workloads', 'all.yaml'),
      [workload('api', 'api', '10.0.0.1'), workload('web', 'web', '10.0.0.2'), workload('db', 'db', '10.0.0.3')].join('---\n'),
    );
    fs.writeFileSync(path.join(dir, 'api.yaml'), allowHttp('web', 'api'));
  });

  afterEach(() => {
    source?.stop();
    source = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('loads the directory recursively and serves every proxy', async () => {
    source = new FilePolicySource({ directories: [dir], watch: false });
    const r = await source.start();
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
    await source.start();
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
    await source.start();
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
    await source.start();
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
    await source.start();
    const before = JSON.stringify([...source.current().proxies]);
    const servedBefore = JSON.stringify(['api', 'db', 'web'].map((n) => source!.policyForNode(n) ?? null));
    const event = nextEvent(source);
    const kafka = allowHttp('web', 'api')
      .replace('name: api', 'name: api-kafka')
      .replace(/http:\n\s+- path: "\/\.\*"/, 'kafka:\n              - role: produce');
    // A second, independent change in the same reload must not be applied either.
    fs.writeFileSync(path.join(dir, 'more.yaml'), `${kafka}---\n${allowHttp('api', 'db')}`);
    const { errors } = await event;
    assert.ok(errors);
    assert.equal(errors.length, 1);
    assert.match(errors[0].message, /port 80\/TCP of proxy api gets Kafka rules here but HTTP rules from default\/api/);
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
    await source.start();
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
    const r = await source.start();
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

describe('FilePolicySource under careless writers and moving directories', function () {
  this.timeout(20000);
  let dir: string;
  let source: FilePolicySource | undefined;
  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
  const three = [workload('api', 'api', '10.0.0.1'), workload('web', 'web', '10.0.0.2'), workload('db', 'db', '10.0.0.3')].join('---\n');

  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'meshaccel-source-'));
    fs.mkdirSync(path.join(dir, 'policies'));
    fs.writeFileSync(path.join(dir, 'workloads.yaml'), three);
    fs.writeFileSync(path.join(dir, 'policies', 'api.yaml'), allowHttp('web', 'api'));
  });

  afterEach(() => {
    source?.stop();
    source = undefined;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a file being written slowly is read only once it has stopped changing', async () => {
    source = new FilePolicySource({ directories: [dir], debounceMs: 30, settleMs: 400, rescanMs: 0 });
    await source.start();
    const seen: string[][] = [];
    source.on('update', (u) => seen.push([...u.state.proxies.keys()].sort()));
    // A workloads file rewritten in pieces, as a slow copy or upload does: each piece is valid
    // YAML on its own, so only waiting for the file to settle keeps the halves from being served.
    const file = path.join(dir, 'workloads.yaml');
    const full = `${three}---\n${workload('cache', 'cache', '10.0.0.4')}`;
    const cuts = [0, full.indexOf('---\n', 10), full.lastIndexOf('---\n'), full.length];
    fs.writeFileSync(file, '');
    for (let i = 1; i < cuts.length; i++) {
      fs.appendFileSync(file, full.slice(cuts[i - 1], cuts[i]));
      await sleep(150);
    }
    await sleep(1000);
    assert.deepEqual(seen, [['api', 'cache', 'db', 'web']], 'one update, with the complete file');
  });

  it('a file that shrinks to nothing or loses most of its documents is held as suspect and reported; unchanged, it is accepted later', async () => {
    source = new FilePolicySource({ directories: [dir], debounceMs: 30, settleMs: 0, suspectHoldMs: 1500, rescanMs: 0 });
    await source.start();
    const errors: Diagnostic[][] = [];
    const updates: PolicyUpdate[] = [];
    source.on('error', (e) => errors.push(e));
    source.on('update', (u) => updates.push(u));
    const file = path.join(dir, 'workloads.yaml');
    fs.writeFileSync(file, '');
    await sleep(400);
    assert.equal(updates.length, 0, 'nothing applied');
    assert.deepEqual([...source.current().proxies.keys()].sort(), ['api', 'db', 'web'], 'the last good workloads keep serving');
    assert.equal(errors.length, 1);
    assert.equal(errors[0][0].file, file);
    assert.match(errors[0][0].message, /suspect change held.*shrank to no documents \(it had 3\)/);

    // Most documents lost (1 of 3 left): held too.
    fs.writeFileSync(file, workload('api', 'api', '10.0.0.1'));
    await sleep(400);
    assert.equal(updates.length, 0);
    assert.match(source.errors()[0].message, /lost 2 of its 3 documents/);

    // Left as it is past the hold, it was meant: applied.
    await sleep(1800);
    assert.equal(updates.length, 1);
    assert.deepEqual(updates[0].removed.sort(), ['db', 'web']);
    assert.deepEqual(source.errors(), []);
  });

  it('a watched directory deleted and recreated, or replaced by a rename, is watched again (and the loss is logged)', async () => {
    const warnings: string[] = [];
    const policies = path.join(dir, 'policies');
    // Policies watched on their own directory; the workloads come from another source.
    source = new FilePolicySource({ directories: [policies], debounceMs: 30, settleMs: 0, rescanMs: 200, log: { warn: (m) => warnings.push(m) } });
    const store = source.store;
    await store.apply([{ type: 'upsert', source: 'workloads', id: path.join(dir, 'workloads.yaml'), text: three }]);
    await source.start();
    const pathOf = (): string | undefined => {
      const rule = source!.current().proxies.get('api')?.ingress[0].rules[0];
      return rule ? l7RulesOf(rule, 'http')?.[0].path : undefined;
    };
    assert.equal(pathOf(), '/.*');

    // Deleted and recreated with an edit.
    fs.rmSync(policies, { recursive: true });
    await sleep(400);
    fs.mkdirSync(policies);
    fs.writeFileSync(path.join(policies, 'api.yaml'), allowHttp('web', 'api', '/v2/.*'));
    for (let i = 0; i < 30 && pathOf() !== '/v2/.*'; i++) await sleep(100);
    assert.equal(pathOf(), '/v2/.*', 'an edit in the recreated directory is applied');
    assert.ok(
      warnings.some((w) => /watch of .*policies lost: the directory is gone/.test(w)),
      warnings.join('\n'),
    );

    // Replaced by a rename (how ConfigMap updates and deploy tools swap a directory).
    const staged = path.join(dir, 'policies.new');
    fs.mkdirSync(staged);
    fs.writeFileSync(path.join(staged, 'api.yaml'), allowHttp('web', 'api', '/v3/.*'));
    fs.renameSync(policies, path.join(dir, 'policies.old'));
    fs.renameSync(staged, policies);
    for (let i = 0; i < 30 && pathOf() !== '/v3/.*'; i++) await sleep(100);
    assert.equal(pathOf(), '/v3/.*', 'the replacing directory is loaded');
    // And watched: an edit in it arrives.
    fs.writeFileSync(path.join(policies, 'api.yaml'), allowHttp('web', 'api', '/v4/.*'));
    for (let i = 0; i < 30 && pathOf() !== '/v4/.*'; i++) await sleep(100);
    assert.equal(pathOf(), '/v4/.*', 'an edit in the replacing directory is applied');
    assert.ok(
      warnings.some((w) => /watch of .*policies lost: the directory was replaced/.test(w)),
      warnings.join('\n'),
    );
  });
});
