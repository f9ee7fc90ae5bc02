import * as YAML from 'yaml';
import type * as protobuf from 'protobufjs';
import { readInputFile } from '../input-file';
import { type Diagnostic } from '../policy/diagnostics';
import { DocumentPositions } from '../policy/yaml-positions';
import { resolveEnvoyType } from './protos';
import { isObject } from '../json/object';
import type { PathSegment } from '../json/path';
import { Violation, checkEnvoyAnyJson, checkEnvoyJson, formatViolationPath } from './schema-check';

/**
 * `meshaccel envoy check`: finds the Envoy messages in a YAML or JSON file (a bootstrap, one
 * resource with "@type", a list or `resources:` of them, or an Istio EnvoyFilter's patch
 * values), checks each, and reports violations at their line and column.
 */

export interface FileCheckResult {
  file: string;
  /** What was checked, e.g. "Bootstrap", "Listener meshaccel.inbound". */
  checked: string[];
  violations: Diagnostic[];
}

/** Istio EnvoyFilter `applyTo` → the Envoy message its patch value is. */
const ENVOY_FILTER_TARGETS: Record<string, string> = {
  LISTENER: 'envoy.config.listener.v3.Listener',
  FILTER_CHAIN: 'envoy.config.listener.v3.FilterChain',
  NETWORK_FILTER: 'envoy.config.listener.v3.Filter',
  HTTP_FILTER: 'envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter',
  ROUTE_CONFIGURATION: 'envoy.config.route.v3.RouteConfiguration',
  VIRTUAL_HOST: 'envoy.config.route.v3.VirtualHost',
  HTTP_ROUTE: 'envoy.config.route.v3.Route',
  CLUSTER: 'envoy.config.cluster.v3.Cluster',
  EXTENSION_CONFIG: 'envoy.config.core.v3.TypedExtensionConfig',
  BOOTSTRAP: 'envoy.config.bootstrap.v3.Bootstrap',
  LISTENER_FILTER: 'envoy.config.listener.v3.ListenerFilter',
};

interface Target {
  label: string;
  path: PathSegment[];
  check: () => Violation[];
}

function nameOf(json: unknown): string {
  return isObject(json) && typeof json.name === 'string' ? ` ${json.name}` : '';
}

function shortName(url: string): string {
  return url.slice(url.lastIndexOf('.') + 1);
}

function anyTarget(json: unknown, path: PathSegment[]): Target {
  const url = isObject(json) && typeof json['@type'] === 'string' ? json['@type'] : '?';
  return { label: `${shortName(url)}${nameOf(json)}`, path, check: () => checkEnvoyAnyJson(json, { encodeAny: false }).violations };
}

function typedTarget(type: protobuf.Type, json: unknown, path: PathSegment[], label: string, pgv = true): Target {
  return {
    label,
    path,
    check: () => {
      const violations = checkEnvoyJson(type, json, { encodeAny: false }).violations;
      // A MERGE patch is partial by design: only its shape can be checked, not completeness.
      return pgv
        ? violations
        : violations.filter((v) => /unknown field|expected|does not resolve|not a value of enum|out of range|given twice|both set/.test(v.message));
    },
  };
}

/** Decides what a parsed document holds. */
export function findTargets(doc: unknown): Target[] {
  if (Array.isArray(doc)) return doc.map((item, i) => anyTarget(item, [i]));
  if (!isObject(doc)) return [{ label: 'document', path: [], check: () => [{ path: [], message: 'expected an object or a list of resources' }] }];
  if (typeof doc['@type'] === 'string') return [anyTarget(doc, [])];
  if (Array.isArray(doc.resources) && Object.keys(doc).every((k) => ['resources', 'version_info', 'versionInfo', 'type_url', 'typeUrl'].includes(k))) {
    return doc.resources.map((item, i) => anyTarget(item, ['resources', i]));
  }
  if (doc.kind === 'EnvoyFilter' && typeof doc.apiVersion === 'string') {
    const spec = isObject(doc.spec) ? doc.spec : {};
    const patches = Array.isArray(spec.configPatches) ? spec.configPatches : [];
    const targets: Target[] = [];
    patches.forEach((p, i) => {
      if (!isObject(p) || !isObject(p.patch) || p.patch.value === undefined) return;
      const typeName = typeof p.applyTo === 'string' ? ENVOY_FILTER_TARGETS[p.applyTo] : undefined;
      const type = typeName ? resolveEnvoyType(typeName) : null;
      const path = ['spec', 'configPatches', i, 'patch', 'value'];
      if (!type) {
        targets.push({
          label: `configPatches[${i}]`,
          path: ['spec', 'configPatches', i, 'applyTo'],
          check: () => [{ path: [], message: `applyTo ${String(p.applyTo)} is not a patch target meshaccel knows` }],
        });
        return;
      }
      const merge = p.patch.operation === 'MERGE';
      targets.push(
        typedTarget(
          type,
          p.patch.value,
          path,
          `configPatches[${i}] ${String(p.applyTo)}${nameOf(p.patch.value)}${merge ? ' (MERGE: shape only)' : ''}`,
          !merge,
        ),
      );
    });
    return targets;
  }
  const bootstrap = resolveEnvoyType('envoy.config.bootstrap.v3.Bootstrap') as protobuf.Type;
  return [typedTarget(bootstrap, doc, [], 'Bootstrap')];
}

export function checkText(file: string, text: string): FileCheckResult {
  const lineCounter = new YAML.LineCounter();
  // merge: Envoy's YAML loader honours `<<` merge keys, which bootstraps use with anchors.
  const docs = YAML.parseAllDocuments(text, { lineCounter, prettyErrors: false, merge: true });
  const result: FileCheckResult = { file, checked: [], violations: [] };
  const docList = Array.isArray(docs) ? docs : [docs];
  for (const doc of docList) {
    if (doc.errors.length > 0) {
      for (const e of doc.errors) {
        const pos = lineCounter.linePos(e.pos[0]);
        result.violations.push({ file, line: pos.line, column: pos.col, path: '(syntax)', message: e.message.split('\n')[0] });
      }
      continue;
    }
    const json: unknown = doc.toJS({ maxAliasCount: 1000 });
    if (json === null || json === undefined) continue;
    const positions = new DocumentPositions(doc, lineCounter);
    for (const target of findTargets(json)) {
      result.checked.push(target.label);
      for (const v of target.check()) {
        const full = [...target.path, ...v.path];
        const pos = positions.locate(full, { keys: true });
        result.violations.push({ file, line: pos.line, column: pos.column, path: formatViolationPath(full), message: v.message });
      }
    }
  }
  // Report in file order, as a compiler would.
  result.violations.sort((a, b) => a.line - b.line || a.column - b.column);
  return result;
}

/** Throws InputFileError for anything but a regular file within the size cap. */
export function checkFile(file: string): FileCheckResult {
  return checkText(file, readInputFile(file));
}
