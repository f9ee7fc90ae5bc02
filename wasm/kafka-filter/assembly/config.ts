// The filter's configuration (compiled by src/kafka/filter-config.ts) and the rule decision.
// Format, little-endian: "MKF1", u16 name length + name, u8 direction (0 ingress, 1 egress),
// u32 max frame bytes, u16 rule count, then per rule: u8 any-peer, u16 n + n CIDRs
// (u8 family 4|6, u8 prefix, 16 address bytes), u16 n + n principals (u16 length + bytes),
// u8 has-local, u16 n + n CIDRs, u16 n + n Kafka rules (u16 key count + u16 keys, i32 version
// or -1, i16 client id length or -1 + bytes, i16 topic length or -1 + bytes).
import * as p from "./protocol";
import * as ids from "./topic-ids";

export class Cidr {
  v6: bool = false;
  prefix: i32 = 0;
  bytes: StaticArray<u8> = new StaticArray<u8>(16);
  get addr(): usize { return changetype<usize>(this.bytes); }
}

/** A copy the configuration owns (the GC does not move it), so no rule points into a freed buffer. */
function own(ptr: usize, n: i32): ArrayBuffer {
  const b = new ArrayBuffer(n);
  if (n > 0) memory.copy(changetype<usize>(b), ptr, <usize>n);
  return b;
}

export class KafkaRule {
  anyKey: bool = true;
  keys: StaticArray<u32> = new StaticArray<u32>(4); // bit per API key 0..127
  version: i32 = -1;
  client: ArrayBuffer = new ArrayBuffer(0);
  clientLen: i32 = -1;
  topic: ArrayBuffer = new ArrayBuffer(0);
  topicLen: i32 = -1;
  /** Its rule's index in the configuration, and its own in that rule (for explanations). */
  rule: i32 = 0;
  index: i32 = 0;
  get clientPtr(): usize { return changetype<usize>(this.client); }
  get topicPtr(): usize { return changetype<usize>(this.topic); }
}

export class Rule {
  anyPeer: bool = false;
  peers: Array<Cidr> = new Array<Cidr>();
  principals: Array<string> = new Array<string>();
  hasLocal: bool = false;
  locals: Array<Cidr> = new Array<Cidr>();
  kafka: Array<KafkaRule> = new Array<KafkaRule>();
}

export class Config {
  name: string = "";
  egress: bool = false;
  maxFrame: u32 = 0;
  rules: Array<Rule> = new Array<Rule>();
  generation: u32 = 0;
}

let at: usize = 0;
let stop: usize = 0;
let broken: bool = false;

function take(n: usize): usize {
  if (broken || stop - at < n) {
    broken = true;
    return 0;
  }
  const q = at;
  at += n;
  return q;
}
function u8_(): u32 { const q = take(1); return broken ? 0 : <u32>load<u8>(q); }
function u16_(): u32 { const q = take(2); return broken ? 0 : <u32>load<u16>(q); }
function i16_(): i32 { const q = take(2); return broken ? 0 : <i32>load<i16>(q); }
function u32_(): u32 { const q = take(4); return broken ? 0 : load<u32>(q); }

function cidr(): Cidr {
  const c = new Cidr();
  const fam = u8_();
  c.prefix = <i32>u8_();
  const a = take(16);
  if (!broken) memory.copy(c.addr, a, 16);
  c.v6 = fam == 6;
  if ((fam != 4 && fam != 6) || c.prefix > (c.v6 ? 128 : 32)) broken = true;
  return c;
}

