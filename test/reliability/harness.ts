import * as assert from 'node:assert/strict';
import * as http2 from 'http2';
import { encodeSotwRequest } from '../../src/xds/requests';
import { encodedResource, type EncodedResource } from '../../src/resource/encoded';
import { Snapshot } from '../../src/xds/snapshot';
import { TypeUrl } from '../../src/resource/type-urls';
import { edsCluster } from '../helpers/envoy-resources';
import { sotwStream, type RawXdsStream, type DecodedSotwResponse } from '../helpers/raw-xds-client';
import type * as grpc from '@grpc/grpc-js';

/**
 * Tools the reliability suite shares: memory after a forced GC, a client that never reads, and a
 * healthy proxy that records everything it was served.
 */

function forceGc(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  if (!gc) throw new Error('the reliability suite needs node --expose-gc (see .mocharc.json node-option)');
  gc();
}

/** JS heap used plus Buffer memory, after two forced collections. */
export async function settledMemory(): Promise<number> {
  await new Promise((r) => setTimeout(r, 200));
  forceGc();
  await new Promise((r) => setImmediate(r));
  forceGc();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}

export const MiB = 1024 * 1024;

/** gRPC length-prefixed message. */
function grpcFrame(message: Buffer): Buffer {
  const head = Buffer.alloc(5);
  head.writeUInt32BE(message.length, 1);
  return Buffer.concat([head, message]);
}

/**
 * An xDS client that sends its requests and then never reads: its HTTP/2 receive window is 0,
 * so the server cannot send it a single byte. What the server does with the responses it
 * cannot deliver is what is being tested.
 */
export class StuckClient {
  private readonly session: http2.ClientHttp2Session;
  readonly stream: http2.ClientHttp2Stream;

  constructor(port: number, path = '/envoy.service.discovery.v3.AggregatedDiscoveryService/StreamAggregatedResources') {
    this.session = http2.connect(`http://127.0.0.1:${port}`, { settings: { initialWindowSize: 0 } });
    this.session.on('error', () => undefined);
    this.stream = this.session.request({ ':method': 'POST', ':path': path, 'content-type': 'application/grpc', te: 'trailers' }, { endStream: false });
    this.stream.on('error', () => undefined);
    // Never consume: a paused stream with a zero window receives nothing.
    this.stream.pause();
  }

  send(request: Record<string, unknown>): void {
    this.stream.write(grpcFrame(encodeSotwRequest(request)));
  }

  /** Resolves once the HTTP/2 layer has taken every byte written so far. */
  flushed(): Promise<void> {
    return new Promise((resolve) => this.stream.write(Buffer.alloc(0), () => resolve()));
  }

  close(): void {
    this.stream.close();
    this.session.destroy();
  }
}

/** A snapshot of `clusters` EDS clusters padded to about `bytesEach`, tagged with `generation`. */
export function paddedSnapshot(generation: number, clusters: number, bytesEach: number): Snapshot {
  const resources: EncodedResource[] = [];
  for (let i = 0; i < clusters; i++) resources.push(paddedCluster(`c${i}`, generation, bytesEach));
  return Snapshot.fromResources(resources);
}

/** A Cluster-typed resource whose bytes are only a name and padding: the server never decodes what it serves. */
export function paddedCluster(name: string, generation: number, bytes: number): EncodedResource {
  const c = edsCluster(name);
  const pad = Buffer.alloc(Math.max(0, bytes - c.value.length), 0);
  // Padding as an unknown length-delimited field (number 1000, which Cluster does not use),
  // with the generation in it.
  const tag = Buffer.from(`gen=${generation};`);
  const unknown = Buffer.concat([Buffer.from([0xc2, 0x3e]), varint(tag.length + pad.length), tag, pad]);
  return encodedResource(TypeUrl.Cluster, name, Buffer.concat([Buffer.from(c.value), unknown]));
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

/** The generation a paddedCluster carries. */
export function generationOf(value: Uint8Array): number {
  const m = /gen=(\d+);/.exec(Buffer.from(value).toString('latin1'));
  return m ? Number(m[1]) : -1;
}

/**
 * A healthy proxy on an ADS SotW stream, wildcard CDS, ACKing everything: each response it gets
 * is checked to be complete (`expected` resources, all of one generation) as it arrives.
 */
export class HealthyProxy {
  readonly stream: RawXdsStream<DecodedSotwResponse>;
  readonly generations: number[] = [];
  readonly problems: string[] = [];
  private waiters: Array<{ generation: number; resolve: () => void }> = [];
  readonly receivedAt = new Map<number, number>();

  constructor(
    client: grpc.Client,
    readonly nodeId: string,
    private readonly expected: number,
  ) {
    this.stream = sotwStream(client);
    this.stream.send({ node: { id: nodeId, locality: {} }, type_url: TypeUrl.Cluster });
    void this.loop();
  }

  private async loop(): Promise<void> {
    for (;;) {
      let r: DecodedSotwResponse;
      try {
        r = await this.stream.next(600_000);
      } catch {
        return;
      }
      const gens = new Set(r.resources.map((a) => generationOf(a.value)));
      if (r.resources.length !== this.expected) this.problems.push(`response with ${r.resources.length} of ${this.expected} clusters`);
      if (gens.size !== 1) this.problems.push(`response mixing generations ${[...gens].join(',')}`);
      const g = [...gens][0] ?? -1;
      this.generations.push(g);
      this.receivedAt.set(g, performance.now());
      this.stream.send({ type_url: TypeUrl.Cluster, version_info: r.version_info, response_nonce: r.nonce });
      this.waiters = this.waiters.filter((w) => (w.generation <= g ? (w.resolve(), false) : true));
    }
  }

  /** Resolves when a response of `generation` or later has arrived. */
  reached(generation: number, timeoutMs = 10_000): Promise<void> {
    if (this.generations.some((g) => g >= generation)) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`healthy proxy did not get generation ${generation} within ${timeoutMs} ms (has ${this.generations.slice(-3).join(',')})`)),
        timeoutMs,
      );
      this.waiters.push({ generation, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  assertAlwaysComplete(): void {
    assert.deepEqual(this.problems, [], `the healthy proxy was served incomplete configuration`);
    assert.ok(this.generations.length > 0, 'the healthy proxy got at least one response');
  }

  close(): void {
    this.stream.close();
  }
}

/** Figures for the report when RELIABILITY_VERBOSE is set; assertions do the checking. */
export function note(message: string): void {
  if (process.env.RELIABILITY_VERBOSE) console.log(`      ${message}`);
}
