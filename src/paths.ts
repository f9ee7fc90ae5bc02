import * as fs from 'fs';
import * as path from 'path';

let cachedRoot: string | undefined;

/**
 * The directory holding meshaccel's package.json. Sources run from dist/src/..., tests from
 * dist/test/..., so relative hops from __dirname differ; walking up is the one rule for both.
 */
export function packageRoot(): string {
  if (cachedRoot) return cachedRoot;
  let dir = __dirname;
  for (;;) {
    const candidate = path.join(dir, 'package.json');
    if (fs.existsSync(candidate)) {
      const pkg = JSON.parse(fs.readFileSync(candidate, 'utf8')) as { name?: string };
      if (pkg.name === 'meshaccel') return (cachedRoot = dir);
    }
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`cannot find meshaccel's package.json above ${__dirname}`);
    dir = parent;
  }
}