/** Parses a configuration; null when it is not one (the previous configuration keeps serving). */
export function parseConfig(ptr: usize, len: usize): Config | null {
  at = ptr;
  stop = ptr + len;
  broken = false;
  const magic = take(4);
  if (broken || load<u32>(magic) != 0x31464b4d) return null; // "MKF1"
  const cfg = new Config();
  const nameLen = u16_();
  const nameAt = take(nameLen);
  if (broken) return null;
  cfg.name = String.UTF8.decodeUnsafe(nameAt, nameLen);
  cfg.egress = u8_() == 1;
  cfg.maxFrame = u32_();
  const nRules = u16_();
  for (let i: u32 = 0; i < nRules && !broken; i++) {
    const rule = new Rule();
    rule.anyPeer = u8_() == 1;
    const nc = u16_();
    for (let j: u32 = 0; j < nc && !broken; j++) rule.peers.push(cidr());
    const np = u16_();
    for (let j: u32 = 0; j < np && !broken; j++) {
      const l = u16_();
      const q = take(l);
      if (!broken) rule.principals.push(String.UTF8.decodeUnsafe(q, l));
    }
    rule.hasLocal = u8_() == 1;
    const nl = u16_();
    for (let j: u32 = 0; j < nl && !broken; j++) rule.locals.push(cidr());
    const nk = u16_();
    for (let j: u32 = 0; j < nk && !broken; j++) {
      const k = new KafkaRule();
      k.rule = cfg.rules.length;
      k.index = rule.kafka.length;
      const nkeys = u16_();
      k.anyKey = nkeys == 0;
      for (let m: u32 = 0; m < nkeys && !broken; m++) {
        const key = u16_();
        if (key > 127) broken = true;
        else k.keys[key >> 5] |= 1 << (key & 31);
      }
      k.version = <i32>u32_();
      k.clientLen = i16_();
      if (k.clientLen >= 0) {
        const q = take(<usize>k.clientLen);
        if (!broken) k.client = own(q, k.clientLen);
      }
      k.topicLen = i16_();
      if (k.topicLen >= 0) {
        const q = take(<usize>k.topicLen);
        if (!broken) k.topic = own(q, k.topicLen);
      }
      rule.kafka.push(k);
    }
    cfg.rules.push(rule);
  }
  if (broken || at != stop) return null;
  return cfg;
}

// --- peers -------------------------------------------------------------------------------

/** A connection's address as 16 bytes (IPv4 in the first 4), from Envoy's `ip:port` / `[ip]:port`. */
export class Address {
  valid: bool = false;
  v6: bool = false;
  bytes: StaticArray<u8> = new StaticArray<u8>(16);
}

function hexDigit(c: i32): i32 {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  if (c >= 65 && c <= 70) return c - 55;
  return -1;
}

function parseV4(s: string, out: StaticArray<u8>, offset: i32): bool {
  const parts = s.split(".");
  if (parts.length != 4) return false;
  for (let i = 0; i < 4; i++) {
    const t = parts[i];
    if (t.length == 0 || t.length > 3) return false;
    let v = 0;
    for (let j = 0; j < t.length; j++) {
      const c = t.charCodeAt(j);
      if (c < 48 || c > 57) return false;
      v = v * 10 + c - 48;
    }
    if (v > 255) return false;
    out[offset + i] = <u8>v;
  }
  return true;
}

function parseV6(s: string, out: StaticArray<u8>): bool {
  const groups = new Array<i32>();
  let gap = -1;
  const halves = s.split("::");
  if (halves.length > 2) return false;
  for (let h = 0; h < halves.length; h++) {
    if (h == 1) gap = groups.length;
    if (halves[h].length == 0) continue;
    const parts = halves[h].split(":");
    for (let i = 0; i < parts.length; i++) {
      const t = parts[i];
      if (t.includes(".")) {
        const tmp = new StaticArray<u8>(16);
        if (i != parts.length - 1 || !parseV4(t, tmp, 0)) return false;
        groups.push((<i32>tmp[0] << 8) | tmp[1]);
        groups.push((<i32>tmp[2] << 8) | tmp[3]);
        continue;
      }
      if (t.length == 0 || t.length > 4) return false;
      let v = 0;
      for (let j = 0; j < t.length; j++) {
        const d = hexDigit(t.charCodeAt(j));
        if (d < 0) return false;
        v = (v << 4) | d;
      }
      groups.push(v);
    }
  }
  if (gap < 0 && groups.length != 8) return false;
  if (gap >= 0 && groups.length > 7) return false;
  const fill = 8 - groups.length;
  let g = 0;
  for (let i = 0; i < 8; i++) {
    let v = 0;
    if (gap >= 0 && i >= gap && i < gap + fill) v = 0;
    else v = groups[g++];
    out[2 * i] = <u8>(v >> 8);
    out[2 * i + 1] = <u8>v;
  }
  return true;
}

