import type { NodeInfo } from './cache';
import { withLevels, type Logger } from '../log';

/** A client's rejection of a response, kept until the type is next ACKed. */
export interface NackRecord {
  version: string;
  nonce: string;
  /** google.rpc.Status code and message from the client's error_detail (message cut to a bound). */
  code: number;
  message: string;
  at: Date;
}

/** One xDS stream as observers see it. */
export interface StreamInfo {
  readonly streamId: number;
  readonly protocol: 'sotw' | 'delta';
  /** The client's address as grpc-js reports it. */
  readonly peer: string;
  /** Set on the per-type services; undefined on ADS. */
  readonly typeUrl?: string;
}

export interface RequestInfo {
  typeUrl: string;
  /** SotW version_info; empty on Delta. */
  versionInfo: string;
  responseNonce: string;
  /** The subscription after this request was applied. */
  wildcard: boolean;
  subscribedNames: number;
  /** Size of the request on the wire. */
  bytes: number;
}

export interface ResponseInfo {
  typeUrl: string;
  version: string;
  nonce: string;
  /** Resources carried (Delta: updated ones) and, on Delta, names removed. */
  resources: number;
  removed: number;
  /** Size of the response on the wire. */
  bytes: number;
  /** From the decision to respond to the response handed to gRPC, in milliseconds. */
  durationMs: number;
}

/**
 * Hooks into every stream, in the style of go-control-plane's server Callbacks: status
 * tracking, metrics and audit logs are observers of these, not code inside the sessions.
 * All are optional and called synchronously; an observer that throws is logged and the
 * stream carries on.
 */
export interface XdsCallbacks {
  /** The first request identified the node and it was admitted; nothing is called for a stream refused before that. */
  onStreamOpen?(stream: StreamInfo, node: NodeInfo, key: string): void;
  /** The stream ended, however; `node` is undefined if it never got that far. */
  onStreamClose?(stream: StreamInfo, node: NodeInfo | undefined): void;
  /** A request was accepted and applied to the stream's subscription. */
  onRequest?(stream: StreamInfo, node: NodeInfo, request: RequestInfo): void;
  onResponse?(stream: StreamInfo, node: NodeInfo, response: ResponseInfo): void;
  onAck?(stream: StreamInfo, node: NodeInfo, typeUrl: string, version: string): void;
  onNack?(stream: StreamInfo, node: NodeInfo, typeUrl: string, nack: NackRecord): void;
}

const HOOKS = ['onStreamOpen', 'onStreamClose', 'onRequest', 'onResponse', 'onAck', 'onNack'] as const;

/** Several observers as one: each hook calls every observer that has it, in order; one throwing does not stop the others. */
export function combineCallbacks(callbacks: readonly XdsCallbacks[], log: Logger): Required<XdsCallbacks> {
  const warn = withLevels(log).error;
  const combined = {} as Record<(typeof HOOKS)[number], (...args: unknown[]) => void>;
  for (const hook of HOOKS) {
    const fns = callbacks.filter((c) => typeof c[hook] === 'function').map((c) => ({ c, fn: c[hook] as (...args: unknown[]) => void }));
    combined[hook] = (...args: unknown[]) => {
      for (const { c, fn } of fns) {
        try {
          fn.apply(c, args);
        } catch (err) {
          warn(`xds callback ${hook} threw: ${(err as Error).message}`);
        }
      }
    };
  }
  return combined as unknown as Required<XdsCallbacks>;
}
