import * as fs from 'fs';
import * as os from 'os';
import * as path from 'path';
import { formatDiagnostic } from '../../src/policy/diagnostics';
import { loadFiles } from '../../src/policy/loader';
import { packageRoot } from '../../src/paths';

export const ROOT = packageRoot();

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `meshaccel-${prefix}-`));
}

/** Writes `text` as a file in a fresh tmp dir and returns the formatted diagnostics of checking it. */
export function checkText(text: string, name = 'policy.yaml'): string[] {
  const dir = tmpDir('check');
  const file = path.join(dir, name);
  fs.writeFileSync(file, text);
  try {
    return loadFiles([file]).diagnostics.map((d) => formatDiagnostic(d).replace(file, name));
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** A minimal valid L7Policy document around an ingress rule list (YAML text, indented for `spec:`). */
export function policyDoc(body: string, name = 'api', namespace = 'default'): string {
  return `apiVersion: meshaccel.io/v1alpha1\nkind: L7Policy\nmetadata:\n  name: ${name}\n  namespace: ${namespace}\nspec:\n${body}`;
}