export function parseAddress(text: string | null): Address {
  const a = new Address();
  if (text === null) return a;
  let s = text;
  if (s.startsWith("[")) {
    const close = s.indexOf("]");
    if (close < 0) return a;
    s = s.substring(1, close);
  } else {
    const colon = s.lastIndexOf(":");
    if (colon >= 0 && s.indexOf(":") == colon) s = s.substring(0, colon);
  }
  const pct = s.indexOf("%");
  if (pct >= 0) s = s.substring(0, pct);
  if (s.includes(":")) {
    if (!parseV6(s, a.bytes)) return a;
    // An IPv4-mapped address is the IPv4 peer it stands for.
    let mapped = true;
    for (let i = 0; i < 10; i++) if (a.bytes[i] != 0) mapped = false;
    if (mapped && a.bytes[10] == 0xff && a.bytes[11] == 0xff) {
      for (let i = 0; i < 4; i++) a.bytes[i] = a.bytes[12 + i];
      a.v6 = false;
    } else a.v6 = true;
  } else {
    if (!parseV4(s, a.bytes, 0)) return a;
    a.v6 = false;
  }
  a.valid = true;
  return a;
}

function inCidr(a: Address, c: Cidr): bool {
  if (!a.valid || a.v6 != c.v6) return false;
  let bits = c.prefix;
  for (let i = 0; bits > 0; i++) {
    const mask: u32 = bits >= 8 ? 0xff : (0xff << (8 - bits)) & 0xff;
    if (((<u32>a.bytes[i]) & mask) != ((<u32>load<u8>(c.addr + i)) & mask)) return false;
    bits -= 8;
  }
  return true;
}

function inAny(a: Address, list: Array<Cidr>): bool {
  for (let i = 0; i < list.length; i++) if (inCidr(a, list[i])) return true;
  return false;
}

/** Rules whose peers (and local workloads) this connection matches. */
export function applicableRules(cfg: Config, peer: Address, local: Address, principal: string | null): Array<Rule> {
  const out = new Array<Rule>();
  for (let i = 0; i < cfg.rules.length; i++) {
    const rule = cfg.rules[i];
    if (rule.hasLocal && !inAny(local, rule.locals)) continue;
    let ok = rule.anyPeer || inAny(peer, rule.peers);
    if (!ok && principal !== null) {
      for (let j = 0; j < rule.principals.length; j++) if (rule.principals[j] == principal) ok = true;
    }
    if (ok) out.push(rule);
  }
  return out;
}

// --- decision ----------------------------------------------------------------------------

export const ALLOW: i32 = 0;
/** No rule allows this key, version and client id. */
export const DENY_REQUEST: i32 = 1;
/** Some topic is not allowed. */
export const DENY_TOPIC: i32 = 2;
/** A topic rule applies and a topic is named by id only (KIP-516), so it cannot be judged. */
export const DENY_TOPIC_UNKNOWN: i32 = 3;
/** A topic rule applies and the request carries topics this filter does not read. */
export const DENY_TOPICS_UNREAD: i32 = 4;

// The Kafka rules that matched a request with topics, by address: no managed store per request.
let topicRules = new StaticArray<usize>(16);
let topicRuleCount = 0;

