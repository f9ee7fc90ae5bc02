import * as fs from 'fs';
import * as path from 'path';
import { LineCounter, parseAllDocuments } from 'yaml';
import { compareDiagnostics, formatPath, type Diagnostic, type PathSegment } from './diagnostics';
import { resourceKey, resourceName, type L7PolicySpec, type PolicyResource, type Resource, type WorkloadResource, type WorkloadSpec } from './model';
import { CrdSchemas } from './schema';
import { unenforceable, type EnforcementMode } from './enforceability';
import { checkMetadata, checkPolicySpec, checkWorkloadSpec, type SemanticError } from './semantic-checks';
import { DocumentPositions } from './yaml-positions';

export interface LoadResult {
  resources: Resource[];
  diagnostics: Diagnostic[];
}

export const DEFAULT_NAMESPACE = 'default';

let sharedSchemas: CrdSchemas | undefined;
/** Compiling the schemas costs a few milliseconds; every loader in the process shares one set. */
export function defaultSchemas(): CrdSchemas {
  return (sharedSchemas ??= new CrdSchemas());
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Parses and validates one YAML text (any number of documents): YAML syntax, then the CRD
 * schema, then the semantic checks. A document with errors yields diagnostics and no resource.
 */
export interface LoadOptions {
  /** The Envoy mode the policies will be served in: what it cannot enforce is refused (default standalone). */
  mode?: EnforcementMode;
}

export function loadText(file: string, text: string, schemas: CrdSchemas = defaultSchemas(), options: LoadOptions = {}): LoadResult {
  const lines = new LineCounter();
  const docs = parseAllDocuments(text, { lineCounter: lines, prettyErrors: false });
  const resources: Resource[] = [];
  const diagnostics: Diagnostic[] = [];
  // A file of only comments parses to an empty stream rather than an array.
  const list = Array.isArray(docs) ? docs : [];
  list.forEach((doc, i) => {
    const document = i + 1;
    const positions = new DocumentPositions(doc, lines);
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = e.linePos?.[0] ?? positions.position(e.pos[0]);
        diagnostics.push({ file, document, line: pos.line, column: "col" in pos ? pos.col : pos.column, path: '', message: `YAML syntax error: ${e.message.split('\n')[0]}` });
      }
      return;
    }
    let value: unknown;
    try {
      value = doc.toJS({ maxAliasCount: 1000 });
    } catch (err) {
      // An unresolved alias or an alias bomb: a diagnostic for this document, never a crash.
      const pos = positions.position(doc.range[0]);
      diagnostics.push({ file, document, line: pos.line, column: pos.column, path: '', message: `YAML error: ${(err as Error).message.split('\n')[0]}` });
      return;
    }
    if (value === null || value === undefined) return; // empty document, e.g. a trailing `---`
    const report = (p: readonly PathSegment[], message: string, subject?: string, atKey = false): void => {
      const pos = positions.locate(p, { key: atKey });
      diagnostics.push({ file, document, line: pos.line, column: pos.column, subject, path: formatPath(p), message });
    };
    if (!isRecord(value)) {
      report([], 'a document must be a mapping with apiVersion, kind, metadata and spec');
      return;
    }
    const { apiVersion, kind } = value;
    const metadata = isRecord(value.metadata) ? value.metadata : {};
    const subjectName = typeof metadata.name === 'string' ? metadata.name : '<unnamed>';
    if (typeof apiVersion !== 'string' || typeof kind !== 'string') {
      report(typeof apiVersion !== 'string' ? ['apiVersion'] : ['kind'], 'required field is missing');
      return;
    }
    const crd = schemas.crd(apiVersion, kind);
    if (!crd) {
      report(['kind'], `unknown kind ${kind} of apiVersion ${apiVersion}; expected one of ${schemas.knownKinds().join(', ')}`);
      return;
    }
    const namespace = crd.scope === 'Namespaced' ? (typeof metadata.namespace === 'string' ? metadata.namespace : DEFAULT_NAMESPACE) : undefined;
    const subject = `${kind} ${namespace === undefined ? subjectName : `${namespace}/${subjectName}`}`;
    if (!isRecord(value.metadata)) {
      report(['metadata'], 'required field is missing', subject);
      return;
    }
    let failed = false;
    for (const e of schemas.validate(apiVersion, kind, value)) {
      report(e.path, e.message, subject, e.atKey);
      failed = true;
    }
    const semantic: SemanticError[] = [];
    checkMetadata(metadata, crd.scope, semantic);
    if (kind === 'Workload') semantic.push(...checkWorkloadSpec(value.spec));
    else semantic.push(...checkPolicySpec(value.spec));
    for (const e of semantic) report(e.path, e.message, subject);
    if (failed || semantic.length > 0) return;
    if (kind !== 'Workload') {
      const refused = unenforceable(value.spec as L7PolicySpec, options.mode ?? 'standalone');
      for (const e of refused) report(e.path, e.message, subject);
      if (refused.length > 0) return;
    }

    const startLine = positions.position(positions.documentStart()).line;
    const source = {
      file,
      document,
      line: positions.locate([]).line || startLine,
      lineOf: (p: readonly PathSegment[]) => positions.locate(p).line,
    };
    const name = metadata.name as string;
    if (kind === 'Workload') {
      const w: WorkloadResource = { kind: 'Workload', name, namespace: namespace as string, labels: { ...((metadata.labels as Record<string, string> | undefined) ?? {}) }, spec: value.spec as WorkloadSpec, source };
      resources.push(w);
    } else {
      const p: PolicyResource = { kind: kind as PolicyResource['kind'], name, namespace, spec: value.spec as L7PolicySpec, source };
      resources.push(p);
    }
  });
  return { resources, diagnostics };
}

