// meshaccel's Kafka filter: a proxy-wasm (ABI 0.2.1) network filter that judges every Kafka
// request against the newest policy for its port and answers denied ones in request order.
import * as abi from "./abi";
import { Bytes, copyOf } from "./bytes";
import * as c from "./config";
import * as p from "./protocol";
import * as r from "./reader";
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
  /** The topic ids learned on this connection's port. */
  ids: ids.Scope = new ids.Scope();
  cfg: c.Config | null = null;
  seen: u32 = 0xffffffff;
  rules: Array<c.Rule> = new Array<c.Rule>();
  peer: c.Address = new c.Address();
  local: c.Address = new c.Address();
  principal: string | null = null;
  closed: bool = false;
  tail: Bytes = new Bytes();
  // Responses expected from upstream, oldest first: a ring of `count` slots from `head`.
  slotCorr: StaticArray<i32> = new StaticArray<i32>(16);
  slotKind: StaticArray<i32> = new StaticArray<i32>(16);
  slotData: StaticArray<usize> = new StaticArray<usize>(16);
  slotLen: StaticArray<usize> = new StaticArray<usize>(16);
  slotVersion: StaticArray<i32> = new StaticArray<i32>(16);
  head: i32 = 0;
  count: i32 = 0;
  // Upstream frame being passed through.
  hdr: Bytes = new Bytes();
  remain: usize = 0;
  sized: bool = false;
  merge: Bytes = new Bytes();
  // The Metadata response being learned from outgrew MAX_LEARN_BYTES: nothing is learned from it.
  learnSkip: bool = false;

  pending(): i32 {
    return this.count;
  }

  push(corr: i32, kind: i32, data: usize, len: usize, version: i32): void {
    if (this.count == this.slotCorr.length) this.grow();
    const i = (this.head + this.count) & (this.slotCorr.length - 1);
    unchecked((this.slotCorr[i] = corr));
    unchecked((this.slotKind[i] = kind));
    unchecked((this.slotData[i] = data));
    unchecked((this.slotLen[i] = len));
    unchecked((this.slotVersion[i] = version));
    this.count++;
  }

  private grow(): void {
    const n = this.slotCorr.length;
    const corr = new StaticArray<i32>(2 * n);
    const kind = new StaticArray<i32>(2 * n);
    const data = new StaticArray<usize>(2 * n);
    const len = new StaticArray<usize>(2 * n);
    const version = new StaticArray<i32>(2 * n);
    for (let k = 0; k < this.count; k++) {
      const i = (this.head + k) & (n - 1);
      corr[k] = this.slotCorr[i];
      kind[k] = this.slotKind[i];
      data[k] = this.slotData[i];
      len[k] = this.slotLen[i];
      version[k] = this.slotVersion[i];
    }
    this.slotCorr = corr;
    this.slotKind = kind;
    this.slotData = data;
    this.slotLen = len;
    this.slotVersion = version;
    this.head = 0;
  }

  // The oldest slot (callers check pending() first).
  get headCorr(): i32 { return unchecked(this.slotCorr[this.head]); }
  get headKind(): i32 { return unchecked(this.slotKind[this.head]); }
  get headData(): usize { return unchecked(this.slotData[this.head]); }
  get headLen(): usize { return unchecked(this.slotLen[this.head]); }
  get headVersion(): i32 { return unchecked(this.slotVersion[this.head]); }

  pop(): void {
    if (this.headData != 0) heap.free(this.headData);
    this.head = (this.head + 1) & (this.slotCorr.length - 1);
    this.count--;
  }

  release(): void {
    while (this.count > 0) this.pop();
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
  return abi.allocate(size);
}

export function malloc(size: usize): usize {
  return abi.allocate(size);
}

