// Responses for requests the filter does not forward, built from the request itself, plus the
// carrier request that takes a denied request's place upstream so that its answer has upstream
// data to ride on (proxy-wasm cannot write toward the client on its own).
import * as p from "./protocol";
import * as r from "./reader";
import * as w from "./writer";

export const TOPIC_AUTHORIZATION_FAILED: i32 = 29;
export const GROUP_AUTHORIZATION_FAILED: i32 = 30;
export const TRANSACTIONAL_ID_AUTHORIZATION_FAILED: i32 = 53;

/** How a denied request is answered. */
export const CLOSE: i32 = 0; // no response can be built: close the connection
export const REPLACE: i32 = 1; // the carrier's response is replaced by the synthesized one
export const MERGE_METADATA: i32 = 2; // the carrier's (topic-less) Metadata response gets the denied topics
export const SILENT: i32 = 3; // Produce with acks=0: the client expects no response

export function treatment(key: i32, version: i32): i32 {
  switch (key) {
    case 0: return p.acks == 0 ? SILENT : REPLACE;
    case 1: case 2: case 8: case 10: case 11: case 12: case 13: case 14: return REPLACE;
    case 9: return version <= 7 ? REPLACE : CLOSE;
    case 3: return version >= 1 ? MERGE_METADATA : CLOSE;
  }
  return CLOSE;
}

function isGroupKey(key: i32): bool {
  return key == 8 || key == 9 || (key >= 10 && key <= 14);
}

/** The error code a denial reports: group keys denied as a whole report the group error. */
export function errorCode(topicDenial: bool): i32 {
  if (p.apiKey == 10 && p.keyType == 1) return TRANSACTIONAL_ID_AUTHORIZATION_FAILED;
  if (!topicDenial && isGroupKey(p.apiKey)) return GROUP_AUTHORIZATION_FAILED;
  return TOPIC_AUTHORIZATION_FAILED;
}

function topicName(t: i32, byId: bool): void {
  if (byId) {
    if (p.topicLen[t] == p.UNKNOWN_TOPIC) w.raw(p.topicPtr[t], 16);
    else { w.int64(0); w.int64(0); }
  } else w.str(p.topicPtr[t], p.topicLen[t] < 0 ? -1 : p.topicLen[t]);
}

function partsOf(t: i32): i32 {
  const end = t + 1 < p.topicPartStart.length ? p.topicPartStart[t + 1] : p.partitions.length;
  return end - p.topicPartStart[t];
}

function header(): void {
  w.start(false);
  w.int32(0); // length, patched
  w.int32(p.correlationId);
  const flex = p.isFlexible(p.apiKey, p.apiVersion);
  w.setFlex(flex);
  w.tags(); // response header v1 in flexible versions
}

/** Builds the synthesized response for the request just parsed into writer's buffer. */
export function build(code: i32): void {
  const v = p.apiVersion;
  header();
  const nt = p.topicLen.length;
  switch (p.apiKey) {
    case 0: {
      w.array(nt);
      for (let t = 0; t < nt; t++) {
        topicName(t, v >= 13);
        const np = partsOf(t);
        w.array(np);
        for (let j = 0; j < np; j++) {
          w.int32(p.partitions[p.topicPartStart[t] + j]);
          w.int16(code);
          w.int64(-1);
          if (v >= 2) w.int64(-1);
          if (v >= 5) w.int64(-1);
          if (v >= 8) { w.array(0); w.nullStr(); }
          w.tags();
        }
        w.tags();
      }
      if (v >= 1) w.int32(0);
      break;
    }
    case 1: {
      if (v >= 1) w.int32(0);
      if (v >= 7) { w.int16(0); w.int32(0); }
      w.array(nt);
      for (let t = 0; t < nt; t++) {
        topicName(t, v >= 13);
        const np = partsOf(t);
        w.array(np);
        for (let j = 0; j < np; j++) {
          w.int32(p.partitions[p.topicPartStart[t] + j]);
          w.int16(code);
          w.int64(-1); // high_watermark
          if (v >= 4) w.int64(-1); // last_stable_offset
          if (v >= 5) w.int64(-1); // log_start_offset
          if (v >= 4) w.array(0); // aborted_transactions
          if (v >= 11) w.int32(-1); // preferred_read_replica
          w.emptyBytes(); // records
          w.tags();
        }
        w.tags();
      }
      break;
    }
    case 2: {
      if (v >= 2) w.int32(0);
      w.array(nt);
      for (let t = 0; t < nt; t++) {
        topicName(t, false);
        const np = partsOf(t);
        w.array(np);
        for (let j = 0; j < np; j++) {
          w.int32(p.partitions[p.topicPartStart[t] + j]);
          w.int16(code);
          if (v == 0) w.array(0);
          else { w.int64(-1); w.int64(-1); }
          if (v >= 4) w.int32(-1);
          w.tags();
        }
        w.tags();
      }
      break;
    }
    case 8: {
      if (v >= 3) w.int32(0);
      w.array(nt);
      for (let t = 0; t < nt; t++) {
        topicName(t, v >= 10);
        const np = partsOf(t);
        w.array(np);
        for (let j = 0; j < np; j++) {
          w.int32(p.partitions[p.topicPartStart[t] + j]);
          w.int16(code);
          w.tags();
        }
        w.tags();
      }
      break;
    }
    case 9: {
      if (v >= 3) w.int32(0);
      w.array(nt);
      for (let t = 0; t < nt; t++) {
        topicName(t, false);
        const np = partsOf(t);
        w.array(np);
        for (let j = 0; j < np; j++) {
          w.int32(p.partitions[p.topicPartStart[t] + j]);
          w.int64(-1);
          if (v >= 5) w.int32(-1);
          w.emptyStr();
          w.int16(code);
          w.tags();
        }
        w.tags();
      }
      if (v >= 2) w.int16(code);
      break;
    }
    case 10: {
      if (v == 0) { w.int16(code); w.int32(-1); w.emptyStr(); w.int32(-1); break; }
      w.int32(0);
      if (v <= 3) { w.int16(code); w.nullStr(); w.int32(-1); w.emptyStr(); w.int32(-1); break; }
      const nk = p.keyLen.length;
      w.array(nk);
      for (let k = 0; k < nk; k++) {
        w.str(p.keyPtr[k], p.keyLen[k]);
        w.int32(-1);
        w.emptyStr();
        w.int32(-1);
        w.int16(code);
        w.nullStr();
        w.tags();
      }
      break;
    }
    case 11: {
      if (v >= 2) w.int32(0);
      w.int16(code);
      w.int32(-1); // generation_id
      if (v >= 7) { w.nullStr(); w.nullStr(); } else w.emptyStr(); // protocol_type, protocol_name
      w.emptyStr(); // leader
      if (v >= 9) w.int8(0); // skip_assignment
      w.emptyStr(); // member_id
      w.array(0);
      break;
    }
    case 12: {
      if (v >= 1) w.int32(0);
      w.int16(code);
      break;
    }
    case 13: {
      if (v >= 1) w.int32(0);
      w.int16(code);
      if (v >= 3) w.array(0);
      break;
    }
    case 14: {
      if (v >= 1) w.int32(0);
      w.int16(code);
      if (v >= 5) { w.nullStr(); w.nullStr(); }
      w.emptyBytes();
      break;
    }
  }
  w.tags();
  w.finishFrame();
}

