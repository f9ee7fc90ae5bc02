import * as protobuf from 'protobufjs';
import { formatPath, type PathSegment } from '../json/path';
import { isObject } from '../json/object';
import { resolveEnvoyType } from './protos';
import {
  Converted,
  SCALAR_DEFAULTS,
  WRAPPER_TYPES,
  convertDuration,
  convertFieldMask,
  convertListValue,
  convertScalar,
  convertStruct,
  convertTimestamp,
  convertValue,
  describeJson,
  hasSpecialJson,
  isScalarType,
  jsonNameOf,
  type ValueFieldNames,
} from './json-mapping';
import { CompiledRules, RuleObject, ValueShape, compileRules, mergeRuleObjects } from './pgv-rules';
import { FieldBytes, MessageBytes, NestedMessage, encodeWhole, isSharedEncoding, keepFragment, keptFragment, writeMessage } from './encoding/fragments';

/**
 * The schema checker: walks Envoy JSON/YAML against the protobufjs reflection of Envoy's own
 * protos, collecting every violation (unknown fields, wrong JSON types, `@type`s that do not
 * resolve, PGV `validate.rules`, required oneofs) with its field path, and at the same time
 * builds the proto-shaped object protobufjs encodes. One pass does both, so the serve path
 * pays one walk per resource; the per-type field tables and compiled rules are cached.
 */

export interface Violation {
  /** JSON keys as written (camelCase or snake_case) and list indexes. */
  path: PathSegment[];
  message: string;
}

export interface CheckResult {
  violations: Violation[];
  /** Proto-shaped object for `Type.fromObject`; meaningful only when violations is empty. */
  message: Record<string, unknown>;
}

/** A violation's path as messages print it; the empty path is `(root)`. */
export function formatViolationPath(path: readonly PathSegment[]): string {
  return formatPath(path, '(root)');
}

interface FieldInfo {
  name: string;
  field: protobuf.Field;
  repeated: boolean;
  map: boolean;
  keyType?: string;
  /** Scalar type name, 'enum', or 'message'. */
  kind: string;
  enumType?: protobuf.Enum;
  messageType?: protobuf.Type;
  /** Member of a real oneof (not a proto3 `optional`'s synthetic one). */
  oneof?: string;
  /** proto3 `optional` or oneof member: PGV checks it only when set. */
  explicitPresence: boolean;
  /** A google.protobuf wrapper (UInt32Value...): scalar rules apply to its `value`. */
  wrapper: boolean;
  rules?: CompiledRules;
}

interface TypeTable {
  fullName: string;
  fields: FieldInfo[];
  byKey: Map<string, FieldInfo>;
  requiredOneofs: Array<{ name: string; members: string[] }>;
  /** Fields that carry PGV rules, so the per-message pass skips the rest. */
  ruled: FieldInfo[];
  /** `(validate.disabled)` / `(validate.ignored)`: no PGV rules apply in this message. */
  pgvDisabled: boolean;
}

const tables = new WeakMap<protobuf.Type, TypeTable>();

// protobufjs computes fullName by walking parents on every access; the walker asks often.
const fullNames = new WeakMap<protobuf.ReflectionObject, string>();

function fullNameOf(t: protobuf.ReflectionObject): string {
  let name = fullNames.get(t);
  if (name === undefined) {
    name = t.fullName.replace(/^\./, '');
    fullNames.set(t, name);
  }
  return name;
}

function ruleParts(obj: protobuf.ReflectionObject): RuleObject[] {
  const parsed = (obj as unknown as { parsedOptions?: Array<Record<string, unknown>> }).parsedOptions;
  const parts: RuleObject[] = [];
  if (!parsed) return parts;
  for (const entry of parsed) {
    const r = entry['(validate.rules)'];
    if (r && typeof r === 'object') parts.push(r as RuleObject);
  }
  return parts;
}

function hasOption(obj: protobuf.ReflectionObject, name: string): boolean {
  return obj.options?.[name] === true;
}

