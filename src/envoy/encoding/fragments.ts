import * as protobuf from 'protobufjs';
import { deepFreeze } from '../../json/object-id';

/**
 * Checked fragments: lists of messages that many resources share (a selector's RBAC principals)
 * are schema-checked and encoded once per field they are put in, and the resources that contain
 * them are encoded around their bytes.
 *
 * Why that is the same as checking and encoding each resource whole:
 * - the checker is compositional: walking a repeated field's list yields violations and a
 *   converted value that depend only on the field, the list's JSON and whether PGV rules apply
 *   there, never on where it sits (the path only prefixes the messages). A fragment
 *   is frozen throughout (immutable), so a clean result for (type, JSON, PGV) is the result of
 *   walking it again; only clean results are kept, and a part with violations is walked in
 *   place every time, so its messages keep their paths. The rules of the field that holds a
 *   list (min/max items) read only its length and are applied around a kept list each time;
 *   a field with rules that read its items (`unique`, `items`) never keeps its list.
 * - protobufjs writes a message's fields in field-number order, each independently of the
 *   others, a repeated field item by item and a map entry by entry, and a message-typed value
 *   as its tag, its length and its bytes (protobufjs/src/encoder.js). So a message is the
 *   concatenation of its fields' encodings, and a kept part's bytes can stand for it.
 * test/envoy/fragments.test.ts compares both ways over random RBACs, bytes and violations.
 */

const CANDIDATES = new WeakSet<object>();

/** Marks a frozen list of messages as shared: its check and encoding are kept per field it is put in. */
export function shareEncoding<T extends object>(json: T): T {
  CANDIDATES.add(deepFreeze(json));
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

const KEPT = new WeakMap<object, Map<string, FieldBytes>>();

export function keptFragment(json: object, key: string): FieldBytes | undefined {
  return KEPT.get(json)?.get(key);
}

export function keepFragment(json: object, key: string, fragment: FieldBytes): FieldBytes {
  let byKey = KEPT.get(json);
  if (!byKey) KEPT.set(json, (byKey = new Map()));
  byKey.set(key, fragment);
  return fragment;
}

/** Converted values (objects, lists, maps) with kept bytes somewhere inside. */
const HOLDS_BYTES = new WeakSet<object>();

export function holdsBytes(value: unknown): boolean {
  return value instanceof FieldBytes || (typeof value === 'object' && value !== null && HOLDS_BYTES.has(value));
}

export function markHoldsBytes(value: object): void {
  HOLDS_BYTES.add(value);
}

const SORTED_FIELDS = new WeakMap<protobuf.Type, protobuf.Field[]>();

function fieldsById(type: protobuf.Type): protobuf.Field[] {
  let fields = SORTED_FIELDS.get(type);
  if (!fields) SORTED_FIELDS.set(type, (fields = type.fieldsArray.slice().sort((a, b) => a.id - b.id)));
  return fields;
}

/** protobufjs's encoding of a converted (proto-shaped) message, around the kept bytes it holds. */
export function encodeMessage(type: protobuf.Type, value: Record<string, unknown>): Uint8Array {
  if (!HOLDS_BYTES.has(value)) return type.encode(type.fromObject(value)).finish();
  const parts: Uint8Array[] = [];
  for (const field of fieldsById(type)) {
    const v = value[field.name];
    if (v === undefined || v === null) continue;
    if (!holdsBytes(v)) {
      parts.push(type.encode(type.fromObject({ [field.name]: v })).finish());
      continue;
    }
    const item = field.resolvedType as protobuf.Type;
    if (field instanceof protobuf.MapField) {
      if (field.keyType !== 'string') throw new Error(`kept bytes under the ${field.keyType}-keyed map ${field.name}`);
      for (const [k, entry] of Object.entries(v as Record<string, unknown>)) {
        const key = Buffer.from(k, 'utf8');
        const body = encodeMessage(item, entry as Record<string, unknown>);
        parts.push(tagged(field.id, Buffer.concat([tag(1), varint(key.length), key, tag(2), varint(body.length), body])));
      }
    } else if (v instanceof FieldBytes) parts.push(v.bytes);
    else if (field.repeated) for (const entry of v as unknown[]) parts.push(tagged(field.id, encodeMessage(item, entry as Record<string, unknown>)));
    else parts.push(tagged(field.id, encodeMessage(item, v as Record<string, unknown>)));
  }
  return Buffer.concat(parts);
}

/** Field `id`, length-delimited, holding `body`. */
function tagged(id: number, body: Uint8Array): Buffer {
  return Buffer.concat([tag(id), varint(body.length), body]);
}

function tag(id: number): Buffer {
  return varint(((id << 3) | 2) >>> 0);
}

function varint(n: number): Buffer {
  const out: number[] = [];
  while (n > 0x7f) {
    out.push((n & 0x7f) | 0x80);
    n >>>= 7;
  }
  out.push(n);
  return Buffer.from(out);
}
