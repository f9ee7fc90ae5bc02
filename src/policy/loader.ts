import * as fs from 'fs';
import * as path from 'path';
import { Composer, LineCounter, parseAllDocuments, Parser, type Document } from 'yaml';
import { InputFileError, MAX_INPUT_BYTES, readInputFile } from '../input-file';
import { isObject } from '../json/object';
import { formatPath, type PathSegment } from '../json/path';
import { compareDiagnostics, type Diagnostic } from './diagnostics';
import {
  lineOf,
  resourceKey,
  resourceName,
  type L7PolicySpec,
  type PolicyResource,
  type Resource,
  type ResourceSource,
  type WorkloadResource,
  type WorkloadSpec,
} from './model';
import { RULE_SECTIONS } from './policy-rules';
import { CrdSchemas } from './schema';
import { grpcJsRefusals, unenforceable, type EnforcementMode } from './enforceability';
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

/**
 * Most YAML documents one file may hold. A reload checks and compiles on the event loop, and a
 * 10,000-document file held every xDS stream of `serve` for 8.8 s; a thousand is more workloads or
 * policies than anyone keeps in one file by hand. Past the cap the file is not even parsed on.
 */
export const MAX_DOCUMENTS_PER_FILE = 1000;

/** The documents of `text`; past `max` of them it parses no further and says where the next one starts. */
function parseDocuments(text: string, lines: LineCounter, max: number): { docs: Document.Parsed[]; overflowAt?: number } {
  const composer = new Composer();
  const docs: Document.Parsed[] = [];
  for (const doc of composer.compose(new Parser(lines.addNewLine).parse(text))) {
    if (docs.length === max) return { docs, overflowAt: doc.range[0] };
    docs.push(doc);
  }
  return { docs };
}

/**
 * Parses and validates one YAML text (any number of documents): YAML syntax, then the CRD
 * schema, then the semantic checks. A document with errors yields diagnostics and no resource.
 * A text over the size or document cap yields one diagnostic and no resource at all.
 */
export interface LoadOptions {
  /** The Envoy mode the policies will be served in: what it cannot enforce is refused (default standalone). */
  mode?: EnforcementMode;
  /** istio: the ports the deployed EnvoyFilter patches per port; L7 rules on another port are refused. */
  coveredPorts?: readonly number[];
  /** grpc: also refuse what an XdsServer of @grpc/grpc-js-xds cannot enforce (`policy check`; `serve` refuses it per node). */
  grpcJs?: boolean;
}

export function loadText(file: string, text: string, schemas: CrdSchemas = defaultSchemas(), options: LoadOptions = {}): LoadResult {
  const bytes = text.length > MAX_INPUT_BYTES / 3 ? Buffer.byteLength(text) : 0;
  if (bytes > MAX_INPUT_BYTES) {
    return {
      resources: [],
      diagnostics: [{ file, line: 1, column: 1, path: '', message: `${bytes} bytes, over the ${MAX_INPUT_BYTES}-byte limit for one file` }],
    };
  }
  const lines = new LineCounter();
  const { docs: list, overflowAt } = parseDocuments(text, lines, MAX_DOCUMENTS_PER_FILE);
  if (overflowAt !== undefined) {
    const pos = lines.linePos(overflowAt);
    const message = `more than ${MAX_DOCUMENTS_PER_FILE} YAML documents in one file (this is document ${MAX_DOCUMENTS_PER_FILE + 1}); split it into several files`;
    return { resources: [], diagnostics: [{ file, line: pos.line, column: pos.col, path: '', message }] };
  }
  const resources: Resource[] = [];
  const diagnostics: Diagnostic[] = [];
  list.forEach((doc, i) => {
    const document = i + 1;
    const positions = new DocumentPositions(doc, lines);
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = e.linePos?.[0] ?? positions.position(e.pos[0]);
        diagnostics.push({
          file,
          document,
          line: pos.line,
          column: 'col' in pos ? pos.col : pos.column,
          path: '',
          message: `YAML syntax error: ${e.message.split('\n')[0]}`,
        });
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
    if (!isObject(value)) {
      report([], 'a document must be a mapping with apiVersion, kind, metadata and spec');
      return;
    }
    const { apiVersion, kind } = value;
    const metadata = isObject(value.metadata) ? value.metadata : {};
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
    if (!isObject(value.metadata)) {
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
      const refused = unenforceable(value.spec as L7PolicySpec, {
        mode: options.mode ?? 'standalone',
        coveredPorts: options.coveredPorts,
        grpcJs: options.grpcJs,
      });
      for (const e of refused) report(e.path, e.message, subject);
      if (refused.length > 0) return;
    }

    const startLine = positions.position(positions.documentStart()).line;
    const source: ResourceSource = { file, document, line: positions.locate([]).line || startLine, lines: fieldLines(positions, kind, value.spec) };
    const name = metadata.name as string;
    if (kind === 'Workload') {
      const w: WorkloadResource = {
        kind: 'Workload',
        name,
        namespace: namespace as string,
        labels: { ...((metadata.labels as Record<string, string> | undefined) ?? {}) },
        spec: value.spec as WorkloadSpec,
        source,
      };
      resources.push(w);
    } else {
      const p: PolicyResource = { kind: kind as PolicyResource['kind'], name, namespace, spec: value.spec as L7PolicySpec, source };
      resources.push(p);
    }
  });
  return { resources, diagnostics };
}