function tableOf(type: protobuf.Type): TypeTable {
  const cached = tables.get(type);
  if (cached) return cached;
  const fields: FieldInfo[] = [];
  const byKey = new Map<string, FieldInfo>();
  for (const field of type.fieldsArray) {
    field.resolve();
    const isMap = field instanceof protobuf.MapField;
    const info: FieldInfo = {
      name: field.name,
      field,
      repeated: field.repeated,
      map: isMap,
      keyType: isMap ? (field as protobuf.MapField).keyType : undefined,
      kind: 'message',
      explicitPresence: false,
      wrapper: false,
    };
    if (isScalarType(field.type)) info.kind = field.type;
    else if (field.resolvedType instanceof protobuf.Enum) {
      info.kind = 'enum';
      info.enumType = field.resolvedType;
    } else if (field.resolvedType instanceof protobuf.Type) {
      info.messageType = field.resolvedType;
      info.wrapper = fullNameOf(field.resolvedType) in WRAPPER_TYPES;
    }
    const oneof = field.partOf;
    if (oneof) {
      const synthetic = oneof.oneof.length === 1 && oneof.name.startsWith('_');
      if (!synthetic) info.oneof = oneof.name;
      info.explicitPresence = true;
    }
    if (field.options?.proto3_optional === true) info.explicitPresence = true;
    const parts = ruleParts(field);
    if (parts.length > 0) {
      const shape: ValueShape =
        info.kind === 'message' ? { kind: info.messageType ? fullNameOf(info.messageType) : 'message' } : { kind: info.kind, enumType: info.enumType };
      info.rules = compileRules(mergeRuleObjects(parts), shape, info.keyType ? { kind: info.keyType } : undefined);
    }
    fields.push(info);
    byKey.set(field.name, info);
    const jsonName = (field as unknown as { options?: Record<string, unknown> }).options?.json_name;
    byKey.set(typeof jsonName === 'string' ? jsonName : jsonNameOf(field.name), info);
  }
  const requiredOneofs = type.oneofsArray.filter((o) => hasOption(o, '(validate.required)')).map((o) => ({ name: o.name, members: o.oneof.slice() }));
  const table: TypeTable = {
    fullName: fullNameOf(type),
    fields,
    byKey,
    requiredOneofs,
    ruled: fields.filter((f) => f.rules !== undefined),
    pgvDisabled: hasOption(type, '(validate.disabled)') || hasOption(type, '(validate.ignored)'),
  };
  tables.set(type, table);
  return table;
}

const valueNamesCache = new WeakMap<protobuf.Type, ValueFieldNames>();