export function proxy_on_context_create(id: u32, parent: u32): void {
  if (parent == 0) {
    roots.set(id, "");
    return;
  }
  const conn = new Conn();
  conn.name = roots.has(parent) ? roots.get(parent) : "";
  conn.ids = ids.scopeOf(conn.name);
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

/** Bytes read per window from the host's buffer: a frame's header and topics, or several small frames. */
const WINDOW: usize = abi.SCRATCH_BYTES;

/**
 * Judges complete frames from the start of the host's downstream buffer in place: only the
 * windows where fields are read are copied in (never a Produce's records). Stops at the first
 * frame that is not simply allowed (denied, malformed, partial, beyond the in-flight bound),
 * leaving it to the copying path; returns the offset reached.
 */
function judgeInPlace(conn: Conn, cfg: c.Config, size: usize): usize {
  let off: usize = 0;
  let winStart: usize = 0;
  let winEnd: usize = 0;
  let win: usize = 0;
  let allowed: i64 = 0;
  while (size - off >= 4) {
    if (off + 4 > winEnd) {
      win = abi.getBufferScratch(abi.BUFFER_DOWNSTREAM, off, min<usize>(size - off, WINDOW));
      if (win == 0) break;
      winStart = off;
      winEnd = off + abi.lastBufferLength();
      if (winEnd - off < 4) break;
    }
    const flen = <i64><i32>bswap<u32>(load<u32>(win + off - winStart));
    if (flen < 10 || flen > <i64>cfg.maxFrame || <i64>(size - off - 4) < flen) break;
    if (conn.pending() >= MAX_IN_FLIGHT) break;
    const fend = off + 4 + <usize>flen;
    r.resetWindowed(off + 4, fend, abi.BUFFER_DOWNSTREAM, winStart, winEnd, win);
    const ok = p.parseHeader() && p.parseTopics() && c.decide(conn.rules, conn.ids) == c.ALLOW;
    r.releaseWindows();
    if (!ok) break;
    if (c.explain) explainDecision(c.ALLOW);
    allowed++;
    if (!(p.apiKey == 0 && p.acks == 0)) conn.push(p.correlationId, p.apiKey == 3 && p.apiVersion >= 10 ? LEARN : PASS, 0, 0, p.apiVersion);
    off = fend;
  }
  abi.addToCounter(mAllowed, allowed);
  return off;
}

export function proxy_on_downstream_data(id: u32, size: usize, eos: i32): i32 {
  const found = connOf(id);
  if (found === null) return CONTINUE;
  const conn = found;
  if (conn.closed) return STOP;
  if (!refresh(conn)) return close(conn, mMalformed, "no configuration for " + conn.name);
  const cfg = conn.cfg!;
  if (size == 0) return CONTINUE;
  const carried = conn.tail.len > 0;
  // The frames judged in place pass as they are; the copying path takes over from the first
  // that needs more (a denial to answer, a partial frame to keep, a connection to close).
  const from: usize = carried ? 0 : judgeInPlace(conn, cfg, size);
  if (from == size) return CONTINUE;
  const fresh = abi.getBuffer(abi.BUFFER_DOWNSTREAM, 0, size);
  if (fresh == 0) return close(conn, mMalformed, "downstream data unreadable");
  // Without a saved partial frame the host's bytes are parsed in place.
  if (carried) conn.tail.append(fresh, size);
  const data = carried ? conn.tail.ptr : fresh;
  const n = carried ? conn.tail.len : size;
  let modified = carried;
  out.len = 0;
  let off: usize = from;
  while (n - off >= 4) {
    const flen = <i64><i32>bswap<u32>(load<u32>(data + off));
    if (flen < 10 || flen > <i64>cfg.maxFrame) {
      heap.free(fresh);
      return close(conn, mMalformed, "impossible Kafka frame length " + flen.toString() + " (not Kafka, or TLS)");
    }
    if (<i64>(n - off - 4) < flen) break;
    const fstart = data + off;
    const fend = fstart + 4 + <usize>flen;
    r.reset(fstart + 4, fend, false);
    if (!p.parseHeader() || !p.parseTopics()) {
      heap.free(fresh);
      return close(conn, mMalformed, "malformed Kafka request (api key " + p.apiKey.toString() + " version " + p.apiVersion.toString() + ")");
    }
    const d = c.decide(conn.rules, conn.ids);
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
        heap.free(fresh);
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
      heap.free(fresh);
      return close(conn, mMalformed, "more than " + MAX_IN_FLIGHT.toString() + " requests in flight");
    }
    off += 4 + <usize>flen;
  }
  // A partial frame whose length is already impossible is refused before it is buffered.
  if (!modified && off == n) {
    heap.free(fresh);
    return CONTINUE;
  }
  if (!modified) out.append(data, off);
  if (carried) conn.tail.consume(off);
  else conn.tail.append(data + off, n - off);
  conn.tail.shrink();
  abi.setBuffer(abi.BUFFER_DOWNSTREAM, 0, size, out.ptr, out.len);
  heap.free(fresh);
  out.shrink();
  return CONTINUE;
}

