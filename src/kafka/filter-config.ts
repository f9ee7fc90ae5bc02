import { l7RulesOf, type CompiledPortPolicy, type CompiledProxyPolicy, type KafkaRule } from '../policy/compiled';
import { tryParseCidr as parseCidr } from '../net/cidr';

/**
 * The Kafka filter's configuration for one Kafka port of one proxy, in one direction: the
 * port's rules with their peers already resolved. The .wasm reads it in the binary form
 * `encodeKafkaFilterConfig` writes (see wasm/kafka-filter/assembly/config.ts).
 */
export interface KafkaFilterConfig {
  /** `<direction>:<port>`: the filter keeps the newest configuration per name. */
  name: string;
  direction: 'ingress' | 'egress';
  port: number;
  /** Largest request frame accepted (Kafka's socket.request.max.bytes default: 100 MiB). */
  maxFrameBytes: number;
  rules: KafkaFilterRule[];
}

export interface KafkaFilterRule {
  /** Which policy rule this came from, for `policy trace`-style explanations. */
  origin: string;
  anyPeer: boolean;
  /** Peer CIDRs: the source on ingress, the destination on egress. */
  peers: readonly string[];
  /** mTLS identities as the peer certificate's URI SAN (`spiffe://...`). */
  principals: readonly string[];
  /** When present, the rule applies only to connections to (ingress) / from (egress) these addresses. */
  local?: readonly string[];
  /** Empty: every Kafka request from these peers. */
  kafka: readonly KafkaRule[];
}

export const DEFAULT_MAX_FRAME_BYTES = 100 * 1024 * 1024;

export function kafkaFilterName(direction: 'ingress' | 'egress', port: number): string {
  return `${direction}:${port}`;
}

/** One configuration per Kafka port of a proxy, per direction (TCP and ANY entries of a port merged). */
export function kafkaFilterConfigs(policy: CompiledProxyPolicy, maxFrameBytes = DEFAULT_MAX_FRAME_BYTES): KafkaFilterConfig[] {
  const out: KafkaFilterConfig[] = [];
  for (const direction of ['ingress', 'egress'] as const) {
    const byPort = new Map<number, CompiledPortPolicy[]>();
    for (const p of policy[direction]) {
      if (p.l7 !== 'kafka' || p.protocol === 'UDP') continue;
      byPort.set(p.port, [...(byPort.get(p.port) ?? []), p]);
    }
    for (const [port, entries] of [...byPort].sort((a, b) => a[0] - b[0])) {
      out.push({
        name: kafkaFilterName(direction, port),
        direction,
        port,
        maxFrameBytes,
        rules: entries.flatMap((e) =>
          e.rules.map((r) => ({
            origin: r.origin.file ? `${r.origin.policy} (${r.origin.file}:${r.origin.line ?? 0})` : r.origin.policy,
            anyPeer: r.peers.any,
            peers: r.peers.cidrs,
            principals: r.peers.principals.map((pr) => (pr.startsWith('spiffe://') ? pr : `spiffe://${pr}`)),
            ...(r.local ? { local: r.local } : {}),
            kafka: l7RulesOf(r, 'kafka') ?? [],
          })),
        ),
      });
    }
  }
  return out;
}

class Encoder {
  private readonly parts: Buffer[] = [];
  u8(v: number): void {
    const b = Buffer.alloc(1);
    b.writeUInt8(v);
    this.parts.push(b);
  }
  u16(v: number): void {
    if (!Number.isInteger(v) || v < 0 || v > 0xffff) throw new RangeError(`${v} does not fit the Kafka filter configuration's u16`);
    const b = Buffer.alloc(2);
    b.writeUInt16LE(v);
    this.parts.push(b);
  }
  i16(v: number): void {
    const b = Buffer.alloc(2);
    b.writeInt16LE(v);
    this.parts.push(b);
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v >>> 0);
    this.parts.push(b);
  }
  i32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeInt32LE(v);
    this.parts.push(b);
  }
  raw(b: Buffer): void {
    this.parts.push(b);
  }
  text16(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u16(b.length);
    this.raw(b);
  }
  optText(s: string | undefined): void {
    if (s === undefined) return this.i16(-1);
    const b = Buffer.from(s, 'utf8');
    if (b.length > 0x7fff) throw new RangeError('Kafka filter strings are at most 32767 bytes');
    this.i16(b.length);
    this.raw(b);
  }
  cidr(text: string): void {
    const c = parseCidr(text);
    if (!c) throw new Error(`not a CIDR: ${text}`);
    const addr = Buffer.alloc(16);
    if (c.family === 4) Buffer.from(c.address.split('.').map(Number)).copy(addr);
    else ipv6Bytes(c.address).copy(addr);
    this.u8(c.family);
    this.u8(c.prefix);
    this.raw(addr);
  }
  bytes(): Buffer {
    return Buffer.concat(this.parts);
  }
}

function ipv6Bytes(address: string): Buffer {
  const [head, tail] = address.includes('::') ? address.split('::') : [address, undefined];
  const groups = (s: string): number[] =>
    s === ''
      ? []
      : s.split(':').flatMap((g) => (g.includes('.') ? ((q) => [(q[0] << 8) | q[1], (q[2] << 8) | q[3]])(g.split('.').map(Number)) : [parseInt(g, 16)]));
  const h = groups(head);
  const t = tail === undefined ? [] : groups(tail);
  const all = tail === undefined ? h : [...h, ...new Array<number>(8 - h.length - t.length).fill(0), ...t];
  const b = Buffer.alloc(16);
  all.forEach((g, i) => b.writeUInt16BE(g, 2 * i));
  return b;
}

/** The binary form the filter reads as its plugin configuration. */
export function encodeKafkaFilterConfig(cfg: KafkaFilterConfig): Buffer {
  const e = new Encoder();
  e.raw(Buffer.from('MKF1', 'latin1'));
  e.text16(cfg.name);
  e.u8(cfg.direction === 'egress' ? 1 : 0);
  e.u32(cfg.maxFrameBytes);
  e.u16(cfg.rules.length);
  for (const r of cfg.rules) {
    e.u8(r.anyPeer ? 1 : 0);
    e.u16(r.peers.length);
    r.peers.forEach((c) => e.cidr(c));
    e.u16(r.principals.length);
    r.principals.forEach((p) => e.text16(p));
    e.u8(r.local ? 1 : 0);
    e.u16(r.local?.length ?? 0);
    (r.local ?? []).forEach((c) => e.cidr(c));
    e.u16(r.kafka.length);
    for (const k of r.kafka) {
      e.u16(k.apiKeys.length);
      k.apiKeys.forEach((key) => e.u16(key));
      e.i32(k.apiVersion ?? -1);
      e.optText(k.clientID);
      e.optText(k.topic);
    }
  }
  return e.bytes();
}
