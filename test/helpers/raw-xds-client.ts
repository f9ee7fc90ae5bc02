import * as grpc from '@grpc/grpc-js';
import type * as protobuf from 'protobufjs';
import { getDiscoveryRoot } from '../../src/envoy/protos';
import { encodeDeltaRequest, encodeSotwRequest } from '../../src/xds/requests';

const identity = (b: Buffer): Buffer => b;

export interface DecodedSotwResponse {
  version_info: string;
  type_url: string;
  nonce: string;
  resources: Array<{ type_url: string; value: Uint8Array }>;
  control_plane?: { identifier: string };
}

export interface DecodedDeltaResponse {
  system_version_info: string;
  type_url: string;
  nonce: string;
  resources: Array<{ name: string; version: string; resource?: { type_url: string; value: Uint8Array }; ttl?: { seconds?: number } }>;
  removed_resources: string[];
}

function responseType(name: string): protobuf.Type {
  return getDiscoveryRoot().lookupType(`envoy.service.discovery.v3.${name}`);
}

/**
 * A bare xDS stream speaking the wire protocol directly, so tests can send exactly the
 * requests the protocol document describes (stale nonces, explicit `*`, unsubscribes...).
 */
export class RawXdsStream<Res> {
  private readonly queue: Res[] = [];
  private waiters: Array<(r: Res) => void> = [];
  readonly call: grpc.ClientDuplexStream<Buffer, Buffer>;
  readonly ended: Promise<grpc.StatusObject>;

  constructor(
    client: grpc.Client,
    path: string,
    private readonly decode: (b: Buffer) => Res,
    private readonly encode: (o: Record<string, unknown>) => Buffer,
    metadata = new grpc.Metadata(),
  ) {
    this.call = client.makeBidiStreamRequest(path, identity, identity, metadata);
    this.call.on('data', (b: Buffer) => {
      const r = this.decode(b);
      const w = this.waiters.shift();
      if (w) w(r);
      else this.queue.push(r);
    });
    this.ended = new Promise((resolve) => this.call.on('status', resolve));
    this.call.on('error', () => undefined);
  }

  send(request: Record<string, unknown>): void {
    this.call.write(this.encode(request));
  }

  next(timeoutMs = 3000): Promise<Res> {
    const queued = this.queue.shift();
    if (queued) return Promise.resolve(queued);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiters = this.waiters.filter((w) => w !== waiter);
        reject(new Error(`no response within ${timeoutMs} ms`));
      }, timeoutMs);
      const waiter = (r: Res): void => {
        clearTimeout(timer);
        resolve(r);
      };
      this.waiters.push(waiter);
    });
  }

  /** Asserts nothing arrives for `ms`. */
  async nothingFor(ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    if (this.queue.length > 0) throw new Error(`unexpected response: ${JSON.stringify(this.queue[0])}`);
  }

  close(): void {
    this.call.end();
    this.call.cancel();
  }
}

const OPTS: protobuf.IConversionOptions = { longs: Number, enums: String, defaults: true, arrays: true, bytes: Buffer as unknown as protobuf.IConversionOptions['bytes'] };

export function sotwStream(client: grpc.Client, service = 'envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources'): RawXdsStream<DecodedSotwResponse> {
  const t = responseType('DiscoveryResponse');
  return new RawXdsStream(client, `/${service}`, (b) => t.toObject(t.decode(b), OPTS) as DecodedSotwResponse, encodeSotwRequest);
}

export function deltaStream(client: grpc.Client, service = 'envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources'): RawXdsStream<DecodedDeltaResponse> {
  const t = responseType('DeltaDiscoveryResponse');
  return new RawXdsStream(client, `/${service}`, (b) => t.toObject(t.decode(b), OPTS) as DecodedDeltaResponse, encodeDeltaRequest);
}

export function rawClient(port: number, creds = grpc.credentials.createInsecure(), options: grpc.ClientOptions = {}): grpc.Client {
  return new grpc.Client(`127.0.0.1:${port}`, creds, options);
}