/** google.protobuf.Value's field names in this root, keyed by their proto (snake) names. */
function valueFieldNames(valueType: protobuf.Type): ValueFieldNames {
  let names = valueNamesCache.get(valueType);
  if (!names) {
    const byProto: Record<string, string> = {};
    for (const f of valueType.fieldsArray) byProto[f.name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`)] = f.name;
    names = byProto as unknown as ValueFieldNames;
    valueNamesCache.set(valueType, names);
  }
  return names;
}

function valueNamesFor(type: protobuf.Type): ValueFieldNames {
  const valueType = type.lookupType('.google.protobuf.Value');
  return valueFieldNames(valueType);
}

export interface CheckOptions {
  /** Encode Any payloads to bytes (needed to serve; the CLI checker skips it). Default true. */
  encodeAny?: boolean;
  /**
   * Keep the check and encoding of shared parts (`shareEncoding`) and reuse them (see
   * fragments.ts): the converted message then holds their bytes (and Any values the messages
   * they hold), which only `writeMessage` reads. Needs encodeAny. Default false.
   */
  keepShared?: boolean;
}

class Walker {
  readonly violations: Violation[] = [];
  constructor(
    private readonly encodeAny: boolean,
    private keepShared: boolean,
  ) {}

  /** Walks `fn` with nothing kept: under rules that read converted items, which kept bytes would hide. */
  private unkept<T>(fn: () => T): T {
    const keep = this.keepShared;
    this.keepShared = false;
    try {
      return fn();
    } finally {
      this.keepShared = keep;
    }
  }

  private report(path: PathSegment[], message: string): void {
    this.violations.push({ path: path.slice(), message });
  }

  /** A message-typed value (top level, field, list item or map value). */
  message(type: protobuf.Type, json: unknown, path: PathSegment[], pgv: boolean): Converted<unknown> | undefined {
    const name = fullNameOf(type);
    switch (name) {
      case 'google.protobuf.Any':
        return this.any(json, path, pgv);
      case 'google.protobuf.Duration':
        return convertDuration(json);
      case 'google.protobuf.Timestamp':
        return convertTimestamp(json);
      case 'google.protobuf.Struct':
        return convertStruct(json, valueNamesFor(type));
      case 'google.protobuf.Value':
        return convertValue(json, valueNamesFor(type));
      case 'google.protobuf.ListValue':
        return convertListValue(json, valueNamesFor(type));
      case 'google.protobuf.FieldMask':
        return convertFieldMask(json);
    }
    const wrapped = WRAPPER_TYPES[name];
    if (wrapped) {
      const c = convertScalar(wrapped, json);
      return c.ok ? { ok: true, value: { value: c.value } } : c;
    }
    if (!isObject(json)) return { ok: false, error: `expected an object (${name}), got ${describeJson(json)}` };
    if (this.keepShared && isSharedEncoding(json)) return { ok: true, value: this.sharedMessage(type, json, path, pgv) };
    return { ok: true, value: this.fields(type, json, path, pgv) };
  }

  /** A shared message: its bytes, checked and encoded once per type and PGV (see fragments.ts); walked in place while it has violations. */
  private sharedMessage(type: protobuf.Type, json: Record<string, unknown>, path: PathSegment[], pgv: boolean): unknown {
    const key = `${fullNameOf(type)}|${pgv}`;
    const kept = keptFragment(json, key);
    if (kept instanceof MessageBytes) return kept;
    const before = this.violations.length;
    const converted = this.fields(type, json, path, pgv);
    if (this.violations.length > before) return converted;
    return keepFragment(json, key, new MessageBytes(writeMessage(type, converted)));
  }

  private any(json: unknown, path: PathSegment[], pgv: boolean): Converted<unknown> | undefined {
    if (!isObject(json)) return { ok: false, error: `expected an object with "@type", got ${describeJson(json)}` };
    const url = json['@type'];
    if (typeof url !== 'string' || url === '') {
      this.report(path, 'Any needs a "@type"');
      return undefined;
    }
    // protobuf's JSON parser wants a type URL (prefix/full.Name), not a bare type name.
    const typeName = url.includes('/') ? url.slice(url.lastIndexOf('/') + 1) : '';
    const inner = typeName ? resolveEnvoyType(typeName) : null;
    if (!inner) {
      this.report([...path, '@type'], `type ${JSON.stringify(url)} does not resolve to a message in Envoy's API`);
      return undefined;
    }
    const before = this.violations.length;
    let innerJson: unknown;
    if (hasSpecialJson(fullNameOf(inner))) {
      innerJson = json.value;
      path.push('value');
    } else {
      const rest: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(json)) if (k !== '@type') rest[k] = v;
      innerJson = rest;
    }
    const converted = this.message(inner, innerJson, path, pgv);
    if (hasSpecialJson(fullNameOf(inner))) path.pop();
    if (!converted) return undefined;
    if (!converted.ok) return converted;
    if (!this.encodeAny || this.violations.length > before) return { ok: true, value: { type_url: url, value: Buffer.alloc(0) } };
    const value = converted.value as Record<string, unknown> | MessageBytes;
    // Serving: the inner message is written in place by `writeMessage`, around its kept parts.
    if (this.keepShared) return { ok: true, value: { type_url: url, value: new NestedMessage(inner, value) } };
    return { ok: true, value: { type_url: url, value: encodeWhole(inner, value as Record<string, unknown>) } };
  }

  private fields(type: protobuf.Type, json: Record<string, unknown>, path: PathSegment[], pgvIn: boolean): Record<string, unknown> {
    const table = tableOf(type);
    const pgv = pgvIn && !table.pgvDisabled;
    const out: Record<string, unknown> = {};
    // Plain null-prototype objects: cheaper than Maps for the handful of keys a message has.
    const keyOf: Record<string, string> = Object.create(null) as Record<string, string>;
    const oneofSet: Record<string, string> = Object.create(null) as Record<string, string>;
    for (const key in json) {
      const value = json[key];
      const info = table.byKey.get(key);
      if (!info) {
        this.report([...path, key], `unknown field "${key}" in ${table.fullName}`);
        continue;
      }
      if (keyOf[info.name] !== undefined) {
        this.report([...path, key], `field ${info.name} given twice (as "${keyOf[info.name]}" and "${key}")`);
        continue;
      }
      // proto3 JSON: null means "not set", except for google.protobuf.Value.
      if (value === undefined) continue;
      if (value === null && !(info.messageType && fullNameOf(info.messageType) === 'google.protobuf.Value' && !info.repeated && !info.map)) continue;
      keyOf[info.name] = key;
      if (info.oneof) {
        const prev = oneofSet[info.oneof];
        if (prev !== undefined) {
          this.report([...path, key], `oneof ${info.oneof}: "${key}" and "${prev}" are both set; only one may be`);
          continue;
        }
        oneofSet[info.oneof] = key;
      }
      path.push(key);
      const v = this.fieldValue(info, value, path, pgv);
      path.pop();
      if (v !== undefined) out[info.name] = v;
    }
    if (pgv) {
      for (const o of table.requiredOneofs) {
        if (oneofSet[o.name] === undefined) this.report(path, `exactly one of ${o.members.join(', ')} is required (oneof ${o.name})`);
      }
      for (const info of table.ruled) {
        const key = keyOf[info.name] ?? info.name;
        path.push(key);
        this.applyRules(info, out[info.name], path);
        path.pop();
      }
    }
    return out;
  }

  private fieldValue(info: FieldInfo, json: unknown, path: PathSegment[], pgv: boolean): unknown {
    if (info.map) {
      if (!isObject(json)) return this.wrongType(path, `expected an object (map), got ${describeJson(json)}`);
      if (this.keepShared && info.rules?.map?.values !== undefined) return this.unkept(() => this.fieldValue(info, json, path, pgv));
      const out: Record<string, unknown> = {};
      for (const [k, v] of Object.entries(json)) {
        if (info.keyType && info.keyType !== 'string') {
          const key = info.keyType === 'bool' ? (k === 'true' || k === 'false' ? k : undefined) : /^-?\d+$/.test(k) ? k : undefined;
          if (key === undefined) this.report([...path, k], `map key "${k}" is not a ${info.keyType}`);
        }
        path.push(k);
        const c = this.single(info, v, path, pgv);
        path.pop();
        if (c !== undefined) out[k] = c;
      }
      return out;
    }
    if (info.repeated) {
      if (!Array.isArray(json)) return this.wrongType(path, `expected a list, got ${describeJson(json)}`);
      // Rules that read the items (not only their number) need them converted, not as bytes.
      const keep = info.rules?.repeated?.items === undefined && info.rules?.repeated?.unique !== true;
      if (keep && this.keepShared && info.kind === 'message' && isSharedEncoding(json)) return this.sharedList(info, json, path, pgv);
      if (!keep && this.keepShared) return this.unkept(() => this.fieldValue(info, json, path, pgv));
      const out: unknown[] = [];
      for (let i = 0; i < json.length; i++) {
        path.push(i);
        const c = json[i] === null ? this.wrongType(path, 'list items may not be null') : this.single(info, json[i], path, pgv);
        path.pop();
        out.push(c ?? SCALAR_DEFAULTS[info.kind] ?? {});
      }
      return out;
    }
    return this.single(info, json, path, pgv);
  }

  /**
   * A shared list of messages: the field's bytes (every item with its tag), checked and encoded
   * once per field and PGV (see fragments.ts); walked in place while it has violations.
   */
  private sharedList(info: FieldInfo, json: readonly unknown[], path: PathSegment[], pgv: boolean): unknown {
    const parent = info.field.parent as protobuf.Type;
    const key = `${fullNameOf(parent)}.${info.name}|${pgv}`;
    const kept = keptFragment(json, key);
    if (kept instanceof FieldBytes) return kept;
    const before = this.violations.length;
    const converted: unknown[] = [];
    for (let i = 0; i < json.length; i++) {
      path.push(i);
      const c = json[i] === null ? this.wrongType(path, 'list items may not be null') : this.single(info, json[i], path, pgv);
      path.pop();
      converted.push(c ?? {});
    }
    if (this.violations.length > before) return converted;
    return keepFragment(json, key, new FieldBytes(writeMessage(parent, { [info.name]: converted }), converted.length));
  }

  private single(info: FieldInfo, json: unknown, path: PathSegment[], pgv: boolean): unknown {
    if (info.kind === 'enum') return this.enumValue(info.enumType as protobuf.Enum, json, path);
    if (info.kind !== 'message') {
      const c = convertScalar(info.kind, json);
      return c.ok ? c.value : this.wrongType(path, c.error);
    }
    if (!info.messageType) return this.wrongType(path, `unresolved message type ${info.field.type}`);
    const skip = info.rules?.skip === true;
    const c = this.message(info.messageType, json, path, pgv && !skip);
    if (!c) return undefined;
    return c.ok ? c.value : this.wrongType(path, c.error);
  }

  private enumValue(enumType: protobuf.Enum, json: unknown, path: PathSegment[]): unknown {
    if (typeof json === 'string') {
      const v = enumType.values[json];
      if (v === undefined)
        return this.wrongType(path, `"${json}" is not a value of enum ${fullNameOf(enumType)} (one of ${Object.keys(enumType.values).join(', ')})`);
      return v;
    }
    if (typeof json === 'number' && Number.isInteger(json)) return json;
    if (json === null && fullNameOf(enumType) === 'google.protobuf.NullValue') return 0;
    return this.wrongType(path, `expected an enum name of ${fullNameOf(enumType)}, got ${describeJson(json)}`);
  }

  private wrongType(path: PathSegment[], message: string): undefined {
    this.report(path, message);
    return undefined;
  }

  /** PGV rules of one field, on its converted value (or the default when unset). */
  private applyRules(info: FieldInfo, value: unknown, path: PathSegment[]): void {
    const rules = info.rules as CompiledRules;
    if (info.map) {
      const m = rules.map;
      const entries = isObject(value) ? Object.entries(value) : [];
      if (m && !(m.ignoreEmpty && entries.length === 0)) {
        if (m.min !== undefined && entries.length < m.min) this.report(path, `must have at least ${m.min} entries (min_pairs), has ${entries.length}`);
        if (m.max !== undefined && entries.length > m.max) this.report(path, `must have at most ${m.max} entries (max_pairs), has ${entries.length}`);
        for (const [k, v] of entries) {
          if (m.keys?.check) for (const e of m.keys.check(k)) this.report([...path, k], `map key: ${e}`);
          if (m.values) this.applySingle(m.values, v, [...path, k], info.wrapper);
        }
      }
      return;
    }
    if (info.repeated) {
      const r = rules.repeated;
      const items = Array.isArray(value) ? value : [];
      // A kept list (only where no rule reads its items) counts as its number of items.
      const count = value instanceof FieldBytes ? value.count : items.length;
      if (r && !(r.ignoreEmpty && count === 0)) {
        if (r.min !== undefined && count < r.min) this.report(path, `must have at least ${r.min} item${r.min === 1 ? '' : 's'} (min_items), has ${count}`);
        if (r.max !== undefined && count > r.max) this.report(path, `must have at most ${r.max} items (max_items), has ${count}`);
        if (r.unique) {
          const seen = new Set<string>();
          items.forEach((it, i) => {
            const k = JSON.stringify(it);
            if (seen.has(k)) this.report([...path, i], 'repeated value must be unique (unique)');
            seen.add(k);
          });
        }
        if (r.items) items.forEach((it, i) => this.applySingle(r.items as CompiledRules, it, [...path, i], info.wrapper));
      }
      return;
    }
    const isSet = value !== undefined;
    if (info.explicitPresence && !isSet) return;
    if (info.kind === 'message') {
      if (!isSet) {
        if (rules.required) this.report(path, `${info.name} is required (${fullNameOf(info.messageType as protobuf.Type)})`);
        return;
      }
      this.applySingle(rules, value, path, info.wrapper);
      return;
    }
    this.applySingle(rules, isSet ? value : SCALAR_DEFAULTS[info.kind], path, false);
  }

  private applySingle(rules: CompiledRules, value: unknown, path: PathSegment[], wrapper: boolean): void {
    if (!rules.check) return;
    // Wrapper types (UInt32Value...) carry their scalar rules on the inner value.
    const inner = wrapper && isObject(value) ? value.value : value;
    for (const e of rules.check(inner)) this.report(path, e);
  }
}

