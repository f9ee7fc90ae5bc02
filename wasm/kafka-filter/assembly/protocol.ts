// Kafka request framing, headers and the topic lists of the requests that carry topics.
// Field layouts follow Apache Kafka's clients/src/main/resources/common/message/*Request.json.
import * as r from "./reader";
import { Words } from "./words";

/** First flexible version of each API key 0..92 (request header v2 from there); -1 = never. */
const FIRST_FLEXIBLE: StaticArray<i8> = [
  9, 12, 6, 9, 4, 2, 6, 3, 8, 6, //  0-9
  3, 6, 4, 4, 4, 5, 3, -1, 3, 5, // 10-19
  4, 2, 2, 4, 3, 3, 3, 1, 3, 2, // 20-29
  2, 2, 4, 2, 2, 2, 2, 2, 2, 2, // 30-39
  2, 2, 2, 2, 1, 0, 0, -1, 1, 1, // 40-49
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 50-59
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 60-69
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 70-79
  0, 0, 0, 0, 0, 0, 0, 0, 0, 0, // 80-89
  0, 0, 0, // 90-92
];
export const MAX_KNOWN_KEY: i32 = 92;

export function isFlexible(key: i32, version: i32): bool {
  if (key < 0 || key > MAX_KNOWN_KEY) return false;
  const f = <i32>FIRST_FLEXIBLE[key];
  return f >= 0 && version >= f;
}

// What a request says about topics.
export const TOPICS_NONE: i32 = 0; // carries no topics (group, version, transaction APIs)
export const TOPICS_LIST: i32 = 1; // topics read into the lists below
export const TOPICS_OPAQUE: i32 = 2; // may carry topics this filter does not read

// Topics whose names are not in the request (topic ids, KIP-516) have length UNKNOWN_TOPIC
// and point at their 16-byte id.
export const UNKNOWN_TOPIC: i32 = -1;

export let apiKey: i32 = 0;
export let apiVersion: i32 = 0;
export let correlationId: i32 = 0;
export let clientPtr: usize = 0;
export let clientLen: i32 = -1;
export let topicsKind: i32 = TOPICS_NONE;
/** Produce acks (0 = no response). */
export let acks: i32 = -1;
/** FindCoordinator key type (0 group, 1 transaction). */
export let keyType: i32 = 0;

export const topicPtr = new Words<usize>();
export const topicLen = new Words<i32>();
export const topicPartStart = new Words<i32>();
export const partitions = new Words<i32>();
export const keyPtr = new Words<usize>();
export const keyLen = new Words<i32>();

function addTopic(ptr: usize, len: i32): void {
  topicPtr.push(ptr);
  topicLen.push(len);
  topicPartStart.push(partitions.length);
}

function nameField(): void {
  r.str();
  // A null name where the schema requires one cannot be authorized by name.
  addTopic(r.strPtr, r.strLen < 0 ? UNKNOWN_TOPIC : r.strLen);
}

function uuidField(): void {
  addTopic(r.uuid(), UNKNOWN_TOPIC);
}

/**
 * Parses the header of the frame the reader was just reset to (after the length prefix).
 * False when the frame is not a well-formed Kafka request header.
 */
export function parseHeader(): bool {
  apiKey = r.int16();
  apiVersion = r.int16();
  correlationId = r.int32();
  r.str();
  clientPtr = r.strPtr;
  clientLen = r.strLen;
  if (r.bad || apiKey < 0 || apiVersion < 0) return false;
  if (isFlexible(apiKey, apiVersion)) {
    r.setFlex(true);
    r.tags();
  }
  return !r.bad;
}

/**
 * Reads the topics of the request whose header parseHeader just read. False when the body is
 * malformed where topics are read.
 */
export function parseTopics(): bool {
  topicPtr.length = 0;
  topicLen.length = 0;
  topicPartStart.length = 0;
  partitions.length = 0;
  keyPtr.length = 0;
  keyLen.length = 0;
  acks = -1;
  keyType = 0;
  topicsKind = TOPICS_LIST;
  const v = apiVersion;
  switch (apiKey) {
    case 0: produce(v); break;
    case 1: fetch(v); break;
    case 2: listOffsets(v); break;
    case 3: metadata(v); break;
    case 8: offsetCommit(v); break;
    case 9: offsetFetch(v); break;
    case 10: findCoordinator(v); topicsKind = TOPICS_NONE; break;
    case 19: createTopics(); break;
    case 20: deleteTopics(v); break;
    case 21: nameAndPartitions(); break; // DeleteRecords
    case 23: offsetForLeaderEpoch(v); break;
    case 24: addPartitionsToTxn(v); break;
    case 28: txnOffsetCommit(v); break;
    case 37: createPartitions(); break;
    case 47: offsetDelete(); break;
    case 75: describeTopicPartitions(); break;
    default:
      topicsKind = carriesNoTopics(apiKey) ? TOPICS_NONE : TOPICS_OPAQUE;
  }
  return !r.bad;
}

