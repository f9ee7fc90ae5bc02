// meshaccel's Kafka filter: a proxy-wasm (ABI 0.2.1) network filter that judges every Kafka
// request against the newest policy for its port and answers denied ones in request order.
import * as abi from "./abi";
import { Bytes, copyOf } from "./bytes";
import * as c from "./config";
import * as p from "./protocol";
import * as res from "./responses";
import * as ids from "./topic-ids";
import * as w from "./writer";


const CONTINUE: i32 = 0;
const STOP: i32 = 1;

/** Responses outstanding per connection; more is a client this filter refuses to track. */
const MAX_IN_FLIGHT: i32 = 4096;
const DEFAULT_MAX_FRAME: u32 = 100 * 1024 * 1024;

// Slot kinds: what the filter does with the upstream response at that position.
const PASS: i32 = 0;
// Passes unchanged, and is read on the way: a Metadata v10+ answer, whose topic ids are learned.
const LEARN: i32 = 4;
/** Metadata responses larger than this are passed without learning from them. */
const MAX_LEARN_BYTES: usize = 8 * 1024 * 1024;

class Conn {
  name: string = "";
  cfg: c.Config | null = null;
  seen: u32 = 0xffffffff;
  rules: Array<c.Rule> = new Array<c.Rule>();
  peer: c.Address = new c.Address();
  local: c.Address = new c.Address();
  principal: string | null = null;
  closed: bool = false;
  tail: Bytes = new Bytes();
  // Responses expected from upstream, oldest first (from `head`).
  slotCorr: Array<i32> = new Array<i32>();
  slotKind: Array<i32> = new Array<i32>();
  slotData: Array<usize> = new Array<usize>();
  slotLen: Array<usize> = new Array<usize>();
  slotVersion: Array<i32> = new Array<i32>();
  head: i32 = 0;
  // Upstream frame being passed through.
  hdr: Bytes = new Bytes();
  remain: usize = 0;
  sized: bool = false;
  merge: Bytes = new Bytes();
  // The Metadata response being learned from outgrew MAX_LEARN_BYTES: nothing is learned from it.
  learnSkip: bool = false;

  pending(): i32 {
    return this.slotCorr.length - this.head;
  }

  push(corr: i32, kind: i32, data: usize, len: usize, version: i32): void {
    this.slotCorr.push(corr);
    this.slotKind.push(kind);
    this.slotData.push(data);
    this.slotLen.push(len);
    this.slotVersion.push(version);
  }

  pop(): void {
    if (this.slotData[this.head] != 0) heap.free(this.slotData[this.head]);
    this.head++;
    if (this.head > 64 && this.head * 2 > this.slotCorr.length) {
      this.slotCorr = this.slotCorr.slice(this.head);
      this.slotKind = this.slotKind.slice(this.head);
      this.slotData = this.slotData.slice(this.head);
      this.slotLen = this.slotLen.slice(this.head);
      this.slotVersion = this.slotVersion.slice(this.head);
      this.head = 0;
    }
  }

  release(): void {
    for (let i = this.head; i < this.slotData.length; i++) if (this.slotData[i] != 0) heap.free(this.slotData[i]);
    this.tail.free();
    this.hdr.free();
    this.merge.free();
  }
}

const roots = new Map<u32, string>();
const configs = new Map<string, c.Config>();
/** Bumped by every configuration: connections re-read the newest one for their port. */
let generation: u32 = 0;
const conns = new Map<u32, Conn>();
// Data callbacks come in runs on one connection: one map lookup per run, not per callback.
let lastId: u32 = 0;
let lastConn: Conn | null = null;

function connOf(id: u32): Conn | null {
  if (id == lastId && lastConn !== null) return lastConn;
  if (!conns.has(id)) return null;
  lastId = id;
  lastConn = conns.get(id);
  return lastConn;
}

let mAllowed: u32 = 0xffffffff;
let mDenied: u32 = 0xffffffff;
let mAnswered: u32 = 0xffffffff;
let mDeniedClosed: u32 = 0xffffffff;
let mMalformed: u32 = 0xffffffff;
let mTopicUnknown: u32 = 0xffffffff;
let mProtocol: u32 = 0xffffffff;
let metricsDefined = false;

function defineMetrics(): void {
  if (metricsDefined) return;
  metricsDefined = true;
  mAllowed = abi.defineCounter("meshaccel_kafka.requests_allowed");
  mDenied = abi.defineCounter("meshaccel_kafka.requests_denied");
  mAnswered = abi.defineCounter("meshaccel_kafka.denied_answered");
  mDeniedClosed = abi.defineCounter("meshaccel_kafka.denied_closed");
  mMalformed = abi.defineCounter("meshaccel_kafka.malformed_closed");
  mTopicUnknown = abi.defineCounter("meshaccel_kafka.topic_unknown_denied");
  mProtocol = abi.defineCounter("meshaccel_kafka.upstream_protocol_closed");
}

