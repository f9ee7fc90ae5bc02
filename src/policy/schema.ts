import * as fs from 'fs';
import * as path from 'path';
import Ajv, { type ErrorObject, type ValidateFunction } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { packageRoot } from '../paths';
import type { PathSegment } from '../json/path';

/**
 * Validation against the openAPIV3Schema of the CRD manifests in src/policy/crds — the same
 * schema the API server enforces, so a file that passes here is accepted by `kubectl apply`.
 * Unknown fields are errors (as with kubectl's strict field validation), because a misspelt
 * `toPort` silently pruned would widen what the policy allows.
 */

export const CRD_FILES = ['l7policy.yaml', 'clusterl7policy.yaml', 'workload.yaml'];

export interface SchemaError {
  path: PathSegment[];
  /** Point at the key rather than the value (unknown fields). */
  atKey: boolean;
  message: string;
}

export interface CrdInfo {
  kind: string;
  group: string;
  version: string;
  scope: 'Namespaced' | 'Cluster';
  schema: Record<string, unknown>;
}

export function crdDirectory(): string {
  return path.join(packageRoot(), 'src', 'policy', 'crds');
}

export function loadCrds(dir = crdDirectory()): CrdInfo[] {
  const out: CrdInfo[] = [];
  for (const file of CRD_FILES) {
    const crd = parseYaml(fs.readFileSync(path.join(dir, file), 'utf8')) as {
      spec: {
        group: string;
        scope: 'Namespaced' | 'Cluster';
        names: { kind: string };
        versions: { name: string; schema: { openAPIV3Schema: Record<string, unknown> } }[];
      };
    };
    for (const v of crd.spec.versions) {
      out.push({ kind: crd.spec.names.kind, group: crd.spec.group, version: v.name, scope: crd.spec.scope, schema: v.schema.openAPIV3Schema });
    }
  }
  return out;
}

/** Object schemas with `properties` get `additionalProperties: false` unless they preserve unknown fields. */
function strictCopy(schema: unknown): unknown {
  if (Array.isArray(schema)) return schema.map(strictCopy);
  if (!schema || typeof schema !== 'object') return schema;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(schema)) out[k] = k === 'enum' || k === 'default' ? v : strictCopy(v);
  if (out.properties && out.additionalProperties === undefined && out['x-kubernetes-preserve-unknown-fields'] !== true) {
    out.additionalProperties = false;
  }
  return out;
}

export class CrdSchemas {
  private readonly validators = new Map<string, ValidateFunction>();
  readonly crds: CrdInfo[];

  constructor(dir?: string) {
    this.crds = loadCrds(dir);
    // strict:false because the schema carries Kubernetes' x-kubernetes-* extensions, which ajv
    // would otherwise reject as unknown keywords; they carry no validation of their own here.
    const ajv = new Ajv({ allErrors: true, strict: false });
    for (const crd of this.crds) {
      this.validators.set(`${crd.group}/${crd.version}|${crd.kind}`, ajv.compile(strictCopy(crd.schema) as object));
    }
  }

  crd(apiVersion: string, kind: string): CrdInfo | undefined {
    return this.crds.find((c) => `${c.group}/${c.version}` === apiVersion && c.kind === kind);
  }

  knownKinds(): string[] {
    return this.crds.map((c) => `${c.kind} (${c.group}/${c.version})`);
  }

  validate(apiVersion: string, kind: string, value: unknown): SchemaError[] {
    const validator = this.validators.get(`${apiVersion}|${kind}`);
    if (!validator) throw new Error(`no schema for ${apiVersion} ${kind}`);
    if (validator(value)) return [];
    return translateErrors(validator.errors ?? []);
  }
}

function pointerToPath(pointer: string): PathSegment[] {
  if (!pointer) return [];
  return pointer
    .slice(1)
    .split('/')
    .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
    .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));
}

/**
 * ajv reports each failed branch of an int-or-string `anyOf` separately; collapse those into the
 * anyOf's one message and phrase the rest the way a Kubernetes user reads them.
 */
function translateErrors(errors: readonly ErrorObject[]): SchemaError[] {
  const anyOfSchemaPaths = errors.filter((e) => e.keyword === 'anyOf' || e.keyword === 'oneOf').map((e) => e.schemaPath + '/');
  const out: SchemaError[] = [];
  const seen = new Set<string>();
  for (const e of errors) {
    if (anyOfSchemaPaths.some((p) => e.schemaPath.startsWith(p))) continue;
    const base = pointerToPath(e.instancePath);
    let err: SchemaError;
    const params = e.params as Record<string, unknown>;
    switch (e.keyword) {
      case 'additionalProperties':
        err = { path: [...base, String(params.additionalProperty)], atKey: true, message: 'unknown field' };
        break;
      case 'required':
        err = { path: [...base, String(params.missingProperty)], atKey: false, message: 'required field is missing' };
        break;
      case 'enum':
        err = { path: base, atKey: false, message: `must be one of ${(params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}` };
        break;
      case 'anyOf':
      case 'oneOf':
        err = { path: base, atKey: false, message: 'must be an integer or a string' };
        break;
      case 'type':
        err = { path: base, atKey: false, message: `must be of type ${String(params.type)}` };
        break;
      case 'maxProperties':
        err = {
          path: base,
          atKey: false,
          message:
            base[base.length - 1] === 'rules' ? 'must hold either http or kafka rules, not both' : `must have at most ${String(params.limit)} properties`,
        };
        break;
      default:
        err = { path: base, atKey: false, message: e.message ?? e.keyword };
    }
    const key = JSON.stringify(err.path) + err.message;
    if (seen.has(key)) continue;
    seen.add(key);
    out.push(err);
  }
  return out;
}