const up = new Bytes();

/**
 * Passes the responses that go to the client unchanged (PASS) from the start of the host's
 * upstream buffer, reading only their 8-byte headers; stops at the first response that needs
 * more (a synthesized answer, a Metadata response to learn from or merge into, a header split
 * across callbacks, a protocol error) and returns the offset reached.
 */
function passInPlace(conn: Conn, size: usize): usize {
  let off: usize = 0;
  let winStart: usize = 0;
  let winEnd: usize = 0;
  let win: usize = 0;
  while (off < size) {
    if (!conn.sized) {
      if (conn.hdr.len != 0 || conn.pending() == 0 || conn.headKind != PASS || size - off < 8) break;
      if (off + 8 > winEnd) {
        win = abi.getBufferScratch(abi.BUFFER_UPSTREAM, off, min<usize>(size - off, WINDOW));
        if (win == 0) break;
        winStart = off;
        winEnd = off + abi.lastBufferLength();
        if (winEnd - off < 8) break;
      }
      const rlen = <i64><i32>bswap<u32>(load<u32>(win + off - winStart));
      const corr = <i32>bswap<u32>(load<u32>(win + off - winStart + 4));
      if (rlen < 4 || corr != conn.headCorr) break;
      conn.remain = <usize>(rlen - 4);
      conn.sized = true;
      off += 8;
    } else if (conn.headKind != PASS) break;
    const take = min<usize>(conn.remain, size - off);
    conn.remain -= take;
    off += take;
    if (conn.remain == 0) {
      conn.pop();
      conn.hdr.len = 0; // the copying path may have read this response's header
      conn.sized = false;
    }
  }
  return off;
}

export function proxy_on_upstream_data(id: u32, size: usize, eos: i32): i32 {
  const found = connOf(id);
  if (found === null) return CONTINUE;
  const conn = found;
  if (conn.closed) return STOP;
  if (size == 0) return CONTINUE;
  // The responses passed in place go on as they are; the copying path takes over from the
  // first that needs more.
  const from = passInPlace(conn, size);
  if (from == size) return CONTINUE;
  const data = abi.getBuffer(abi.BUFFER_UPSTREAM, 0, size);
  if (data == 0) return close(conn, mProtocol, "upstream data unreadable");
  let modified = false;
  up.len = 0;
  let off: usize = from;
  while (off < size) {
    if (!conn.sized && conn.hdr.len == 0) {
      if (conn.pending() == 0) {
        heap.free(data);
        return close(conn, mProtocol, "upstream sent a response to no request");
      }
      const kind = conn.headKind;
      if (kind == res.REPLACE) {
        if (!modified) { modified = true; up.append(data, off); }
        up.append(conn.headData, conn.headLen);
      }
    }
    const kind = conn.headKind;
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
      if (rlen < 4 || corr != conn.headCorr) {
        heap.free(data);
        return close(conn, mProtocol, "upstream response out of order or malformed (correlation id " + corr.toString() + ", expected " + conn.headCorr.toString() + ")");
      }
      conn.remain = <usize>(rlen - 4);
      conn.sized = true;
    } else conn.remain -= take;
    if (conn.sized && conn.remain == 0) {
      if (kind == res.MERGE_METADATA) {
        if (!res.mergeMetadata(conn.merge.ptr, conn.merge.len, conn.headVersion, conn.headData, conn.headLen)) {
          heap.free(data);
          return close(conn, mProtocol, "carrier Metadata response not understood");
        }
        up.append(w.buf, w.len);
        conn.merge.len = 0;
        conn.merge.shrink();
      } else if (kind == LEARN) {
        // A response too large to keep, or one this filter cannot read, teaches nothing: it
        // still passes (the broker's answer is the client's business), and ids stay unknown.
        if (!conn.learnSkip) ids.learnFromMetadata(conn.ids, conn.merge.ptr, conn.merge.len, conn.headVersion);
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