/** The denied topics of a Metadata request as response entries (merged into the carrier's answer). */
export function metadataTopics(code: i32): void {
  const v = p.apiVersion;
  w.start(p.isFlexible(3, v));
  const nt = p.topicLen.length;
  w.array(nt);
  for (let t = 0; t < nt; t++) {
    w.int16(code);
    if (v >= 10) {
      const known = p.topicLen[t] >= 0;
      w.str(p.topicPtr[t], known ? p.topicLen[t] : -1);
      if (known) { w.int64(0); w.int64(0); } else w.raw(p.topicPtr[t], 16);
    } else w.str(p.topicPtr[t], p.topicLen[t] < 0 ? 0 : p.topicLen[t]);
    if (v >= 1) w.int8(0); // is_internal
    w.array(0); // partitions
    if (v >= 8) w.int32(<i32>0x80000000); // topic_authorized_operations: not requested
    w.tags();
  }
}

/** A request the broker always answers and that changes nothing: ApiVersions v0, or a topic-less Metadata. */
export function carrier(metadata: bool): void {
  const v = metadata ? p.apiVersion : 0;
  const flex = metadata && p.isFlexible(3, v);
  w.start(false);
  w.int32(0);
  w.int16(metadata ? 3 : 18);
  w.int16(v);
  w.int32(p.correlationId);
  w.int16(-1); // client_id: null
  w.setFlex(flex);
  w.tags();
  if (metadata) {
    w.array(0); // no topics
    if (v >= 4) w.int8(0); // allow_auto_topic_creation
    if (v >= 8 && v <= 10) w.int8(0); // include_cluster_authorized_operations
    if (v >= 8) w.int8(0); // include_topic_authorized_operations
    w.tags();
  }
  w.finishFrame();
}

/**
 * Rewrites the carrier's Metadata response at [ptr, ptr+n) (whole frame, length prefix
 * included) of `version` into writer's buffer with `topics` (encoded entries) as its topic
 * array. False when the response is not what a topic-less request gets.
 */
export function mergeMetadata(ptr: usize, n: usize, version: i32, topics: usize, topicsLen: usize): bool {
  const flex = p.isFlexible(3, version);
  r.reset(ptr + 8, ptr + n, flex);
  r.tags();
  if (version >= 3) r.int32();
  const nb = r.array(1);
  for (let i = 0; i < nb && !r.bad; i++) {
    r.int32();
    r.str();
    r.int32();
    if (version >= 1) r.str();
    r.tags();
  }
  if (version >= 2) r.str();
  if (version >= 1) r.int32();
  const before = r.pos;
  const nt = r.array(1);
  if (r.bad || nt != 0) return false;
  const after = r.pos;
  w.start(false);
  w.raw(ptr, before - ptr);
  w.raw(topics, topicsLen);
  w.raw(after, ptr + n - after);
  w.finishFrame();
  return true;
}
