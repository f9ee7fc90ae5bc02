import * as grpc from '@grpc/grpc-js';
import type * as protobuf from 'protobufjs';
import { getDiscoveryRoot } from '../../src/resource/protos';
import { encodeDeltaRequest, encodeSotwRequest } from '../../src/xds/requests';
import { SnapshotCache } from '../../src/xds/cache';
import { startXdsServer, type RunningXdsServer, type XdsServerOptions } from '../../src/xds/server';

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
  private endStatus?: grpc.StatusObject;

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
    this.ended = new Promise((resolve) =>
      this.call.on('status', (st: grpc.StatusObject) => {
        this.endStatus = st;
        resolve(st);
      }),
    );
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

  /** Asserts nothing arrives for `ms` on a stream that stays open: a dead stream is silent too. */
  async nothingFor(ms: number): Promise<void> {
    await new Promise((r) => setTimeout(r, ms));
    if (this.queue.length > 0) throw new Error(`unexpected response: ${JSON.stringify(this.queue[0])}`);
    if (this.endStatus) throw new Error(`stream ended instead of staying quiet: ${grpc.status[this.endStatus.code]}: ${this.endStatus.details}`);
  }

  close(): void {
    this.call.end();
    this.call.cancel();
  }
}

const OPTS: protobuf.IConversionOptions = {
  longs: Number,
  enums: String,
  defaults: true,
  arrays: true,
  bytes: Buffer as unknown as protobuf.IConversionOptions['bytes'],
};

export function sotwStream(
  client: grpc.Client,
  service = 'envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources',
): RawXdsStream<DecodedSotwResponse> {
  const t = responseType('DiscoveryResponse');
  return new RawXdsStream(client, `/${service}`, (b) => t.toObject(t.decode(b), OPTS) as DecodedSotwResponse, encodeSotwRequest);
}

export function deltaStream(
  client: grpc.Client,
  service = 'envoy.service.discovery.v3.AggregatedDiscoveryService/DeltaAggregatedResources',
): RawXdsStream<DecodedDeltaResponse> {
  const t = responseType('DeltaDiscoveryResponse');
  return new RawXdsStream(client, `/${service}`, (b) => t.toObject(t.decode(b), OPTS) as DecodedDeltaResponse, encodeDeltaRequest);
}

export function rawClient(port: number, creds = grpc.credentials.createInsecure(), options: grpc.ClientOptions = {}): grpc.Client {
  return new grpc.Client(`127.0.0.1:${port}`, creds, options);
}

/** An xDS Node as a request carries it (gRPC's client insists on a locality). */
export const testNode = (id: string): Record<string, unknown> => ({ id, locality: {} });

export interface XdsTestBed {
  xds: RunningXdsServer;
  cache: SnapshotCache;
  client: grpc.Client;
}

/**
 * Registers mocha hooks that give every test a fresh cache, server and raw client; the
 * returned object's fields are filled in before each test.
 */
export function xdsServerPerTest(options: Partial<XdsServerOptions> = {}, seed: (cache: SnapshotCache) => void = () => undefined): XdsTestBed {
  const bed = {} as XdsTestBed;
  beforeEach(async () => {
    bed.cache = new SnapshotCache();
    seed(bed.cache);
    bed.xds = await startXdsServer({ ...options, source: bed.cache, port: 0, host: '127.0.0.1' });
    bed.client = rawClient(bed.xds.port);
  });
  afterEach(async () => {
    bed.client.close();
    await bed.xds.close();
  });
  return bed;
}