/** The lines of the fields that diagnostics across documents and compiled rules point at. */
function fieldLines(positions: DocumentPositions, kind: string, spec: unknown): Record<string, number> {
  const paths: PathSegment[][] = [['metadata', 'name'], ['spec']];
  if (isObject(spec)) {
    const lists = kind === 'Workload' ? ['addresses'] : RULE_SECTIONS;
    for (const field of lists) {
      const list = spec[field];
      if (Array.isArray(list)) list.forEach((_, i) => paths.push(['spec', field, i]));
    }
    // The fields grpc mode refuses for grpc-js servers at build time, which name their own line.
    if (kind !== 'Workload')
      for (const section of ['ingress', 'ingressDeny'] as const) {
        const rules = (spec as unknown as L7PolicySpec)[section];
        if (Array.isArray(rules)) rules.forEach((_, i) => paths.push(...grpcJsRefusals(spec as unknown as L7PolicySpec, section, i).map((e) => e.path)));
      }
  }
  return Object.fromEntries(paths.map((p) => [formatPath(p), positions.locate(p).line]));
}

/** Non-empty YAML documents in a text; undefined when it does not parse as YAML at all. */
export function countDocuments(text: string): number | undefined {
  try {
    const docs = parseAllDocuments(text);
    return Array.isArray(docs) ? docs.filter((d) => d.contents !== null).length : 0;
  } catch {
    return undefined;
  }
}

function readForLoad(file: string): { text: string } | { diagnostic: Diagnostic } {
  try {
    return { text: readInputFile(file) };
  } catch (err) {
    const reason = err instanceof InputFileError ? err.message : String(err);
    return { diagnostic: { file, line: 1, column: 1, path: '', message: `cannot read: ${reason}` } };
  }
}

/** What loadFiles read, by file: the exact text its resources came from (to persist a good set). */
export interface FilesLoadResult extends LoadResult {
  texts: ReadonlyMap<string, string>;
}

/**
 * Loads files as one set: per-document checks plus the checks across documents (a name defined
 * twice, an address claimed by two workloads). Diagnostics are sorted by file and position.
 */
export function loadFiles(files: readonly string[], schemas?: CrdSchemas, options: LoadOptions = {}): FilesLoadResult {
  const texts = new Map<string, string>();
  const unreadable: Diagnostic[] = [];
  for (const f of files) {
    const read = readForLoad(f);
    if ('diagnostic' in read) unreadable.push(read.diagnostic);
    else texts.set(f, read.text);
  }
  const loaded = loadTexts(texts, schemas, options);
  loaded.diagnostics.push(...unreadable);
  loaded.diagnostics.sort(compareDiagnostics);
  return { ...loaded, texts };
}

/** loadFiles over texts already in hand (file name → YAML text), e.g. a persisted good set. */
export function loadTexts(texts: ReadonlyMap<string, string>, schemas?: CrdSchemas, options: LoadOptions = {}): LoadResult {
  const resources: Resource[] = [];
  const diagnostics: Diagnostic[] = [];
  for (const [file, text] of texts) {
    const r = loadText(file, text, schemas, options);
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
    out.push({
      file: src?.file ?? '<memory>',
      document: src?.document,
      line: src ? lineOf(src, p) : 1,
      column: 1,
      subject: `${r.kind} ${resourceName(r)}`,
      path: formatPath(p),
      message,
    });
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
