import { createHash } from 'crypto';
import { kafkaApiKey } from '../policy/kafka';
import * as k from './wire';

/** One Kafka request to judge, as `policy trace --kafka` and `policy test` name it. */
export interface KafkaRequestSpec {
  /** `produce` (a Produce), `consume` (a Fetch), or an API key by name (`offsetcommit`) or number. */
  request: string | number;
  topics?: readonly string[];
  /** Absent: a null client id (which matches no `clientID` rule). */
  clientId?: string;
  /** Absent: the default version of the key below. */
  apiVersion?: number;
}

/**
 * The keys a request can be built for, with the version used when none is given: the newest
 * that names topics by name (Fetch v13+ names them by id), each one the filter's case table
 * covers.
 */
const ENCODERS: ReadonlyMap<number, { name: string; version: number; encode(version: number, topics: k.Topics, raw: readonly string[]): Buffer }> = new Map([
  [0, { name: 'Produce', version: 9, encode: (v, t) => k.produce(v, 1, t) }],
  // From v13 Fetch names topics by id: the id stands in for the name (a fresh filter has learned no id, see topicId).
  [1, { name: 'Fetch', version: 12, encode: (v, t) => k.fetch(v, 1, v >= 13 ? t.map(([name, parts]) => [topicId(name), parts] as const) : t) }],
  [2, { name: 'ListOffsets', version: 6, encode: (v, t) => k.listOffsets(v, 1, t) }],
  [3, { name: 'Metadata', version: 12, encode: (v, _t, raw) => k.metadata(v, 1, raw.length ? raw : null) }],
  [8, { name: 'OffsetCommit', version: 8, encode: (v, t) => k.offsetCommit(v, 1, t) }],
  [9, { name: 'OffsetFetch', version: 7, encode: (v, t) => k.offsetFetch(v, 1, t.length ? t : null) }],
  [10, { name: 'FindCoordinator', version: 3, encode: (v) => k.findCoordinator(v, 1, ['group-1']) }],
  [11, { name: 'JoinGroup', version: 5, encode: (v) => k.joinGroup(v, 1) }],
  [12, { name: 'Heartbeat', version: 4, encode: (v) => k.heartbeat(v, 1) }],
  [13, { name: 'LeaveGroup', version: 3, encode: (v) => k.leaveGroup(v, 1) }],
  [14, { name: 'SyncGroup', version: 5, encode: (v) => k.syncGroup(v, 1) }],
  [18, { name: 'ApiVersions', version: 3, encode: (v) => k.apiVersions(v, 1) }],
  [19, { name: 'CreateTopics', version: 5, encode: (v, _t, raw) => k.createTopics(v, 1, [...raw]) }],
  [20, { name: 'DeleteTopics', version: 6, encode: (v, _t, raw) => k.deleteTopics(v, 1, raw) }],
  [21, { name: 'DeleteRecords', version: 2, encode: (v, t) => k.deleteRecords(v, 1, t) }],
  [32, { name: 'DescribeConfigs', version: 4, encode: (v, _t, raw) => k.describeConfigs(v, 1, raw[0] ?? '') }],
]);

/**
 * The id a request names a topic by (KIP-516). A broker assigns ids; this one is derived from
 * the name, and no filter has learned it: a trace has no Metadata response to learn from.
 */
function topicId(name: string): Buffer {
  return createHash('sha256').update(name).digest().subarray(0, 16);
}

/** Versions from which the encoders here cannot write the request (they name topics by id, or changed layout). */
const UNENCODED_FROM: ReadonlyMap<number, number> = new Map([
  [0, 13],
  [8, 10],
  [9, 8],
]);

/** Keys whose body the filter does not read (no topics, or opaque): their header alone is a request it judges. */
const KEYS_WITH_TOPIC_LISTS = new Set([0, 1, 2, 3, 8, 9, 10, 19, 20, 21, 23, 24, 28, 37, 47, 75]);

export interface KafkaRequestFrame {
  apiKey: number;
  apiVersion: number;
  /** `Produce v9`. */
  label: string;
  frame: Buffer;
}

export function kafkaRequestKey(request: string | number): number {
  const key =
    request === 'produce' ? 0 : request === 'consume' ? 1 : typeof request === 'number' || /^[0-9]+$/.test(request) ? Number(request) : kafkaApiKey(request);
  if (key === undefined || !Number.isInteger(key) || key < 0 || key > 32767)
    throw new Error(`"${request}" is not produce, consume, a Kafka API key name or a number`);
  return key;
}

/** Replaces the client id of a request frame (header v1/v2: it is always a nullable int16 string). */
function withClientId(frame: Buffer, clientId: string | undefined): Buffer {
  const oldLen = frame.readInt16BE(12);
  const rest = frame.subarray(14 + Math.max(0, oldLen));
  const id = clientId === undefined ? null : Buffer.from(clientId, 'utf8');
  const len = Buffer.alloc(2);
  len.writeInt16BE(id === null ? -1 : id.length);
  const body = Buffer.concat([frame.subarray(4, 12), len, id ?? Buffer.alloc(0), rest]);
  return k.frame(body);
}

/**
 * A real encoded request frame for `spec` (correlation id 1), as a client sends it; every
 * partition list is partition 0.
 */
export function kafkaRequestFrame(spec: KafkaRequestSpec): KafkaRequestFrame {
  const key = kafkaRequestKey(spec.request);
  const topics = spec.topics ?? [];
  const enc = ENCODERS.get(key);
  if (!enc) {
    if (KEYS_WITH_TOPIC_LISTS.has(key))
      throw new Error(
        `API key ${key}: building its requests is not supported here (supported: ${[...ENCODERS.values()].map((e) => e.name).join(', ')}, and keys without topic lists)`,
      );
    if (topics.length) throw new Error(`API key ${key} carries no topic list the filter reads: drop --topic`);
    const version = spec.apiVersion ?? 0;
    return {
      apiKey: key,
      apiVersion: version,
      label: `API key ${key} v${version}`,
      frame: withClientId(
        k.request(key, version, 1, null, () => undefined),
        spec.clientId,
      ),
    };
  }
  const version = spec.apiVersion ?? enc.version;
  const limit = UNENCODED_FROM.get(key);
  if (limit !== undefined && version >= limit) throw new Error(`${enc.name} v${version}: building it is not supported here (up to v${limit - 1})`);
  const frame = enc.encode(
    version,
    topics.map((t) => [t, [0]] as const),
    topics,
  );
  return { apiKey: key, apiVersion: version, label: `${enc.name} v${version}`, frame: withClientId(frame, spec.clientId) };
}