/** API keys whose requests name no topic at all. Every other key this filter does not parse is opaque. */
function carriesNoTopics(key: i32): bool {
  switch (key) {
    case 11: case 12: case 13: case 14: case 15: case 16: case 17: case 18:
    case 22: case 25: case 26: case 36: case 38: case 39: case 40: case 41: case 42:
    case 48: case 49: case 50: case 51: case 57: case 60: case 64: case 65: case 66:
    case 67: case 71: case 72: case 74:
      return true;
  }
  return false;
}

// Each partition entry of every topic: read the partition index, skip the rest per version.
function produce(v: i32): void {
  if (v >= 3) r.str(); // transactional_id
  acks = r.int16();
  r.int32(); // timeout_ms
  const n = r.array(2);
  for (let i = 0; i < n && !r.bad; i++) {
    if (v >= 13) uuidField();
    else nameField();
    const np = r.array(4);
    for (let j = 0; j < np && !r.bad; j++) {
      partitions.push(r.int32());
      r.bytes(); // records
      r.tags();
    }
    r.tags();
  }
}

function fetch(v: i32): void {
  if (v <= 14) r.int32(); // replica_id (moved to a tagged field from v15)
  r.int32(); // max_wait_ms
  r.int32(); // min_bytes
  if (v >= 3) r.int32(); // max_bytes
  if (v >= 4) r.int8(); // isolation_level
  if (v >= 7) { r.int32(); r.int32(); } // session_id, session_epoch
  const n = r.array(2);
  for (let i = 0; i < n && !r.bad; i++) {
    if (v >= 13) uuidField();
    else nameField();
    const np = r.array(4);
    for (let j = 0; j < np && !r.bad; j++) {
      partitions.push(r.int32());
      if (v >= 9) r.int32(); // current_leader_epoch
      r.skip(8); // fetch_offset
      if (v >= 12) r.int32(); // last_fetched_epoch
      if (v >= 5) r.skip(8); // log_start_offset
      r.int32(); // partition_max_bytes
      r.tags();
    }
    r.tags();
  }
}

function listOffsets(v: i32): void {
  r.int32(); // replica_id
  if (v >= 2) r.int8(); // isolation_level
  const n = r.array(2);
  for (let i = 0; i < n && !r.bad; i++) {
    nameField();
    const np = r.array(4);
    for (let j = 0; j < np && !r.bad; j++) {
      partitions.push(r.int32());
      if (v >= 4) r.int32(); // current_leader_epoch
      r.skip(8); // timestamp
      if (v == 0) r.int32(); // max_num_offsets
      r.tags();
    }
    r.tags();
  }
}

function metadata(v: i32): void {
  const n = r.array(2);
  // v0: an empty list means every topic; v1+: null does. Neither names a topic.
  for (let i = 0; i < n && !r.bad; i++) {
    if (v >= 10) {
      const idAt = r.uuid();
      r.str();
      addTopic(r.strLen < 0 ? idAt : r.strPtr, r.strLen < 0 ? UNKNOWN_TOPIC : r.strLen);
    } else nameField();
    r.tags();
  }
}

function offsetCommit(v: i32): void {
  r.str(); // group_id
  if (v >= 1) { r.int32(); r.str(); } // generation_id_or_member_epoch, member_id
  if (v >= 7) r.str(); // group_instance_id
  if (v >= 2 && v <= 4) r.skip(8); // retention_time_ms
  const n = r.array(2);
  for (let i = 0; i < n && !r.bad; i++) {
    if (v >= 10) uuidField();
    else nameField();
    const np = r.array(4);
    for (let j = 0; j < np && !r.bad; j++) {
      partitions.push(r.int32());
      r.skip(8); // committed_offset
      if (v >= 6) r.int32(); // committed_leader_epoch
      if (v == 1) r.skip(8); // commit_timestamp
      r.str(); // committed_metadata
      r.tags();
    }
    r.tags();
  }
}

function topicsWithIndexes(byId: bool): void {
  const n = r.array(2);
  for (let i = 0; i < n && !r.bad; i++) {
    if (byId) uuidField();
    else nameField();
    const np = r.array(4);
    for (let j = 0; j < np && !r.bad; j++) partitions.push(r.int32());
    r.tags();
  }
}

