import * as assert from 'node:assert/strict';
import * as fs from 'fs';
import * as path from 'path';
import { packageRoot } from '../../src/paths';

/**
 * Data flows one way (source → store → compiler → snapshots → streams): no folder under src/
 * imports another in a circle. Read from the TypeScript sources (type-only imports count: a
 * type cycle is a design cycle too), at two grains: the top-level folders (`src/xds`,
 * `src/envoy`, ...) and every directory (`src/datapath/bpf` vs `src/datapath/redirect`).
 */

type Graph = Map<string, Map<string, string>>;

const IMPORT = /(?:^|[\s;])(?:import|export)\s[^'";]*?from\s*'(\.{1,2}\/[^']+)'|import\(\s*'(\.{1,2}\/[^']+)'\s*\)|^\s*import\s+'(\.{1,2}\/[^']+)'/gm;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name);
    if (e.isDirectory()) return sourceFiles(full);
    return e.name.endsWith('.ts') && !e.name.endsWith('.d.ts') ? [full] : [];
  });
}

/** Edges between groups of files (`groupOf` names a file's group); each edge keeps one example import. */
function importGraph(srcRoot: string, groupOf: (relFile: string) => string): Graph {
  const graph: Graph = new Map();
  for (const file of sourceFiles(srcRoot)) {
    const from = groupOf(path.relative(srcRoot, file));
    const text = fs.readFileSync(file, 'utf8');
    for (const m of text.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2] ?? m[3];
      const target = path.relative(srcRoot, path.resolve(path.dirname(file), spec));
      if (target.startsWith('..')) continue;
      const to = groupOf(target);
      if (to === from) continue;
      let edges = graph.get(from);
      if (!edges) graph.set(from, (edges = new Map()));
      if (!edges.has(to)) edges.set(to, `${path.relative(srcRoot, file)} imports '${spec}'`);
    }
  }
  return graph;
}

/** Strongly connected components of more than one group (Tarjan), each as `a → b → a` with the imports that close it. */
export function cycles(graph: Graph): string[] {
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const found: string[] = [];
  let next = 0;
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v)?.keys() ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v) as number, low.get(w) as number));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v) as number, index.get(w) as number));
    }
    if (low.get(v) !== index.get(v)) return;
    const component: string[] = [];
    let w: string;
    do {
      w = stack.pop() as string;
      onStack.delete(w);
      component.push(w);
    } while (w !== v);
    if (component.length < 2) return;
    const members = new Set(component);
    const edges = component.flatMap((a) => [...(graph.get(a) ?? [])].filter(([b]) => members.has(b)).map(([b, why]) => `  ${a} → ${b}: ${why}`));
    found.push(`${component.sort().join(' ↔ ')}\n${edges.join('\n')}`);
  };
  for (const v of graph.keys()) if (!index.has(v)) visit(v);
  return found;
}

// A top-level file (src/index.ts, src/paths.ts) is a group of its own.
const topFolder = (rel: string): string => (rel.includes(path.sep) ? rel.split(path.sep)[0] : rel);
const directory = (rel: string): string => (path.dirname(rel) === '.' ? rel : path.dirname(rel));

describe('layout: no import cycle between folders', () => {
  const srcRoot = path.join(packageRoot(), 'src');

  it('between the top-level folders of src/', () => {
    const found = cycles(importGraph(srcRoot, topFolder));
    assert.deepEqual(found, [], `folders importing each other in a circle:\n${found.join('\n')}`);
  });

  it('between any two directories of src/', () => {
    const found = cycles(importGraph(srcRoot, directory));
    assert.deepEqual(found, [], `directories importing each other in a circle:\n${found.join('\n')}`);
  });

  it('between any two files of src/ (e.g. xds/snapshot.ts and xds/subscription.ts)', () => {
    const found = cycles(importGraph(srcRoot, (rel) => rel.replace(/\.ts$/, '')));
    assert.deepEqual(found, [], `files importing each other in a circle:\n${found.join('\n')}`);
  });

  it('the check finds a cycle when there is one (a scratch tree with xds ↔ envoy)', () => {
    const tmp = fs.mkdtempSync(path.join(require('os').tmpdir(), 'meshaccel-cycles-'));
    try {
      for (const d of ['xds', 'envoy', 'resource']) fs.mkdirSync(path.join(tmp, d));
      fs.writeFileSync(path.join(tmp, 'xds/a.ts'), "import type { B } from '../envoy/b';\nexport const a = 1;\n");
      fs.writeFileSync(
        path.join(tmp, 'envoy/b.ts'),
        "import { c } from '../resource/c';\nexport type B = number;\nexport const lazy = () => import('../xds/a');\n",
      );
      fs.writeFileSync(path.join(tmp, 'resource/c.ts'), 'export const c = 1;\n');
      const found = cycles(importGraph(tmp, topFolder));
      assert.equal(found.length, 1);
      assert.match(found[0], /^envoy ↔ xds\n/);
      assert.match(found[0], /envoy → xds: envoy\/b\.ts imports '\.\.\/xds\/a'/);
      assert.match(found[0], /xds → envoy: xds\/a\.ts imports '\.\.\/envoy\/b'/);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });
});
