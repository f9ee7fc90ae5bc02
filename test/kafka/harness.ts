import type { KafkaRule } from '../../src/policy/compiled';
import { encodeKafkaFilterConfig, type KafkaFilterConfig, type KafkaFilterRule } from '../../src/kafka/filter-config';
import { loadKafkaFilter } from '../../src/kafka/proxy';
import type { ProxyWasmVm, StreamProperties } from '../../src/wasm-host/proxy-wasm-host';

export const PRODUCE_KEYS = [0, 3, 18];
export const CONSUME_KEYS = [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18];

export function anyPeer(kafka: KafkaRule[], extra: Partial<KafkaFilterRule> = {}): KafkaFilterRule {
  return { origin: 'test', anyPeer: true, peers: [], principals: [], kafka, ...extra };
}

export function config(rules: KafkaFilterRule[], maxFrameBytes = 1 << 20): KafkaFilterConfig {
  return { name: 'ingress:9092', direction: 'ingress', port: 9092, maxFrameBytes, rules };
}

export const DEFAULT_PROPS: StreamProperties = { 'source.address': '127.0.0.1:40000', 'destination.address': '127.0.0.1:9092' };

export interface Outcome {
  /** Bytes passed upstream. */
  forwarded: Buffer;
  /** Bytes passed to the client after `upstream` was fed. */
  toClient: Buffer;
  closed: boolean;
}

let shared: ProxyWasmVm | undefined;
export const logs: string[] = [];

export function vm(): ProxyWasmVm {
  return (shared ??= loadKafkaFilter((level, message) => logs.push(`${level} ${message}`)));
}

/** Runs one connection: client chunks in order, then the upstream chunks. */
export function run(
  rules: KafkaFilterRule[],
  chunks: Buffer[],
  upstream: Buffer[] = [],
  props: StreamProperties = DEFAULT_PROPS,
  maxFrameBytes?: number,
): Outcome {
  const v = vm();
  const root = v.configure(encodeKafkaFilterConfig(config(rules, maxFrameBytes)));
  if (root === undefined) throw new Error('configuration refused');
  let closed = false;
  const stream = v.newConnection(root, props, () => {
    closed = true;
  });
  const fwd: Buffer[] = [];
  for (const c of chunks) fwd.push(stream.downstream(c));
  const back: Buffer[] = [];
  for (const u of upstream) back.push(stream.upstream(u));
  stream.finish();
  return { forwarded: Buffer.concat(fwd), toClient: Buffer.concat(back), closed };
}