export function proxy_abi_version_0_2_1(): void {}

export function proxy_on_memory_allocate(size: usize): usize {
  return heap.alloc(size == 0 ? 1 : size);
}

export function malloc(size: usize): usize {
  return heap.alloc(size == 0 ? 1 : size);
}

export function proxy_on_context_create(id: u32, parent: u32): void {
  if (parent == 0) {
    roots.set(id, "");
    return;
  }
  const conn = new Conn();
  conn.name = roots.has(parent) ? roots.get(parent) : "";
  conns.set(id, conn);
}

export function proxy_on_vm_start(root: u32, size: usize): i32 {
  defineMetrics();
  return 1;
}

export function proxy_on_configure(root: u32, size: usize): i32 {
  defineMetrics();
  const ptr = abi.getBuffer(abi.BUFFER_PLUGIN_CONFIGURATION, 0, size);
  if (ptr == 0) {
    abi.log(abi.LOG_ERROR, "kafka filter: no plugin configuration");
    return 0;
  }
  const cfg = c.parseConfig(ptr, abi.lastBufferLength());
  heap.free(ptr);
  if (cfg === null) {
    abi.log(abi.LOG_ERROR, "kafka filter: the plugin configuration is not a meshaccel Kafka filter configuration (MKF1)");
    return 0;
  }
  if (cfg.maxFrame == 0) cfg.maxFrame = DEFAULT_MAX_FRAME;
  c.setExplain(abi.logLevel() <= abi.LOG_DEBUG);
  cfg.generation = ++generation;
  configs.set(cfg.name, cfg);
  roots.set(root, cfg.name);
  abi.log(abi.LOG_INFO, "kafka filter: " + cfg.name + " configured with " + cfg.rules.length.toString() + " rules (generation " + cfg.generation.toString() + ")");
  return 1;
}

export function proxy_on_new_connection(id: u32): i32 {
  if (!conns.has(id)) return CONTINUE;
  const conn = conns.get(id);
  const src = c.parseAddress(abi.getProperty("source.address"));
  const dst = c.parseAddress(abi.getProperty("destination.address"));
  const egress = configs.has(conn.name) && configs.get(conn.name).egress;
  conn.peer = egress ? dst : src;
  conn.local = egress ? src : dst;
  conn.principal = abi.getProperty("connection.uri_san_peer_certificate");
  return CONTINUE;
}

function close(conn: Conn, metric: u32, why: string): i32 {
  abi.incrementCounter(metric);
  abi.log(abi.LOG_WARN, "kafka filter: closing connection: " + why);
  conn.closed = true;
  abi.closeDownstream();
  return STOP;
}

function refresh(conn: Conn): bool {
  if (conn.seen == generation) return conn.cfg !== null;
  conn.seen = generation;
  if (!configs.has(conn.name)) {
    conn.cfg = null;
    return false;
  }
  const cfg = configs.get(conn.name);
  conn.cfg = cfg;
  conn.rules = c.applicableRules(cfg, conn.peer, conn.local, conn.principal);
  return true;
}

function reasonText(d: i32): string {
  if (d == c.DENY_REQUEST) return "no rule allows this api key, version and client id";
  if (d == c.DENY_TOPIC) return "a topic is not allowed";
  if (d == c.DENY_TOPIC_UNKNOWN) return "a topic rule applies and the request names a topic by an id (KIP-516) that no Metadata response on this port has named";
  return "a topic rule applies and this filter does not read this request's topics";
}

function clientText(): string {
  return p.clientLen < 0 ? "null" : String.UTF8.decodeUnsafe(p.clientPtr, <usize>p.clientLen);
}

function topicText(t: i32): string {
  if (p.topicLen[t] >= 0) return String.UTF8.decodeUnsafe(p.topicPtr[t], <usize>p.topicLen[t]);
  let hex = "id:";
  for (let i: usize = 0; i < 16; i++) {
    const b = load<u8>(p.topicPtr[t] + i);
    hex += (b < 16 ? "0" : "") + b.toString(16);
  }
  return hex;
}

/** The decision as one debug line: `decision allow by=R.K,...` or `decision deny reason=N topic=T`. */
function explainDecision(d: i32): void {
  let line = "kafka filter: decision " + (d == c.ALLOW ? "allow" : "deny") + " api_key=" + p.apiKey.toString() + " version=" + p.apiVersion.toString();
  if (d == c.ALLOW) line += " by=" + c.decidedBy.join(",");
  else {
    line += " reason=" + d.toString();
    if (c.deniedTopic >= 0) line += " topic=" + topicText(c.deniedTopic);
  }
  abi.log(abi.LOG_DEBUG, line);
}

