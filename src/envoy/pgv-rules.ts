import { isIP } from 'net';
import type * as protobuf from 'protobufjs';
import { isObject } from '../json/object';

/**
 * protoc-gen-validate's `(validate.rules)` compiled into check functions, once per field.
 * Envoy runs these validators on every resource it accepts; no JavaScript library does, so
 * this is a faithful port of the semantics in validate.proto: numeric ranges (including the
 * reversed "outside" form when the upper bound is below the lower one), string lengths in
 * code points versus bytes, well-known header regexes in strict and loose form, repeated
 * items/map keys/values, and the message/duration/timestamp/any `required` flags.
 */

/** Plain-object form of validate.FieldRules, as protobufjs' parsedOptions holds it. */
export type RuleObject = Record<string, unknown>;

/** Returns messages for each violated constraint of one value. */
export type ValueCheck = (value: unknown) => string[];

export interface CompiledRules {
  /** message.required, or duration/timestamp/any required: the field must be set. */
  required: boolean;
  /** message.skip: do not validate the nested message. */
  skip: boolean;
  /** Constraints on the singular value (scalar, enum, Duration, Any, wrapper's inner value). */
  check?: ValueCheck;
  repeated?: { min?: number; max?: number; unique: boolean; items?: CompiledRules; ignoreEmpty: boolean };
  map?: { min?: number; max?: number; keys?: CompiledRules; values?: CompiledRules; ignoreEmpty: boolean };
}

/** What the value being checked is, beyond its JS representation. */
export interface ValueShape {
  /** Scalar type name, 'enum', or a message full name (e.g. google.protobuf.Duration). */
  kind: string;
  enumType?: protobuf.Enum;
}

function num(v: unknown): number | undefined {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number') return v;
  if (typeof v === 'string' && v.trim() !== '') return Number(v);
  if (isObject(v) && typeof v.low === 'number' && typeof v.high === 'number') return (v.high as number) * 4294967296 + ((v.low as number) >>> 0);
  return undefined;
}

function list(v: unknown): unknown[] | undefined {
  if (v === undefined || v === null) return undefined;
  return Array.isArray(v) ? v : [v];
}

interface Bounds<T> {
  lt?: T;
  lte?: T;
  gt?: T;
  gte?: T;
}

/** PGV range semantics with the reversed-range case (value must lie outside). */
function rangeCheck<T>(v: T, b: Bounds<T>, cmp: (a: T, b: T) => number, show: (x: T) => string): string | undefined {
  const upper = b.lt !== undefined ? b.lt : b.lte;
  const lower = b.gt !== undefined ? b.gt : b.gte;
  const upperOk = b.lt !== undefined ? cmp(v, b.lt) < 0 : b.lte !== undefined ? cmp(v, b.lte) <= 0 : true;
  const lowerOk = b.gt !== undefined ? cmp(v, b.gt) > 0 : b.gte !== undefined ? cmp(v, b.gte) >= 0 : true;
  const describe = (): string => {
    const parts: string[] = [];
    if (b.gt !== undefined) parts.push(`> ${show(b.gt)} (gt)`);
    if (b.gte !== undefined) parts.push(`>= ${show(b.gte)} (gte)`);
    if (b.lt !== undefined) parts.push(`< ${show(b.lt)} (lt)`);
    if (b.lte !== undefined) parts.push(`<= ${show(b.lte)} (lte)`);
    return parts.join(' and ');
  };
  if (upper !== undefined && lower !== undefined && !(cmp(upper, lower) > 0)) {
    if (!(upperOk || lowerOk)) return `value ${show(v)} must be outside the range, i.e. ${describe().replace(' and ', ' or ')}`;
    return undefined;
  }
  if (!(upperOk && lowerOk)) return `value ${show(v)} must be ${describe()}`;
  return undefined;
}

