/**
 * Leaf conversions of Envoy's proto3 JSON/YAML mapping into the plain objects protobufjs'
 * `fromObject` accepts (proto field names, enums as numbers, Duration as {seconds, nanos}).
 * Each function either returns the converted value or an error text; the schema walker turns
 * errors into violations with a field path, so nothing here throws on bad input.
 */

export type Converted<T> = { ok: true; value: T } | { ok: false; error: string };

const ok = <T>(value: T): Converted<T> => ({ ok: true, value });
const fail = <T>(error: string): Converted<T> => ({ ok: false, error });

export function describeJson(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'object') return 'an object';
  if (typeof value === 'string') return `string ${JSON.stringify(value.length > 40 ? value.slice(0, 40) + '…' : value)}`;
  return `${typeof value} ${String(value)}`;
}

const INT_RANGES: Record<string, [number, number]> = {
  int32: [-2147483648, 2147483647],
  sint32: [-2147483648, 2147483647],
  sfixed32: [-2147483648, 2147483647],
  uint32: [0, 4294967295],
  fixed32: [0, 4294967295],
};
const INT64 = new Set(['int64', 'sint64', 'sfixed64']);
const UINT64 = new Set(['uint64', 'fixed64']);

export const SCALAR_DEFAULTS: Record<string, unknown> = {
  double: 0,
  float: 0,
  int32: 0,
  sint32: 0,
  sfixed32: 0,
  uint32: 0,
  fixed32: 0,
  int64: 0,
  sint64: 0,
  sfixed64: 0,
  uint64: 0,
  fixed64: 0,
  bool: false,
  string: '',
  bytes: Buffer.alloc(0),
};

export function isScalarType(type: string): boolean {
  return type in SCALAR_DEFAULTS;
}

/**
 * A scalar field's JSON value. 64-bit integers stay strings when they exceed 2^53 so that
 * fromObject keeps every digit; the numeric rules compare with Number, which is exact below it.
 */
export function convertScalar(type: string, json: unknown): Converted<unknown> {
  switch (type) {
    case 'string':
      return typeof json === 'string' ? ok(json) : fail(`expected a string, got ${describeJson(json)}`);
    case 'bool':
      return typeof json === 'boolean' ? ok(json) : fail(`expected true or false, got ${describeJson(json)}`);
    case 'bytes':
      if (typeof json !== 'string' || !/^[A-Za-z0-9+/_-]*={0,2}$/.test(json)) return fail(`expected base64 bytes, got ${describeJson(json)}`);
      return ok(Buffer.from(json, json.includes('-') || json.includes('_') ? 'base64url' : 'base64'));
    case 'double':
    case 'float': {
      if (typeof json === 'number') return ok(json);
      if (json === 'NaN') return ok(NaN);
      if (json === 'Infinity') return ok(Infinity);
      if (json === '-Infinity') return ok(-Infinity);
      if (typeof json === 'string' && json.trim() !== '' && Number.isFinite(Number(json))) return ok(Number(json));
      return fail(`expected a number, got ${describeJson(json)}`);
    }
    default: {
      const range = INT_RANGES[type];
      const is64 = INT64.has(type) || UINT64.has(type);
      if (!range && !is64) return fail(`unsupported scalar type ${type}`);
      let n: number;
      let text: string | undefined;
      if (typeof json === 'number') n = json;
      else if (typeof json === 'string' && /^-?\d+$/.test(json)) {
        n = Number(json);
        text = json;
      } else return fail(`expected an integer (${type}), got ${describeJson(json)}`);
      if (!Number.isInteger(n)) return fail(`expected an integer (${type}), got ${describeJson(json)}`);
      if (range && (n < range[0] || n > range[1])) return fail(`${n} is out of range for ${type}`);
      if (UINT64.has(type) && n < 0) return fail(`${n} is out of range for ${type}`);
      if (is64 && text !== undefined && !Number.isSafeInteger(n)) {
        const big = BigInt(text);
        const [lo, hi] = UINT64.has(type) ? [0n, (1n << 64n) - 1n] : [-(1n << 63n), (1n << 63n) - 1n];
        if (big < lo || big > hi) return fail(`${text} is out of range for ${type}`);
        return ok(text);
      }
      return ok(n);
    }
  }
}

export interface DurationValue {
  seconds: number;
  nanos: number;
}

const DURATION_RE = /^(-)?(\d+)(?:\.(\d{1,9}))?s$/;
const MAX_DURATION_SECONDS = 315576000000;

/** "5s", "0.25s", "-1.5s" (proto3 JSON). */
export function convertDuration(json: unknown): Converted<DurationValue> {
  if (typeof json !== 'string') return fail(`expected a duration string such as "5s" or "0.25s", got ${describeJson(json)}`);
  const m = DURATION_RE.exec(json);
  if (!m) return fail(`"${json}" is not a duration (expected e.g. "5s" or "0.25s")`);
  const sign = m[1] ? -1 : 1;
  const seconds = Number(m[2]);
  if (seconds > MAX_DURATION_SECONDS) return fail(`duration "${json}" is out of range`);
  const nanos = m[3] ? Number(m[3].padEnd(9, '0')) : 0;
  return ok({ seconds: sign * seconds || 0, nanos: sign * nanos || 0 });
}