export function loadFile(file: string, schemas?: CrdSchemas, options: LoadOptions = {}): LoadResult {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    return { resources: [], diagnostics: [{ file, line: 1, column: 1, path: '', message: `cannot read: ${(err as Error).message}` }] };
  }
  return loadText(file, text, schemas, options);
}

/**
 * Loads files as one set: per-document checks plus the checks across documents (a name defined
 * twice, an address claimed by two workloads). Diagnostics are sorted by file and position.
 */
export function loadFiles(files: readonly string[], schemas?: CrdSchemas, options: LoadOptions = {}): LoadResult {
  const resources: Resource[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const f of files) {
    const r = loadFile(f, schemas, options);
    resources.push(...r.resources);
    diagnostics.push(...r.diagnostics);
  }
  diagnostics.push(...crossDocumentChecks(resources));
  diagnostics.sort(compareDiagnostics);
  return { resources, diagnostics };
}

function where(r: Resource): string {
  return r.source ? `${r.source.file}:${r.source.line}` : 'elsewhere';
}

export function crossDocumentChecks(resources: readonly Resource[]): Diagnostic[] {
  const out: Diagnostic[] = [];
  const byKey = new Map<string, Resource>();
  const byAddress = new Map<string, WorkloadResource>();
  const report = (r: Resource, p: PathSegment[], message: string): void => {
    const src = r.source;
    out.push({ file: src?.file ?? '<memory>', document: src?.document, line: src?.lineOf?.(p) ?? src?.line ?? 1, column: 1, subject: `${r.kind} ${resourceName(r)}`, path: formatPath(p), message });
  };
  for (const r of resources) {
    const key = resourceKey(r);
    const first = byKey.get(key);
    if (first) report(r, ['metadata', 'name'], `${r.kind} ${resourceName(r)} is already defined at ${where(first)}`);
    else byKey.set(key, r);
    if (r.kind !== 'Workload' || first) continue;
    r.spec.addresses.forEach((a, i) => {
      const owner = byAddress.get(a);
      if (owner && owner !== r) report(r, ['spec', 'addresses', i], `address ${a} is already used by Workload ${resourceName(owner)} at ${where(owner)}`);
      else byAddress.set(a, r);
    });
  }
  return out;
}

function statOrUndefined(file: string): fs.Stats | undefined {
  try {
    return fs.statSync(file);
  } catch {
    return undefined; // a dangling link
  }
}

/** The `.yaml`/`.yml` files of a directory (recursively), sorted, hidden files skipped (editors' swap files). */
export function listYamlFiles(dir: string): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  const walk = (d: string): void => {
    // A symlinked directory may point back up the tree.
    const real = fs.realpathSync(d);
    if (seen.has(real)) return;
    seen.add(real);
    for (const entry of fs.readdirSync(d, { withFileTypes: true })) {
      if (entry.name.startsWith('.')) continue;
      const full = path.join(d, entry.name);
      // Follow symlinks: a Kubernetes ConfigMap mount is `p.yaml -> ..data/p.yaml`.
      const stat = entry.isSymbolicLink() ? statOrUndefined(full) : entry;
      if (!stat) continue;
      if (stat.isDirectory()) walk(full);
      // `*.test.yaml` are policy tests (`meshaccel policy test`), kept beside the policies they test.
      else if (stat.isFile() && /\.ya?ml$/.test(entry.name) && !/\.test\.ya?ml$/.test(entry.name)) out.push(full);
    }
  };
  walk(dir);
  return out.sort();
}