// Output of one downstream callback, materialised only when it differs from the input.
const out = new Bytes();

export function proxy_on_downstream_data(id: u32, size: usize, eos: i32): i32 {
  const found = connOf(id);
  if (found === null) return CONTINUE;
  const conn = found;
  if (conn.closed) return STOP;
  if (!refresh(conn)) return close(conn, mMalformed, "no configuration for " + conn.name);
  const cfg = conn.cfg!;
  let fresh: usize = 0;
  if (size > 0) {
    fresh = abi.getBuffer(abi.BUFFER_DOWNSTREAM, 0, size);
    if (fresh == 0) return close(conn, mMalformed, "downstream data unreadable");
  }
  // Without a saved partial frame the host's bytes are parsed in place.
  const carried = conn.tail.len > 0;
  if (carried) conn.tail.append(fresh, size);
  const data = carried ? conn.tail.ptr : fresh;
  const n = carried ? conn.tail.len : size;
  let modified = carried;
  out.len = 0;
  let off: usize = 0;
  while (n - off >= 4) {
    const flen = <i64><i32>bswap<u32>(load<u32>(data + off));
    if (flen < 10 || flen > <i64>cfg.maxFrame) {
      if (fresh != 0) heap.free(fresh);
      return close(conn, mMalformed, "impossible Kafka frame length " + flen.toString() + " (not Kafka, or TLS)");
    }
    if (<i64>(n - off - 4) < flen) break;
    const fstart = data + off;
    const fend = fstart + 4 + <usize>flen;
    if (!p.parseHeader(fstart + 4, fend) || !p.parseTopics()) {
      if (fresh != 0) heap.free(fresh);
      return close(conn, mMalformed, "malformed Kafka request (api key " + p.apiKey.toString() + " version " + p.apiVersion.toString() + ")");
    }
    const d = c.decide(conn.rules, conn.name);
    if (c.explain) explainDecision(d);
    if (d == c.ALLOW) {
      abi.incrementCounter(mAllowed);
      if (modified) out.append(fstart, fend - fstart);
      if (!(p.apiKey == 0 && p.acks == 0)) conn.push(p.correlationId, p.apiKey == 3 && p.apiVersion >= 10 ? LEARN : PASS, 0, 0, p.apiVersion);
    } else {
      abi.incrementCounter(mDenied);
      if (d == c.DENY_TOPIC_UNKNOWN) abi.incrementCounter(mTopicUnknown);
      const how = res.treatment(p.apiKey, p.apiVersion);
      abi.log(abi.LOG_INFO, "kafka filter: denied api_key=" + p.apiKey.toString() + " version=" + p.apiVersion.toString() + " client_id=" + clientText() + ": " + reasonText(d));
      if (c.explain) abi.log(abi.LOG_DEBUG, how == res.CLOSE ? "kafka filter: answer close" : how == res.SILENT ? "kafka filter: answer none" : "kafka filter: answer code=" + res.errorCode(d != c.DENY_REQUEST).toString());
      if (how == res.CLOSE) {
        if (fresh != 0) heap.free(fresh);
        return close(conn, mDeniedClosed, "denied api key " + p.apiKey.toString() + " has no authorization-failed response this filter builds");
      }
      if (!modified) {
        modified = true;
        out.append(data, off);
      }
      if (how != res.SILENT) {
        const code = res.errorCode(d != c.DENY_REQUEST);
        let kept: usize = 0;
        let keptLen: usize = 0;
        if (how == res.MERGE_METADATA) res.metadataTopics(code);
        else res.build(code);
        kept = copyOf(w.buf, w.len);
        keptLen = w.len;
        res.carrier(how == res.MERGE_METADATA);
        out.append(w.buf, w.len);
        conn.push(p.correlationId, how, kept, keptLen, p.apiVersion);
        abi.incrementCounter(mAnswered);
      }
    }
    if (conn.pending() > MAX_IN_FLIGHT) {
      if (fresh != 0) heap.free(fresh);
      return close(conn, mMalformed, "more than " + MAX_IN_FLIGHT.toString() + " requests in flight");
    }
    off += 4 + <usize>flen;
  }
  // A partial frame whose length is already impossible is refused before it is buffered.
  if (!modified && off == n) {
    if (fresh != 0) heap.free(fresh);
    return CONTINUE;
  }
  if (!modified) out.append(data, off);
  if (carried) conn.tail.consume(off);
  else conn.tail.append(data + off, n - off);
  conn.tail.shrink();
  abi.setBuffer(abi.BUFFER_DOWNSTREAM, 0, size, out.ptr, out.len);
  if (fresh != 0) heap.free(fresh);
  out.shrink();
  return CONTINUE;
}