const TIMESTAMP_RE = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/;

/** RFC 3339 timestamps, as proto3 JSON requires. */
export function convertTimestamp(json: unknown): Converted<DurationValue> {
  if (typeof json !== 'string') return fail(`expected an RFC 3339 timestamp string, got ${describeJson(json)}`);
  const m = TIMESTAMP_RE.exec(json);
  if (!m) return fail(`"${json}" is not an RFC 3339 timestamp`);
  const ms = Date.parse(`${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${m[8]}`);
  if (Number.isNaN(ms)) return fail(`"${json}" is not an RFC 3339 timestamp`);
  return ok({ seconds: Math.floor(ms / 1000), nanos: m[7] ? Number(m[7].padEnd(9, '0')) : 0 });
}

/**
 * Field names of google.protobuf.Value as the loaded root spells them: protobufjs' built-in
 * copy of struct.proto is camelCase (stringValue) even under keepCase, a .proto file loaded
 * from disk would be snake_case; encoding is by field number either way.
 */
export interface ValueFieldNames {
  null_value: string;
  number_value: string;
  string_value: string;
  bool_value: string;
  struct_value: string;
  list_value: string;
}

/** google.protobuf.Value from any JSON value. */
export function convertValue(json: unknown, names: ValueFieldNames): Converted<Record<string, unknown>> {
  if (json === null) return ok({ [names.null_value]: 0 });
  switch (typeof json) {
    case 'number':
      return ok({ [names.number_value]: json });
    case 'string':
      return ok({ [names.string_value]: json });
    case 'boolean':
      return ok({ [names.bool_value]: json });
    case 'object': {
      if (Array.isArray(json)) {
        const list = convertListValue(json, names);
        return list.ok ? ok({ [names.list_value]: list.value }) : list;
      }
      const struct = convertStruct(json, names);
      return struct.ok ? ok({ [names.struct_value]: struct.value }) : struct;
    }
    default:
      return fail(`${describeJson(json)} is not a JSON value`);
  }
}

export function convertStruct(json: unknown, names: ValueFieldNames): Converted<Record<string, unknown>> {
  if (json === null || typeof json !== 'object' || Array.isArray(json)) return fail(`expected an object (Struct), got ${describeJson(json)}`);
  const fields: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(json as Record<string, unknown>)) {
    const c = convertValue(v, names);
    if (!c.ok) return c;
    fields[k] = c.value;
  }
  return ok({ fields });
}

export function convertListValue(json: unknown, names: ValueFieldNames): Converted<Record<string, unknown>> {
  if (!Array.isArray(json)) return fail(`expected a list (ListValue), got ${describeJson(json)}`);
  const values: unknown[] = [];
  for (const v of json) {
    const c = convertValue(v, names);
    if (!c.ok) return c;
    values.push(c.value);
  }
  return ok({ values });
}

/** FieldMask: "a.b,cD" → paths in snake_case. */
export function convertFieldMask(json: unknown): Converted<Record<string, unknown>> {
  if (typeof json !== 'string') return fail(`expected a field mask string, got ${describeJson(json)}`);
  const paths = json === '' ? [] : json.split(',').map((p) => p.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`));
  return ok({ paths });
}

/** Well-known types whose JSON form is not an object of their fields. */
export const WRAPPER_TYPES: Record<string, string> = {
  'google.protobuf.DoubleValue': 'double',
  'google.protobuf.FloatValue': 'float',
  'google.protobuf.Int64Value': 'int64',
  'google.protobuf.UInt64Value': 'uint64',
  'google.protobuf.Int32Value': 'int32',
  'google.protobuf.UInt32Value': 'uint32',
  'google.protobuf.BoolValue': 'bool',
  'google.protobuf.StringValue': 'string',
  'google.protobuf.BytesValue': 'bytes',
};

/** Types whose JSON inside an Any sits under "value" rather than beside "@type". */
export function hasSpecialJson(fullName: string): boolean {
  return (
    fullName in WRAPPER_TYPES ||
    fullName === 'google.protobuf.Duration' ||
    fullName === 'google.protobuf.Timestamp' ||
    fullName === 'google.protobuf.Struct' ||
    fullName === 'google.protobuf.Value' ||
    fullName === 'google.protobuf.ListValue' ||
    fullName === 'google.protobuf.FieldMask'
  );
}

/** lowerCamelCase JSON name of a proto field name, as protoc derives it. */
export function jsonNameOf(protoName: string): string {
  return protoName.replace(/_([a-z0-9])/g, (_m, c: string) => c.toUpperCase());
}
