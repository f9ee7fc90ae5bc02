import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { PolicyEngine } from '../../src/policy/engine';
import { listYamlFiles, loadFiles } from '../../src/policy/loader';
import type { Resource } from '../../src/policy/model';
import { defaultStateDir, describePersistedUse, LastGoodStore } from '../../src/sources/last-good-store';
import { ROOT, tmpDir } from '../policy/helpers';

/**
 * Issue #12 item 6: a restart while one file was invalid or unreadable served every proxy an
 * empty configuration. The store keeps the last set that passed and gives it back, validated
 * again, when the files on disk do not pass at start-up.
 */

function compile(resources: readonly Resource[]): string {
  const engine = new PolicyEngine();
  engine.sync([...resources]);
  const commit = engine.commit();
  assert.deepEqual(commit.conflicts, []);
  return JSON.stringify([...engine.proxies()].sort(([a], [b]) => (a < b ? -1 : 1)));
}

describe('robust: the last good configuration survives a restart (#12 item 6)', function () {
  this.timeout(60000);
  let dir: string;
  let policies: string;
  let workloads: string;
  let stateDir: string;

  beforeEach(() => {
    dir = tmpDir('robust-last-good');
    policies = path.join(dir, 'policies');
    workloads = path.join(dir, 'workloads');
    stateDir = path.join(dir, 'state');
    fs.cpSync(path.join(ROOT, 'examples', 'policies'), policies, { recursive: true });
    fs.cpSync(path.join(ROOT, 'examples', 'workloads'), workloads, { recursive: true });
  });
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const files = (): string[] => [...listYamlFiles(policies), ...listYamlFiles(workloads)];

  it('after a restart with an invalid file and an unreadable one, serves exactly the policy the last good files compiled to', () => {
    // The running server: the files pass, and the set is persisted.
    const good = loadFiles(files());
    assert.deepEqual(good.diagnostics, []);
    const served = compile(good.resources);
    assert.ok(JSON.parse(served).length > 0, 'the examples serve some proxies');
    assert.equal(new LastGoodStore({ stateDir, directories: [policies, workloads] }).save(good.texts), undefined);

    // Meanwhile: one file broken, another made unreadable (a directory in its place).
    const [first, second] = files();
    fs.writeFileSync(first, 'apiVersion: meshaccel.io/v1alpha1\nkind: L7Policy\nmetadata: {name: broken\n');
    fs.rmSync(second);
    fs.mkdirSync(path.join(path.dirname(second), 'still.yaml'));

    // The restart: a fresh store on the same directories.
    const onDisk = loadFiles(files());
    assert.ok(onDisk.diagnostics.length > 0, 'the files on disk fail');
    const persisted = new LastGoodStore({ stateDir, directories: [policies, workloads] }).load();
    assert.ok(persisted.ok, persisted.ok ? '' : persisted.reason);
    assert.deepEqual(persisted.loaded.diagnostics, []);
    assert.equal(compile(persisted.loaded.resources), served);
    // Diagnostics and sources still name the original files.
    assert.deepEqual([...new Set(persisted.loaded.resources.map((r) => r.source?.file))].sort(), [...good.texts.keys()].sort());
    assert.match(
      describePersistedUse(persisted.record, onDisk.diagnostics),
      /^serving the last good configuration persisted at \S+ \(5 files\) because the files on disk fail \(\d+ errors?; first: .+\); it is replaced as soon as the files pass again$/,
    );
  });

  it('keeps the previous record when a save cannot complete, and leaves no temp file after one that does', () => {
    const store = new LastGoodStore({ stateDir, directories: [policies, workloads] });
    const good = loadFiles(files());
    assert.equal(store.save(good.texts), undefined);
    const before = fs.readFileSync(store.file, 'utf8');
    // The next save cannot write its temp file (something else stands at its path): it fails and says so.
    const blocker = `${store.file}.tmp-${process.pid}`;
    fs.mkdirSync(blocker);
    const changed = new Map(good.texts);
    changed.set(path.join(policies, 'extra.yaml'), '# a comment\n');
    assert.match(store.save(changed) ?? '', /^not persisted to .*: EISDIR/);
    assert.equal(fs.readFileSync(store.file, 'utf8'), before);
    fs.rmdirSync(blocker);
    // A successful save replaces the record whole and leaves no temp file behind.
    assert.equal(store.save(changed), undefined);
    assert.notEqual(fs.readFileSync(store.file, 'utf8'), before);
    assert.deepEqual(
      fs.readdirSync(stateDir).filter((f) => f.includes('.tmp-')),
      [],
    );
  });

  it('refuses a record that was altered, truncated, or saved for other directories, with the reason', () => {
    const store = new LastGoodStore({ stateDir, directories: [policies, workloads] });
    assert.equal(store.save(loadFiles(files()).texts), undefined);
    const body = fs.readFileSync(store.file, 'utf8');

    const record = JSON.parse(body) as { files: { text: string }[] };
    record.files[0].text += '# appended after it was persisted\n';
    fs.writeFileSync(store.file, JSON.stringify(record));
    const altered = new LastGoodStore({ stateDir, directories: [policies, workloads] }).load();
    assert.equal(altered.ok, false);
    assert.match(altered.ok ? '' : altered.reason, /is corrupt: the text of .* does not match its digest$/);

    fs.writeFileSync(store.file, body.slice(0, body.length / 2));
    const truncated = new LastGoodStore({ stateDir, directories: [policies, workloads] }).load();
    assert.match(truncated.ok ? '' : truncated.reason, /is corrupt: /);

    fs.writeFileSync(store.file, body);
    const other = new LastGoodStore({ stateDir, directories: [policies, workloads] });
    assert.ok(other.load().ok);
    // Another server's directories map to another state file, and a record copied over is refused.
    const elsewhere = new LastGoodStore({ stateDir, directories: [policies] });
    assert.notEqual(elsewhere.file, store.file);
    assert.match(((r) => (r.ok ? '' : r.reason))(elsewhere.load()), /^no configuration persisted in /);
    fs.copyFileSync(store.file, elsewhere.file);
    assert.match(((r) => (r.ok ? '' : r.reason))(elsewhere.load()), /was persisted for other directories/);
  });

  it('refuses a persisted set that this version no longer accepts, rather than serving it unchecked', () => {
    const store = new LastGoodStore({ stateDir, directories: [policies, workloads] });
    const good = loadFiles(files());
    const texts = new Map(good.texts);
    const file = path.join(policies, 'http-api-allowlist.yaml');
    // As if persisted by a version that accepted this regex.
    const edited = (texts.get(file) as string).replace(/path: \/v1\/orders$/m, 'path: "/v1/(?=x)"');
    assert.notEqual(edited, texts.get(file));
    texts.set(file, edited);
    assert.equal(store.save(texts), undefined);
    const r = new LastGoodStore({ stateDir, directories: [policies, workloads] }).load();
    assert.equal(r.ok, false);
    assert.match(r.ok ? '' : r.reason, /no longer passes: .*invalid RE2 regular expression/);
  });

  it('puts its state under XDG_STATE_HOME, /var/lib for root, else ~/.local/state', () => {
    assert.equal(defaultStateDir({ XDG_STATE_HOME: '/x/state' }, 1000), '/x/state/meshaccel');
    assert.equal(defaultStateDir({}, 0), '/var/lib/meshaccel');
    assert.equal(defaultStateDir({ HOME: '/home/u' }, 1000), '/home/u/.local/state/meshaccel');
    assert.equal(defaultStateDir({ XDG_STATE_HOME: 'relative', HOME: '/home/u' }, 1000), '/home/u/.local/state/meshaccel');
  });
});
