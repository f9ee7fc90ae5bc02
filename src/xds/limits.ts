import * as grpc from '@grpc/grpc-js';
import type { NodeInfo } from './cache';
import { clientText } from '../log';

/**
 * Bounds on everything a client controls. A request over one is refused with a short status
 * naming the limit, never stored, logged or echoed whole. Defaults leave room for any real
 * proxy (Istio's node metadata is a few KiB, its node ids well under 300 characters).
 */
export interface StreamLimits {
  /** Names one stream may hold subscribed for one type, and names one request may carry. */
  maxNamesPerType: number;
  /** Distinct type URLs one stream may subscribe to. */
  maxTypesPerStream: number;
  maxNodeIdLength: number;
  maxClusterLength: number;
  /** user_agent_name and the user agent version string. */
  maxUserAgentLength: number;
  /** Node metadata, measured as JSON. */
  maxMetadataBytes: number;
  maxTypeUrlLength: number;
  /** version_info a SotW client ACKs with (it is kept and shown). */
  maxVersionInfoLength: number;
  maxResourceNameLength: number;
  /** A NACK's error_detail.message; what is kept of an accepted one is shorter still. */
  maxNackMessageLength: number;

  /** Response bytes handed to gRPC but not yet flushed beyond which a stream waits ('drain') instead of writing. */
  writeBufferBytes: number;
  /** A stream whose client has read none of what is waiting for this long is closed (and reset). */
  stallTimeoutMs: number;
  /** Request bytes a stream may send at once, and per second after that, before it is read more slowly. */
  requestBurstBytes: number;
  requestBytesPerSecond: number;
  /** Requests a stream may send at once, and per second after that, before it is read more slowly. */
  requestBurst: number;
  requestsPerSecond: number;
  /**
   * A stream claiming a connected node id with another binding waits this long for the holder's
   * connection to answer a PING; one that does not is taken to be dead (a restarted proxy's old
   * connection) and the node id passes to the new stream.
   */
  claimProbeTimeoutMs: number;
}

export const DEFAULT_LIMITS: StreamLimits = {
  maxNamesPerType: 100_000,
  maxTypesPerStream: 32,
  maxNodeIdLength: 1024,
  maxClusterLength: 1024,
  maxUserAgentLength: 256,
  maxMetadataBytes: 64 * 1024,
  maxTypeUrlLength: 256,
  maxVersionInfoLength: 256,
  maxResourceNameLength: 4096,
  maxNackMessageLength: 64 * 1024,
  writeBufferBytes: 1024 * 1024,
  stallTimeoutMs: 60_000,
  requestBurstBytes: 8 * 1024 * 1024,
  requestBytesPerSecond: 2 * 1024 * 1024,
  requestBurst: 5000,
  requestsPerSecond: 1000,
  claimProbeTimeoutMs: 2000,
};

/**
 * The largest request message the standalone server accepts (grpc-js's own default). A request
 * is names and a node: 4 MiB holds 25,000 names of 150 characters; every byte above that is
 * decoding time on the one event loop all streams share.
 */
export const DEFAULT_MAX_RECEIVE_MESSAGE_BYTES = 4 * 1024 * 1024;

/** A limit refusal: INVALID_ARGUMENT for a malformed value, RESOURCE_EXHAUSTED for counts. */
export class LimitError extends Error {
  constructor(
    readonly code: grpc.status,
    message: string,
  ) {
    super(message);
  }
}

function tooLong(what: string, value: string, max: number): LimitError {
  return new LimitError(grpc.status.INVALID_ARGUMENT, `${what} is ${value.length} characters, over the limit of ${max} (starts "${clientText(value, 40)}")`);
}

export function checkLength(what: string, value: string, max: number): void {
  if (value.length > max) throw tooLong(what, value, max);
}

// C0 and C1 controls and DEL: no proxy names itself with them, and refusing them here keeps
// them out of every log line that names a node, including those of layers that do not escape.
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/;

function checkPrintable(what: string, value: string): void {
  if (CONTROL.test(value)) throw new LimitError(grpc.status.INVALID_ARGUMENT, `${what} contains control characters ("${clientText(value, 80)}")`);
}

export function checkNode(node: NodeInfo, limits: StreamLimits): void {
  checkLength('node.id', node.id, limits.maxNodeIdLength);
  checkLength('node.cluster', node.cluster, limits.maxClusterLength);
  checkPrintable('node.id', node.id);
  checkPrintable('node.cluster', node.cluster);
  checkLength('node.user_agent_name', node.userAgentName, limits.maxUserAgentLength);
  const metadataBytes = Buffer.byteLength(JSON.stringify(node.metadata));
  if (metadataBytes > limits.maxMetadataBytes) {
    throw new LimitError(grpc.status.INVALID_ARGUMENT, `node.metadata is ${metadataBytes} bytes as JSON, over the limit of ${limits.maxMetadataBytes}`);
  }
}

export function checkNames(what: string, names: readonly string[] | Iterable<string>, count: number, limits: StreamLimits): void {
  if (count > limits.maxNamesPerType) {
    throw new LimitError(grpc.status.RESOURCE_EXHAUSTED, `too many names in ${what} (${count} > ${limits.maxNamesPerType})`);
  }
  for (const n of names) checkLength(`a resource name in ${what}`, n, limits.maxResourceNameLength);
}

export function checkNackMessage(message: string, limits: StreamLimits): void {
  checkLength('error_detail.message', message, limits.maxNackMessageLength);
}