function offsetFetch(v: i32): void {
  if (v <= 7) {
    r.str(); // group_id
    topicsWithIndexes(false); // null (v2+) = every committed topic: names none
    return;
  }
  const ng = r.array(2);
  for (let g = 0; g < ng && !r.bad; g++) {
    r.str(); // group_id
    if (v >= 9) { r.str(); r.int32(); } // member_id, member_epoch
    topicsWithIndexes(v >= 10);
    r.tags();
  }
}

function findCoordinator(v: i32): void {
  if (v <= 3) {
    r.str();
    keyPtr.push(r.strPtr);
    keyLen.push(r.strLen);
    if (v >= 1) keyType = r.int8();
    return;
  }
  keyType = r.int8();
  const n = r.array(1);
  for (let i = 0; i < n && !r.bad; i++) {
    r.str();
    keyPtr.push(r.strPtr);
    keyLen.push(r.strLen);
  }
}

function createTopics(): void {
  const n = r.array(2);
  for (let i = 0; i < n && !r.bad; i++) {
    nameField();
    r.int32(); // num_partitions
    r.int16(); // replication_factor
    const na = r.array(4);
    for (let j = 0; j < na && !r.bad; j++) {
      r.int32();
      const nb = r.array(4);
      r.skip(<usize>(nb < 0 ? 0 : nb) * 4);
      r.tags();
    }
    const nc = r.array(2);
    for (let j = 0; j < nc && !r.bad; j++) {
      r.str();
      r.str();
      r.tags();
    }
    r.tags();
  }
}

function deleteTopics(v: i32): void {
  const n = r.array(2);
  for (let i = 0; i < n && !r.bad; i++) {
    if (v >= 6) {
      r.str();
      const namePtr = r.strPtr;
      const nameLen = r.strLen;
      const idAt = r.uuid();
      addTopic(nameLen < 0 ? idAt : namePtr, nameLen < 0 ? UNKNOWN_TOPIC : nameLen);
      r.tags();
    } else nameField();
  }
}

function nameAndPartitions(): void {
  // DeleteRecords: topics[] { name, partitions[] { partition_index, offset } }
  const n = r.array(2);
  for (let i = 0; i < n && !r.bad; i++) {
    nameField();
    const np = r.array(4);
    for (let j = 0; j < np && !r.bad; j++) {
      partitions.push(r.int32());
      r.skip(8);
      r.tags();
    }
    r.tags();
  }
}

function offsetForLeaderEpoch(v: i32): void {
  if (v >= 3) r.int32(); // replica_id
  const n = r.array(2);
  for (let i = 0; i < n && !r.bad; i++) {
    nameField();
    const np = r.array(4);
    for (let j = 0; j < np && !r.bad; j++) {
      partitions.push(r.int32());
      if (v >= 2) r.int32(); // current_leader_epoch
      r.int32(); // leader_epoch
      r.tags();
    }
    r.tags();
  }
}

function addPartitionsToTxn(v: i32): void {
  if (v <= 3) {
    r.str(); // transactional_id
    r.skip(8); // producer_id
    r.int16(); // producer_epoch
    topicsWithIndexes(false);
    return;
  }
  const nt = r.array(2);
  for (let t = 0; t < nt && !r.bad; t++) {
    r.str();
    r.skip(8);
    r.int16();
    r.int8(); // verify_only
    topicsWithIndexes(false);
    r.tags();
  }
}

function txnOffsetCommit(v: i32): void {
  r.str(); // transactional_id
  r.str(); // group_id
  r.skip(8); // producer_id
  r.int16(); // producer_epoch
  if (v >= 3) { r.int32(); r.str(); r.str(); } // generation_id, member_id, group_instance_id
  const n = r.array(2);
  for (let i = 0; i < n && !r.bad; i++) {
    nameField();
    const np = r.array(4);
    for (let j = 0; j < np && !r.bad; j++) {
      partitions.push(r.int32());
      r.skip(8);
      if (v >= 2) r.int32();
      r.str();
      r.tags();
    }
    r.tags();
  }
}

function createPartitions(): void {
  const n = r.array(2);
  for (let i = 0; i < n && !r.bad; i++) {
    nameField();
    r.int32(); // count
    const na = r.array(1);
    for (let j = 0; j < na && !r.bad; j++) {
      const nb = r.array(4);
      r.skip(<usize>(nb < 0 ? 0 : nb) * 4);
      r.tags();
    }
    r.tags();
  }
}

function offsetDelete(): void {
  r.str(); // group_id
  topicsWithIndexes(false);
}

function describeTopicPartitions(): void {
  const n = r.array(1);
  for (let i = 0; i < n && !r.bad; i++) {
    nameField();
    r.tags();
  }
}
