import type * as protobuf from 'protobufjs';
import { getDiscoveryRoot } from '../resource/protos';
import type { NodeInfo } from './cache';

export interface ErrorDetail {
  code: number;
  message: string;
}

export interface SotwRequest {
  versionInfo: string;
  node?: NodeInfo;
  resourceNames: string[];
  typeUrl: string;
  responseNonce: string;
  errorDetail?: ErrorDetail;
}

export interface DeltaRequest {
  node?: NodeInfo;
  typeUrl: string;
  subscribe: string[];
  unsubscribe: string[];
  initialResourceVersions: Map<string, string>;
  responseNonce: string;
  errorDetail?: ErrorDetail;
}

/** A request the server cannot make sense of; ends that stream with INVALID_ARGUMENT. */
export class BadRequestError extends Error {}

interface RawStatus {
  code?: number;
  message?: string;
}

interface RawNode {
  id?: string;
  cluster?: string;
  metadata?: unknown;
  user_agent_name?: string;
}

let types: { sotw: protobuf.Type; delta: protobuf.Type } | undefined;

function requestTypes(): { sotw: protobuf.Type; delta: protobuf.Type } {
  if (!types) {
    const root = getDiscoveryRoot();
    types = {
      sotw: root.lookupType('envoy.service.discovery.v3.DiscoveryRequest'),
      delta: root.lookupType('envoy.service.discovery.v3.DeltaDiscoveryRequest'),
    };
  }
  return types;
}

const TO_OBJECT: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: false, arrays: true, objects: true };

function decode(type: protobuf.Type, bytes: Buffer): Record<string, unknown> {
  try {
    return type.toObject(type.decode(bytes), TO_OBJECT);
  } catch (err) {
    throw new BadRequestError(`undecodable ${type.name}: ${(err as Error).message}`);
  }
}

/** google.protobuf.Struct (as protobufjs objects) to plain JSON. */
function structToJson(struct: unknown): Record<string, unknown> {
  const fields = (struct as { fields?: Record<string, unknown> } | undefined)?.fields ?? {};
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(fields)) out[k] = valueToJson(v);
  return out;
}

function valueToJson(v: unknown): unknown {
  const value = v as Record<string, unknown>;
  if ('stringValue' in value) return value.stringValue;
  if ('string_value' in value) return value.string_value;
  if ('numberValue' in value) return value.numberValue;
  if ('number_value' in value) return value.number_value;
  if ('boolValue' in value) return value.boolValue;
  if ('bool_value' in value) return value.bool_value;
  if ('structValue' in value) return structToJson(value.structValue);
  if ('struct_value' in value) return structToJson(value.struct_value);
  const list = (value.listValue ?? value.list_value) as { values?: unknown[] } | undefined;
  if (list) return (list.values ?? []).map(valueToJson);
  return null;
}

function toNode(raw: RawNode | undefined): NodeInfo | undefined {
  if (!raw) return undefined;
  return {
    id: raw.id ?? '',
    cluster: raw.cluster ?? '',
    metadata: structToJson(raw.metadata),
    userAgentName: raw.user_agent_name ?? '',
  };
}

function toError(raw: RawStatus | undefined): ErrorDetail | undefined {
  if (!raw) return undefined;
  return { code: raw.code ?? 0, message: raw.message ?? '' };
}

export function decodeSotwRequest(bytes: Buffer): SotwRequest {
  const o = decode(requestTypes().sotw, bytes);
  return {
    versionInfo: (o.version_info as string | undefined) ?? '',
    node: toNode(o.node as RawNode | undefined),
    resourceNames: (o.resource_names as string[] | undefined) ?? [],
    typeUrl: (o.type_url as string | undefined) ?? '',
    responseNonce: (o.response_nonce as string | undefined) ?? '',
    errorDetail: toError(o.error_detail as RawStatus | undefined),
  };
}

export function decodeDeltaRequest(bytes: Buffer): DeltaRequest {
  const o = decode(requestTypes().delta, bytes);
  const initial = (o.initial_resource_versions as Record<string, string> | undefined) ?? {};
  return {
    node: toNode(o.node as RawNode | undefined),
    typeUrl: (o.type_url as string | undefined) ?? '',
    subscribe: (o.resource_names_subscribe as string[] | undefined) ?? [],
    unsubscribe: (o.resource_names_unsubscribe as string[] | undefined) ?? [],
    initialResourceVersions: new Map(Object.entries(initial)),
    responseNonce: (o.response_nonce as string | undefined) ?? '',
    errorDetail: toError(o.error_detail as RawStatus | undefined),
  };
}

/** Encoders for test clients and tools that speak xDS to this server. */
export function encodeSotwRequest(obj: Record<string, unknown>): Buffer {
  const t = requestTypes().sotw;
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}

export function encodeDeltaRequest(obj: Record<string, unknown>): Buffer {
  const t = requestTypes().delta;
  return Buffer.from(t.encode(t.fromObject(obj)).finish());
}
