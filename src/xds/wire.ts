import { Writer } from 'protobufjs';
import type { EncodedResource } from '../resource/encoded';

/**
 * Hand-framed xDS responses. A DiscoveryResponse is a concatenation of length-delimited
 * fields, so the bytes of each resource (its Any, or its Delta Resource wrapper) are framed
 * once per resource version and then spliced into every response on every stream that carries
 * it. Only the small per-stream parts (nonce) are encoded per send. This is the "marshal once,
 * share the bytes" property go-control-plane gets from its cache of marshalled resources.
 */

const WIRE_LEN = 2;
const WRAPPED_RESOURCE_TYPE = 'type.googleapis.com/envoy.service.discovery.v3.Resource';

function tag(field: number): number {
  return (field << 3) | WIRE_LEN;
}

function lengthDelimited(field: number, body: Uint8Array): Buffer {
  const w = Writer.create();
  w.uint32(tag(field)).uint32(body.length);
  const head = w.finish();
  return Buffer.concat([head, body]);
}

function stringField(field: number, value: string): Buffer {
  return lengthDelimited(field, Buffer.from(value, 'utf8'));
}

function durationBytes(ms: number): Buffer {
  const w = Writer.create();
  const seconds = Math.floor(ms / 1000);
  const nanos = Math.round((ms - seconds * 1000) * 1e6);
  if (seconds) w.uint32((1 << 3) | 0).int64(seconds);
  if (nanos) w.uint32((2 << 3) | 0).int32(nanos);
  return Buffer.from(w.finish());
}

/** google.protobuf.Any{type_url, value}. */
function anyBytes(typeUrl: string, value: Uint8Array): Buffer {
  return Buffer.concat([stringField(1, typeUrl), lengthDelimited(2, value)]);
}

/** envoy.service.discovery.v3.Resource: name=3, version=1, resource=2, ttl=6. */
function deltaResourceBytes(r: EncodedResource): Buffer {
  const parts = [stringField(3, r.name), stringField(1, r.version), lengthDelimited(2, anyBytes(r.typeUrl, r.value))];
  if (r.ttlMs !== undefined) parts.push(lengthDelimited(6, durationBytes(r.ttlMs)));
  return Buffer.concat(parts);
}

// Resources are immutable, so their framed forms can hang off them for as long as any
// snapshot still references them.
const sotwFramed = new WeakMap<EncodedResource, Buffer>();
const deltaFramed = new WeakMap<EncodedResource, Buffer>();

/** DiscoveryResponse.resources entry (field 2); a TTL'd resource travels wrapped in a Resource. */
function sotwResourceField(r: EncodedResource): Buffer {
  let framed = sotwFramed.get(r);
  if (!framed) {
    const any = r.ttlMs === undefined ? anyBytes(r.typeUrl, r.value) : anyBytes(WRAPPED_RESOURCE_TYPE, deltaResourceBytes(r));
    framed = lengthDelimited(2, any);
    sotwFramed.set(r, framed);
  }
  return framed;
}

/** DeltaDiscoveryResponse.resources entry (field 2). */
function deltaResourceField(r: EncodedResource): Buffer {
  let framed = deltaFramed.get(r);
  if (!framed) {
    framed = lengthDelimited(2, deltaResourceBytes(r));
    deltaFramed.set(r, framed);
  }
  return framed;
}

/**
 * The snapshot-derived part of a SotW response: version_info, resources and type_url. The nonce
 * and control_plane are appended per send (protobuf fields may come in any order).
 */
export function sotwResponseBody(typeUrl: string, versionInfo: string, resources: readonly EncodedResource[]): Buffer {
  const parts: Buffer[] = [stringField(1, versionInfo)];
  for (const r of resources) parts.push(sotwResourceField(r));
  parts.push(stringField(4, typeUrl));
  return Buffer.concat(parts);
}

/** DiscoveryResponse and DeltaDiscoveryResponse both carry the nonce as field 5. */
const NONCE_FIELD = 5;

export function withNonce(body: Buffer, nonce: string, controlPlane?: Buffer): Buffer {
  const nonceBytes = stringField(NONCE_FIELD, nonce);
  return Buffer.concat(controlPlane ? [body, nonceBytes, controlPlane] : [body, nonceBytes]);
}

export function deltaResponse(
  typeUrl: string,
  systemVersionInfo: string,
  resources: readonly EncodedResource[],
  removed: readonly string[],
  nonce: string,
  controlPlane?: Buffer,
): Buffer {
  const parts: Buffer[] = [stringField(1, systemVersionInfo)];
  for (const r of resources) parts.push(deltaResourceField(r));
  parts.push(stringField(4, typeUrl));
  for (const name of removed) parts.push(stringField(6, name));
  parts.push(stringField(NONCE_FIELD, nonce));
  if (controlPlane) parts.push(controlPlane);
  return Buffer.concat(parts);
}

/** config.core.v3.ControlPlane{identifier=1}, as DiscoveryResponse field 6 / Delta field 7. */
export function controlPlaneField(identifier: string, field: number): Buffer {
  return lengthDelimited(field, stringField(1, identifier));
}