function numericCheck(r: RuleObject): ValueCheck {
  const b: Bounds<number> = { lt: num(r.lt), lte: num(r.lte), gt: num(r.gt), gte: num(r.gte) };
  const hasRange = b.lt !== undefined || b.lte !== undefined || b.gt !== undefined || b.gte !== undefined;
  const c = num(r.const);
  const inList = list(r.in)?.map(num);
  const notIn = list(r.not_in)?.map(num);
  const ignoreEmpty = r.ignore_empty === true;
  return (raw) => {
    const v = num(raw) ?? 0;
    if (ignoreEmpty && v === 0) return [];
    const out: string[] = [];
    if (c !== undefined && v !== c) out.push(`value ${v} must equal ${c} (const)`);
    if (hasRange) {
      const e = rangeCheck(v, b, (x, y) => x - y, String);
      if (e) out.push(e);
    }
    if (inList && !inList.includes(v)) out.push(`value ${v} must be one of [${inList.join(', ')}] (in)`);
    if (notIn && notIn.includes(v)) out.push(`value ${v} must not be one of [${notIn.join(', ')}] (not_in)`);
    return out;
  };
}

// validate.proto's KnownRegex, strict and loose (strict: false) forms.
const HEADER_NAME_STRICT = /^:?[0-9a-zA-Z!#$%&'*+\-.^_|~`]+$/;
const HEADER_VALUE_STRICT = /^[^\u0000-\u0008\u000A-\u001F\u007F]*$/;
const HEADER_LOOSE = /^[^\u0000\u000A\u000D]*$/;
const HOSTNAME = /^(?=.{1,253}$)([a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)(\.[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?)*\.?$/;
const UUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;
const EMAIL = /^[^@\s]+@[^@\s]+$/;

interface Tester {
  test(s: string): boolean;
}

function compilePattern(pattern: string): Tester {
  // PGV patterns are RE2. The ones in Envoy's API are also valid ECMAScript; anything RE2-only
  // ((?i), \z, \pL...) goes to the RE2 port gRPC itself uses.
  try {
    return new RegExp(pattern);
  } catch {
    const { RE2 } = require('re2-wasm') as { RE2: new (p: string, flags: string) => Tester };
    return new RE2(pattern, 'u');
  }
}

function stringCheck(r: RuleObject): ValueCheck {
  const checks: Array<(s: string) => string | undefined> = [];
  const chars = (s: string): number => {
    let n = 0;
    for (const _ of s) n++;
    return n;
  };
  const len = num(r.len);
  const minLen = num(r.min_len);
  const maxLen = num(r.max_len);
  const lenBytes = num(r.len_bytes);
  const minBytes = num(r.min_bytes);
  const maxBytes = num(r.max_bytes);
  if (typeof r.const === 'string') checks.push((s) => (s !== r.const ? `must equal ${JSON.stringify(r.const)} (const)` : undefined));
  if (len !== undefined) checks.push((s) => (chars(s) !== len ? `length ${chars(s)} must be exactly ${len} characters (len)` : undefined));
  if (minLen !== undefined) checks.push((s) => (chars(s) < minLen ? `length ${chars(s)} must be at least ${minLen} characters (min_len)` : undefined));
  if (maxLen !== undefined) checks.push((s) => (chars(s) > maxLen ? `length ${chars(s)} must be at most ${maxLen} characters (max_len)` : undefined));
  if (lenBytes !== undefined) checks.push((s) => (Buffer.byteLength(s) !== lenBytes ? `must be exactly ${lenBytes} bytes (len_bytes)` : undefined));
  if (minBytes !== undefined) checks.push((s) => (Buffer.byteLength(s) < minBytes ? `must be at least ${minBytes} bytes (min_bytes)` : undefined));
  if (maxBytes !== undefined)
    checks.push((s) => (Buffer.byteLength(s) > maxBytes ? `length ${Buffer.byteLength(s)} bytes must be at most ${maxBytes} bytes (max_bytes)` : undefined));
  if (typeof r.pattern === 'string') {
    const re = compilePattern(r.pattern);
    checks.push((s) => (!re.test(s) ? `${JSON.stringify(s)} does not match pattern ${r.pattern} (pattern)` : undefined));
  }
  if (typeof r.prefix === 'string')
    checks.push((s) => (!s.startsWith(r.prefix as string) ? `must start with ${JSON.stringify(r.prefix)} (prefix)` : undefined));
  if (typeof r.suffix === 'string') checks.push((s) => (!s.endsWith(r.suffix as string) ? `must end with ${JSON.stringify(r.suffix)} (suffix)` : undefined));
  if (typeof r.contains === 'string')
    checks.push((s) => (!s.includes(r.contains as string) ? `must contain ${JSON.stringify(r.contains)} (contains)` : undefined));
  if (typeof r.not_contains === 'string')
    checks.push((s) => (s.includes(r.not_contains as string) ? `must not contain ${JSON.stringify(r.not_contains)} (not_contains)` : undefined));
  const inList = list(r.in) as string[] | undefined;
  if (inList) checks.push((s) => (!inList.includes(s) ? `${JSON.stringify(s)} must be one of ${JSON.stringify(inList)} (in)` : undefined));
  const notIn = list(r.not_in) as string[] | undefined;
  if (notIn) checks.push((s) => (notIn.includes(s) ? `${JSON.stringify(s)} must not be one of ${JSON.stringify(notIn)} (not_in)` : undefined));
  if (r.well_known_regex !== undefined) {
    const which =
      r.well_known_regex === 1 || r.well_known_regex === 'HTTP_HEADER_NAME'
        ? 'HTTP_HEADER_NAME'
        : r.well_known_regex === 2 || r.well_known_regex === 'HTTP_HEADER_VALUE'
          ? 'HTTP_HEADER_VALUE'
          : undefined;
    const strict = r.strict !== false;
    if (which) {
      const re = !strict ? HEADER_LOOSE : which === 'HTTP_HEADER_NAME' ? HEADER_NAME_STRICT : HEADER_VALUE_STRICT;
      checks.push((s) =>
        !re.test(s)
          ? `${JSON.stringify(s)} is not a valid ${which === 'HTTP_HEADER_NAME' ? 'HTTP header name' : 'HTTP header value'} (well_known_regex ${which}${strict ? '' : ', strict: false'})`
          : undefined,
      );
    }
  }
  if (r.ip === true) checks.push((s) => (isIP(s) === 0 ? `${JSON.stringify(s)} must be an IP address (ip)` : undefined));
  if (r.ipv4 === true) checks.push((s) => (isIP(s) !== 4 ? `${JSON.stringify(s)} must be an IPv4 address (ipv4)` : undefined));
  if (r.ipv6 === true) checks.push((s) => (isIP(s) !== 6 ? `${JSON.stringify(s)} must be an IPv6 address (ipv6)` : undefined));
  if (r.hostname === true) checks.push((s) => (!HOSTNAME.test(s) ? `${JSON.stringify(s)} must be a hostname (hostname)` : undefined));
  if (r.address === true)
    checks.push((s) => (isIP(s) === 0 && !HOSTNAME.test(s) ? `${JSON.stringify(s)} must be an IP address or hostname (address)` : undefined));
  if (r.uuid === true) checks.push((s) => (!UUID.test(s) ? `${JSON.stringify(s)} must be a UUID (uuid)` : undefined));
  if (r.email === true) checks.push((s) => (!EMAIL.test(s) ? `${JSON.stringify(s)} must be an email address (email)` : undefined));
  if (r.uri === true) checks.push((s) => (!/^[a-zA-Z][a-zA-Z0-9+.-]*:/.test(s) ? `${JSON.stringify(s)} must be an absolute URI (uri)` : undefined));
  const ignoreEmpty = r.ignore_empty === true;
  return (raw) => {
    const s = typeof raw === 'string' ? raw : '';
    if (ignoreEmpty && s === '') return [];
    const out: string[] = [];
    for (const c of checks) {
      const e = c(s);
      if (e) out.push(e);
    }
    return out;
  };
}

function bytesCheck(r: RuleObject): ValueCheck {
  const toBuf = (v: unknown): Buffer =>
    Buffer.isBuffer(v) ? v : v instanceof Uint8Array ? Buffer.from(v) : typeof v === 'string' ? Buffer.from(v, 'base64') : Buffer.alloc(0);
  const len = num(r.len);
  const minLen = num(r.min_len);
  const maxLen = num(r.max_len);
  const pattern = typeof r.pattern === 'string' ? compilePattern(r.pattern) : undefined;
  const ignoreEmpty = r.ignore_empty === true;
  return (raw) => {
    const b = toBuf(raw);
    if (ignoreEmpty && b.length === 0) return [];
    const out: string[] = [];
    if (len !== undefined && b.length !== len) out.push(`must be exactly ${len} bytes (len)`);
    if (minLen !== undefined && b.length < minLen) out.push(`length ${b.length} must be at least ${minLen} bytes (min_len)`);
    if (maxLen !== undefined && b.length > maxLen) out.push(`length ${b.length} must be at most ${maxLen} bytes (max_len)`);
    if (pattern && !pattern.test(b.toString('utf8'))) out.push(`does not match pattern ${r.pattern} (pattern)`);
    if (r.ip === true && b.length !== 4 && b.length !== 16) out.push('must be an IP address in bytes (ip)');
    if (r.ipv4 === true && b.length !== 4) out.push('must be an IPv4 address in bytes (ipv4)');
    if (r.ipv6 === true && b.length !== 16) out.push('must be an IPv6 address in bytes (ipv6)');
    return out;
  };
}

function enumCheck(r: RuleObject, enumType: protobuf.Enum | undefined): ValueCheck {
  const c = num(r.const);
  const inList = list(r.in)?.map(num);
  const notIn = list(r.not_in)?.map(num);
  const defined = r.defined_only === true && enumType ? new Set(Object.values(enumType.values)) : undefined;
  return (raw) => {
    const v = num(raw) ?? 0;
    const out: string[] = [];
    if (defined && !defined.has(v)) out.push(`${v} is not a defined value of enum ${enumType?.fullName.replace(/^\./, '')} (defined_only)`);
    if (c !== undefined && v !== c) out.push(`must equal ${c} (const)`);
    if (inList && !inList.includes(v)) out.push(`${v} must be one of [${inList.join(', ')}] (in)`);
    if (notIn && notIn.includes(v)) out.push(`${v} must not be one of [${notIn.join(', ')}] (not_in)`);
    return out;
  };
}

function nanosOf(v: unknown): bigint {
  if (!isObject(v)) return 0n;
  return BigInt(Math.trunc(num(v.seconds) ?? 0)) * 1_000_000_000n + BigInt(Math.trunc(num(v.nanos) ?? 0));
}

function showNanos(n: bigint): string {
  const neg = n < 0n;
  const a = neg ? -n : n;
  const s = a / 1_000_000_000n;
  const frac = (a % 1_000_000_000n).toString().padStart(9, '0').replace(/0+$/, '');
  return `${neg ? '-' : ''}${s}${frac ? '.' + frac : ''}s`;
}

/** Duration and Timestamp rules; their bounds are messages, hence the nanosecond arithmetic. */
function timeCheck(r: RuleObject, isTimestamp: boolean): ValueCheck {
  const bound = (k: string): bigint | undefined => (r[k] === undefined ? undefined : nanosOf(r[k]));
  const b: Bounds<bigint> = { lt: bound('lt'), lte: bound('lte'), gt: bound('gt'), gte: bound('gte') };
  const c = bound('const');
  const inList = list(r.in)?.map(nanosOf);
  const notIn = list(r.not_in)?.map(nanosOf);
  const within = bound('within');
  const show = isTimestamp ? (n: bigint) => new Date(Number(n / 1_000_000n)).toISOString() : showNanos;
  return (raw) => {
    const v = nanosOf(raw);
    const out: string[] = [];
    if (c !== undefined && v !== c) out.push(`must equal ${show(c)} (const)`);
    const e = rangeCheck(v, b, (x, y) => (x < y ? -1 : x > y ? 1 : 0), show);
    if (e) out.push(e);
    if (inList && !inList.includes(v)) out.push(`${show(v)} must be one of the allowed values (in)`);
    if (notIn && notIn.includes(v)) out.push(`${show(v)} must not be one of [${notIn.map(show).join(', ')}] (not_in)`);
    if (isTimestamp) {
      const now = BigInt(Date.now()) * 1_000_000n;
      if (r.lt_now === true && !(v < now)) out.push('must be in the past (lt_now)');
      if (r.gt_now === true && !(v > now)) out.push('must be in the future (gt_now)');
      if (within !== undefined && (v > now + within || v < now - within)) out.push(`must be within ${showNanos(within)} of now (within)`);
    }
    return out;
  };
}

function anyCheck(r: RuleObject): ValueCheck {
  const inList = list(r.in) as string[] | undefined;
  const notIn = list(r.not_in) as string[] | undefined;
  return (raw) => {
    const url = isObject(raw) && typeof raw.type_url === 'string' ? raw.type_url : '';
    const out: string[] = [];
    if (inList && !inList.includes(url)) out.push(`type ${url} must be one of ${JSON.stringify(inList)} (in)`);
    if (notIn && notIn.includes(url)) out.push(`type ${url} is not allowed here (not_in)`);
    return out;
  };
}

const NUMERIC_RULE_KINDS = ['float', 'double', 'int32', 'int64', 'uint32', 'uint64', 'sint32', 'sint64', 'fixed32', 'fixed64', 'sfixed32', 'sfixed64'];

/**
 * Compiles one FieldRules object. `shape` says what the singular value is; for repeated and
 * map fields it is the element's shape, passed down to `items`/`values`.
 */
export function compileRules(rules: RuleObject, shape: ValueShape, keyShape?: ValueShape): CompiledRules {
  const out: CompiledRules = { required: false, skip: false };
  const message = rules.message;
  if (isObject(message)) {
    out.required = message.required === true;
    out.skip = message.skip === true;
  }
  const checks: ValueCheck[] = [];
  for (const kind of NUMERIC_RULE_KINDS) if (isObject(rules[kind])) checks.push(numericCheck(rules[kind] as RuleObject));
  if (isObject(rules.string)) checks.push(stringCheck(rules.string));
  if (isObject(rules.bytes)) checks.push(bytesCheck(rules.bytes));
  if (isObject(rules.bool) && rules.bool.const !== undefined) {
    const want = rules.bool.const === true;
    checks.push((v) => ((v === true) !== want ? [`must be ${want} (const)`] : []));
  }
  if (isObject(rules.enum)) checks.push(enumCheck(rules.enum, shape.enumType));
  for (const [kind, isTs] of [
    ['duration', false],
    ['timestamp', true],
  ] as const) {
    const r = rules[kind];
    if (isObject(r)) {
      if (r.required === true) out.required = true;
      checks.push(timeCheck(r, isTs));
    }
  }
  if (isObject(rules.any)) {
    if (rules.any.required === true) out.required = true;
    checks.push(anyCheck(rules.any));
  }
  if (checks.length === 1) out.check = checks[0];
  else if (checks.length > 1) out.check = (v) => checks.flatMap((c) => c(v));
  if (isObject(rules.repeated)) {
    const r = rules.repeated;
    out.repeated = {
      min: num(r.min_items),
      max: num(r.max_items),
      unique: r.unique === true,
      items: isObject(r.items) ? compileRules(r.items, shape) : undefined,
      ignoreEmpty: r.ignore_empty === true,
    };
  }
  if (isObject(rules.map)) {
    const r = rules.map;
    out.map = {
      min: num(r.min_pairs),
      max: num(r.max_pairs),
      keys: isObject(r.keys) && keyShape ? compileRules(r.keys, keyShape) : undefined,
      values: isObject(r.values) ? compileRules(r.values, shape) : undefined,
      ignoreEmpty: r.ignore_empty === true,
    };
  }
  return out;
}

/** Deep-merges parsedOptions entries: `[(validate.rules).string.min_len = 1, (validate.rules).string.max_bytes = 9]`. */
export function mergeRuleObjects(parts: RuleObject[]): RuleObject {
  const merged: RuleObject = {};
  const merge = (into: RuleObject, from: RuleObject): void => {
    for (const [k, v] of Object.entries(from)) {
      if (isObject(v) && isObject(into[k])) merge(into[k] as RuleObject, v);
      else into[k] = isObject(v) ? merge2(v) : v;
    }
  };
  const merge2 = (v: RuleObject): RuleObject => {
    const copy: RuleObject = {};
    merge(copy, v);
    return copy;
  };
  for (const p of parts) merge(merged, p);
  return merged;
}
