import * as protobuf from 'protobufjs';
import { deepFreeze } from '../../json/object-id';

/**
 * Checked fragments: lists of messages that many resources share (a selector's RBAC principals)
 * and the messages in them (an address's matcher) are schema-checked and encoded once per
 * field (lists) or message type (items) they are put in, and the resources that contain them
 * are encoded around their bytes.
 *
 * Why that is the same as checking and encoding each resource whole:
 * - the checker is compositional: walking a message or a repeated field's list yields
 *   violations and a converted value that depend only on the type (field), the JSON and
 *   whether PGV rules apply there, never on where it sits (the path only prefixes the
 *   messages). A fragment is frozen throughout (immutable), so a clean result for (type, JSON,
 *   PGV) is the result of walking it again; only clean results are kept, and a part with
 *   violations is walked in place every time, so its messages keep their paths. The rules of
 *   the field that holds a list (min/max items) read only its length and are applied around a
 *   kept list each time; a field with rules that read its items (`unique`, `items`) never keeps
 *   its list, nor its items. The rules of a field that holds a plain (not well-known) message
 *   read only whether it is set.
 * - protobufjs writes a message's fields in field-number order, each independently of the
 *   others, a repeated field item by item and a map entry by entry, and a message-typed value
 *   as its tag, its length and its bytes (protobufjs/src/encoder.js). So a message is the
 *   concatenation of its fields' encodings, and a kept part's bytes can stand for it.
 *   `writeMessage` is that encoder run on the checker's converted values (which are what
 *   `Type.fromObject` would make of them: numbers, strings, Buffers, plain objects) through
 *   protobufjs's own Writer, so every scalar is written by the same code; kept bytes go in by
 *   reference and the resource is allocated once.
 * test/envoy/fragments.test.ts compares both ways over random RBACs and other messages, bytes
 * and violations; `encodeWhole` is the reference (protobufjs's fromObject and encode).
 */

const CANDIDATES = new WeakSet<object>();

/** Marks a frozen list of messages as shared: its check and encoding are kept per field it is put in, its items' per type. */
export function shareEncoding<T extends object>(json: T): T {
  CANDIDATES.add(deepFreeze(json));
  if (Array.isArray(json)) for (const item of json as unknown[]) if (typeof item === 'object' && item !== null) CANDIDATES.add(item);
  return json;
}

export function isSharedEncoding(json: unknown): json is object {
  return typeof json === 'object' && json !== null && CANDIDATES.has(json);
}

/** A repeated field's bytes: every item with its tag and length. */
export class FieldBytes {
  constructor(
    readonly bytes: Uint8Array,
    readonly count: number,
  ) {}
}

/** A message's bytes (without tag or length), standing for its converted value. */
export class MessageBytes {
  constructor(readonly bytes: Uint8Array) {}
}

/** A bytes field (an Any's value) that holds a message: written in place instead of encoded apart and copied. */
export class NestedMessage {
  constructor(
    readonly type: protobuf.Type,
    readonly value: Record<string, unknown> | MessageBytes,
  ) {}
}

const KEPT = new WeakMap<object, Map<string, FieldBytes | MessageBytes>>();

export function keptFragment(json: object, key: string): FieldBytes | MessageBytes | undefined {
  return KEPT.get(json)?.get(key);
}

export function keepFragment<T extends FieldBytes | MessageBytes>(json: object, key: string, fragment: T): T {
  let byKey = KEPT.get(json);
  if (!byKey) KEPT.set(json, (byKey = new Map()));
  byKey.set(key, fragment);
  return fragment;
}

/** protobufjs's own encoding of a converted (proto-shaped) message without kept parts: the reference. */
export function encodeWhole(type: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  return type.encode(type.fromObject(value)).finish();
}

type Write = (w: protobuf.Writer, value: unknown) => void;

/** The Writer's method for each scalar type (enums are int32), as protobufjs's encoder calls them. */
const SCALAR_WRITERS: Record<string, Write> = {
  double: (w, v) => w.double(v as number),
  float: (w, v) => w.float(v as number),
  int32: (w, v) => w.int32(v as number),
  uint32: (w, v) => w.uint32(v as number),
  sint32: (w, v) => w.sint32(v as number),
  fixed32: (w, v) => w.fixed32(v as number),
  sfixed32: (w, v) => w.sfixed32(v as number),
  int64: (w, v) => w.int64(v as number),
  uint64: (w, v) => w.uint64(v as number),
  sint64: (w, v) => w.sint64(v as number),
  fixed64: (w, v) => w.fixed64(v as number),
  sfixed64: (w, v) => w.sfixed64(v as number),
  bool: (w, v) => w.bool(v as boolean),
  string: (w, v) => w.string(v as string),
  bytes: (w, v) => w.bytes(v as Uint8Array),
};