function addTopicRule(k: KafkaRule): void {
  if (topicRuleCount == topicRules.length) {
    const grown = new StaticArray<usize>(2 * topicRules.length);
    memory.copy(changetype<usize>(grown), changetype<usize>(topicRules), <usize>topicRuleCount * sizeof<usize>());
    topicRules = grown;
  }
  unchecked((topicRules[topicRuleCount++] = changetype<usize>(k)));
}

@inline function topicRule(j: i32): KafkaRule {
  return changetype<KafkaRule>(unchecked(topicRules[j]));
}

/**
 * Set by the host's debug log level: `decide` then records what decided, for the filter's
 * "decision" log lines (what `meshaccel policy trace --kafka` reads).
 */
export let explain = false;
export function setExplain(on: bool): void {
  explain = on;
}
/** With `explain`: the allowing rules as "rule.kafka" ("rule.*": a rule without Kafka rules), one per topic when topics decided. */
export const decidedBy = new Array<string>();
/** With `explain`: the topic that was denied (-1: none). */
export let deniedTopic: i32 = -1;

function allowedBy(k: KafkaRule): void {
  if (explain) decidedBy.push(k.rule.toString() + "." + k.index.toString());
}

function bytesEqual(a: usize, al: i32, b: usize, bl: i32): bool {
  return al == bl && memory.compare(a, b, <usize>al) == 0;
}

function fieldsMatch(k: KafkaRule): bool {
  const key = p.apiKey;
  if (!k.anyKey && (key > 127 || (unchecked(k.keys[key >> 5]) & (1 << (key & 31))) == 0)) return false;
  if (k.version >= 0 && k.version != p.apiVersion) return false;
  if (k.clientLen >= 0 && !bytesEqual(k.clientPtr, k.clientLen, p.clientPtr, p.clientLen)) return false;
  return true;
}

/**
 * Cilium's semantics: a rule is the AND of its fields; rules are ORed; every topic of the
 * request must be allowed by some rule; the topic field constrains only requests with topics.
 * A topic named by id only is judged by the name learned for it in `scope` (its port's ids), if any.
 * The request's header and topics must have been parsed.
 */
export function decide(rules: Array<Rule>, scope: ids.Scope): i32 {
  topicRuleCount = 0;
  if (explain) {
    decidedBy.length = 0;
    deniedTopic = -1;
  }
  let matched = false;
  const nr = rules.length;
  for (let i = 0; i < nr; i++) {
    const rule = unchecked(rules[i]);
    const kafka = rule.kafka;
    const nk = kafka.length;
    if (nk == 0) {
      if (explain) decidedBy.push(i.toString() + ".*");
      return ALLOW; // a rule without Kafka rules allows all Kafka
    }
    for (let j = 0; j < nk; j++) {
      const k = unchecked(kafka[j]);
      if (!fieldsMatch(k)) continue;
      if (k.topicLen < 0) {
        allowedBy(k);
        return ALLOW;
      }
      matched = true;
      addTopicRule(k);
    }
  }
  if (!matched) return DENY_REQUEST;
  if (p.topicsKind == p.TOPICS_NONE) {
    allowedBy(topicRule(0));
    return ALLOW;
  }
  if (p.topicsKind == p.TOPICS_OPAQUE) return DENY_TOPICS_UNREAD;
  const nt = p.topicLen.length;
  for (let t = 0; t < nt; t++) {
    let ptr = p.topicPtr[t];
    let len = p.topicLen[t];
    if (len < 0) {
      const learned = ids.nameOf(scope, ptr);
      if (learned === null) {
        if (explain) deniedTopic = t;
        return DENY_TOPIC_UNKNOWN;
      }
      ptr = changetype<usize>(learned);
      len = learned.byteLength;
    }
    let by = -1;
    for (let j = 0; j < topicRuleCount && by < 0; j++) {
      const k = topicRule(j);
      if (bytesEqual(k.topicPtr, k.topicLen, ptr, len)) by = j;
    }
    if (by < 0) {
      if (explain) deniedTopic = t;
      return DENY_TOPIC;
    }
    allowedBy(topicRule(by));
  }
  return ALLOW;
}