const up = new Bytes();

export function proxy_on_upstream_data(id: u32, size: usize, eos: i32): i32 {
  const found = connOf(id);
  if (found === null) return CONTINUE;
  const conn = found;
  if (conn.closed) return STOP;
  if (size == 0) return CONTINUE;
  // Inside a response that passes unchanged (a large Fetch answer): nothing to read.
  if (conn.sized && conn.remain >= size && conn.slotKind[conn.head] == PASS) {
    conn.remain -= size;
    if (conn.remain == 0) {
      conn.pop();
      conn.hdr.len = 0;
      conn.sized = false;
    }
    return CONTINUE;
  }
  const data = abi.getBuffer(abi.BUFFER_UPSTREAM, 0, size);
  if (data == 0) return close(conn, mProtocol, "upstream data unreadable");
  let modified = false;
  up.len = 0;
  let off: usize = 0;
  while (off < size) {
    if (!conn.sized && conn.hdr.len == 0) {
      if (conn.pending() == 0) {
        heap.free(data);
        return close(conn, mProtocol, "upstream sent a response to no request");
      }
      const kind = conn.slotKind[conn.head];
      if (kind == res.REPLACE) {
        if (!modified) { modified = true; up.append(data, off); }
        up.append(conn.slotData[conn.head], conn.slotLen[conn.head]);
      }
    }
    const kind = conn.slotKind[conn.head];
    let take: usize;
    if (!conn.sized) {
      take = min<usize>(8 - conn.hdr.len, size - off);
      conn.hdr.append(data + off, take);
    } else take = min<usize>(conn.remain, size - off);
    if (kind == PASS || kind == LEARN) {
      if (modified) up.append(data + off, take);
      if (kind == LEARN && !conn.learnSkip) {
        if (conn.merge.len + take <= MAX_LEARN_BYTES) conn.merge.append(data + off, take);
        else conn.learnSkip = true;
      }
    } else {
      if (!modified) { modified = true; up.append(data, off); }
      if (kind == res.MERGE_METADATA) conn.merge.append(data + off, take);
    }
    off += take;
    if (!conn.sized) {
      if (conn.hdr.len < 8) continue;
      const rlen = <i64><i32>bswap<u32>(load<u32>(conn.hdr.ptr));
      const corr = <i32>bswap<u32>(load<u32>(conn.hdr.ptr + 4));
      if (rlen < 4 || corr != conn.slotCorr[conn.head]) {
        heap.free(data);
        return close(conn, mProtocol, "upstream response out of order or malformed (correlation id " + corr.toString() + ", expected " + conn.slotCorr[conn.head].toString() + ")");
      }
      conn.remain = <usize>(rlen - 4);
      conn.sized = true;
    } else conn.remain -= take;
    if (conn.sized && conn.remain == 0) {
      if (kind == res.MERGE_METADATA) {
        if (!res.mergeMetadata(conn.merge.ptr, conn.merge.len, conn.slotVersion[conn.head], conn.slotData[conn.head], conn.slotLen[conn.head])) {
          heap.free(data);
          return close(conn, mProtocol, "carrier Metadata response not understood");
        }
        up.append(w.buf, w.len);
        conn.merge.len = 0;
        conn.merge.shrink();
      } else if (kind == LEARN) {
        // A response too large to keep, or one this filter cannot read, teaches nothing: it
        // still passes (the broker's answer is the client's business), and ids stay unknown.
        if (!conn.learnSkip) ids.learnFromMetadata(conn.name, conn.merge.ptr, conn.merge.len, conn.slotVersion[conn.head]);
        conn.learnSkip = false;
        conn.merge.len = 0;
        conn.merge.shrink();
      }
      conn.pop();
      conn.hdr.len = 0;
      conn.sized = false;
    }
  }
  if (modified) abi.setBuffer(abi.BUFFER_UPSTREAM, 0, size, up.ptr, up.len);
  heap.free(data);
  up.shrink();
  return CONTINUE;
}

export function proxy_on_downstream_connection_close(id: u32, peer: i32): void {}
export function proxy_on_upstream_connection_close(id: u32, peer: i32): void {}

export function proxy_on_done(id: u32): i32 {
  return 1;
}

export function proxy_on_log(id: u32): void {}

export function proxy_on_delete(id: u32): void {
  if (conns.has(id)) {
    conns.get(id).release();
    conns.delete(id);
  }
  if (id == lastId) lastConn = null;
  roots.delete(id);
}
