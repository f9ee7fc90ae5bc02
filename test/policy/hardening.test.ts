import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { listYamlFiles } from '../../src/policy/loader';
import { FilePolicySource } from '../../src/sources/file-source';
import { checkText, tmpDir } from './helpers';

describe('policy loading never crashes on hostile input', () => {
  it('reports an unresolved alias and an alias bomb as diagnostics', () => {
    assert.match(checkText('a: *nope\n').join('\n'), /policy\.yaml:1:\d+: .*(alias|YAML)/i);
    const bomb = [
      'a: &a [x, x, x, x, x, x, x, x, x, x]',
      'b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]',
      'c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]',
      'd: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]',
      'e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]',
    ].join('\n');
    assert.match(checkText(bomb).join('\n'), /alias/i);
  });

  it('a watched directory that gains a hostile file keeps the last good state', async () => {
    const dir = tmpDir('hostile');
    const src = new FilePolicySource({ directories: [dir], debounceMs: 20 });
    const errors: string[] = [];
    src.on('error', (ds) => errors.push(...ds.map((d) => d.message)));
    try {
      assert.equal((await src.start()).applied, true);
      fs.writeFileSync(path.join(dir, 'bad.yaml'), 'a: *nope\n');
      // Validated in a worker thread, which may take seconds to start on a loaded machine.
      for (let i = 0; i < 600 && errors.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
      assert.ok(errors.length > 0, 'reported');
      assert.equal(src.current().version, 1);
    } finally {
      src.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('follows symlinks (a ConfigMap mount) and survives a symlink loop', () => {
    const dir = tmpDir('links');
    try {
      fs.mkdirSync(path.join(dir, '..data'));
      fs.writeFileSync(path.join(dir, '..data', 'p.yaml'), 'x: 1\n');
      fs.symlinkSync(path.join(dir, '..data', 'p.yaml'), path.join(dir, 'p.yaml'));
      fs.symlinkSync(dir, path.join(dir, 'loop'));
      fs.symlinkSync(path.join(dir, 'missing.yaml'), path.join(dir, 'dangling.yaml'));
      assert.deepEqual(listYamlFiles(dir), [path.join(dir, 'p.yaml')]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