interface FieldPlan {
  name: string;
  id: number;
  map: boolean;
  repeated: boolean;
  packed: boolean;
  delimited: boolean;
  /** Scalar (or enum) value writer and wire type; absent for message values. */
  scalar?: Write;
  wireType?: number;
  message?: protobuf.Type;
  keyWrite?: Write;
  keyWireType?: number;
}

const PLANS = new WeakMap<protobuf.Type, FieldPlan[]>();

function planOf(type: protobuf.Type): FieldPlan[] {
  let plan = PLANS.get(type);
  if (plan) return plan;
  plan = type.fieldsArray
    .slice()
    .sort((a, b) => a.id - b.id)
    .map((field) => {
      field.resolve();
      const scalarType = field.resolvedType instanceof protobuf.Enum ? 'int32' : field.type;
      const wireType = (protobuf.types.basic as Record<string, number | undefined>)[scalarType];
      const map = field instanceof protobuf.MapField;
      const keyType = map ? (field as protobuf.MapField).keyType : undefined;
      const scalar = wireType === undefined ? undefined : SCALAR_WRITERS[scalarType];
      if (wireType !== undefined && !scalar) throw new Error(`no writer for ${scalarType} (${field.fullName})`);
      return {
        name: field.name,
        id: field.id,
        map,
        repeated: field.repeated,
        packed: field.packed && (protobuf.types.packed as Record<string, number | undefined>)[scalarType] !== undefined,
        delimited: (field as unknown as { delimited?: boolean }).delimited === true,
        scalar,
        wireType,
        message: wireType === undefined ? (field.resolvedType as protobuf.Type) : undefined,
        keyWrite: keyType === undefined ? undefined : SCALAR_WRITERS[keyType],
        keyWireType: keyType === undefined ? undefined : (protobuf.types.mapKey as Record<string, number | undefined>)[keyType],
      };
    });
  PLANS.set(type, plan);
  return plan;
}

interface RawWriter {
  _push(fn: (val: Uint8Array, buf: Uint8Array, pos: number) => void, len: number, val: Uint8Array): protobuf.Writer;
}

function copyInto(val: Uint8Array, buf: Uint8Array, pos: number): void {
  buf.set(val, pos);
}

/** Kept bytes, by reference until the one allocation of `finish`. */
function raw(w: protobuf.Writer, bytes: Uint8Array): void {
  if (bytes.length > 0) (w as unknown as RawWriter)._push(copyInto, bytes.length, bytes);
}

function tag(id: number, wireType: number): number {
  return ((id << 3) | wireType) >>> 0;
}

/** A message's fields (its body), or its kept bytes. */
function writeBody(type: protobuf.Type, value: unknown, w: protobuf.Writer): void {
  if (value instanceof MessageBytes) {
    raw(w, value.bytes);
    return;
  }
  const m = value as Record<string, unknown>;
  for (const f of planOf(type)) {
    const v = m[f.name];
    if (v === undefined || v === null) continue;
    if (v instanceof FieldBytes) {
      raw(w, v.bytes);
      continue;
    }
    if (f.map) {
      const entries = v as Record<string, unknown>;
      for (const k of Object.keys(entries)) {
        w.uint32(tag(f.id, 2))
          .fork()
          .uint32(8 | (f.keyWireType as number));
        (f.keyWrite as Write)(w, k);
        if (f.scalar) {
          w.uint32(16 | (f.wireType as number));
          f.scalar(w, entries[k]);
        } else {
          w.uint32(18).fork();
          writeBody(f.message as protobuf.Type, entries[k], w);
          w.ldelim();
        }
        w.ldelim();
      }
    } else if (f.repeated) {
      const items = v as unknown[];
      if (items.length === 0) continue;
      if (f.packed) {
        w.uint32(tag(f.id, 2)).fork();
        for (const item of items) (f.scalar as Write)(w, item);
        w.ldelim();
      } else for (const item of items) writeValue(f, item, w);
    } else writeValue(f, v, w);
  }
}

function writeValue(f: FieldPlan, v: unknown, w: protobuf.Writer): void {
  if (f.scalar) {
    if (v instanceof NestedMessage) {
      w.uint32(tag(f.id, 2)).fork();
      writeBody(v.type, v.value, w);
      w.ldelim();
      return;
    }
    w.uint32(tag(f.id, f.wireType as number));
    f.scalar(w, v);
    return;
  }
  if (f.delimited) {
    w.uint32(tag(f.id, 3));
    writeBody(f.message as protobuf.Type, v, w);
    w.uint32(tag(f.id, 4));
    return;
  }
  w.uint32(tag(f.id, 2)).fork();
  writeBody(f.message as protobuf.Type, v, w);
  w.ldelim();
}

/** protobufjs's encoding of a converted message that may hold kept parts (FieldBytes, MessageBytes, NestedMessage), in one allocation. */
export function writeMessage(type: protobuf.Type, value: Record<string, unknown> | MessageBytes): Uint8Array {
  if (value instanceof MessageBytes) return value.bytes;
  const w = protobuf.Writer.create();
  writeBody(type, value, w);
  return w.finish();
}