/** Checks Envoy JSON for a message type; see CheckResult. */
export function checkEnvoyJson(type: protobuf.Type, json: unknown, options: CheckOptions = {}): CheckResult {
  const walker = new Walker(options.encodeAny !== false, options.keepShared === true && options.encodeAny !== false);
  const c = walker.message(type, json, [], true);
  let message: Record<string, unknown> = {};
  if (c && !c.ok) walker.violations.unshift({ path: [], message: c.error });
  else if (c && c.ok && isObject(c.value)) message = c.value;
  return { violations: walker.violations, message };
}

/** Checks a single resource given as `{"@type": ..., ...}` (an Any's JSON form). */
export function checkEnvoyAnyJson(json: unknown, options: CheckOptions = {}): CheckResult & { type?: protobuf.Type } {
  if (!isObject(json) || typeof json['@type'] !== 'string') return { violations: [{ path: [], message: 'a resource needs a "@type"' }], message: {} };
  const url = json['@type'];
  const type = resolveEnvoyType(url.slice(url.lastIndexOf('/') + 1));
  if (!type) return { violations: [{ path: ['@type'], message: `type ${JSON.stringify(url)} does not resolve to a message in Envoy's API` }], message: {} };
  const rest: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json)) if (k !== '@type') rest[k] = v;
  return { ...checkEnvoyJson(type, hasSpecialJson(fullNameOf(type)) ? json.value : rest, options), type };
}
