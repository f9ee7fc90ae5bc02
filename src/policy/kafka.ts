/**
 * Kafka API keys by the names policy may use. Cilium accepts the lower-case names below
 * (case-insensitively); Kafka's own protocol names (`ListOffsets`, `ApiVersions`) lower-cased
 * are accepted too. Numbers follow https://kafka.apache.org/protocol#protocol_api_keys.
 */
export const KAFKA_API_KEYS: ReadonlyMap<string, number> = new Map([
  ['produce', 0],
  ['fetch', 1],
  ['offsets', 2],
  ['listoffsets', 2],
  ['metadata', 3],
  ['leaderandisr', 4],
  ['stopreplica', 5],
  ['updatemetadata', 6],
  ['controlledshutdown', 7],
  ['offsetcommit', 8],
  ['offsetfetch', 9],
  ['findcoordinator', 10],
  ['joingroup', 11],
  ['heartbeat', 12],
  ['leavegroup', 13],
  ['syncgroup', 14],
  ['describegroups', 15],
  ['listgroups', 16],
  ['saslhandshake', 17],
  ['apiversions', 18],
  ['createtopics', 19],
  ['deletetopics', 20],
  ['deleterecords', 21],
  ['initproducerid', 22],
  ['offsetforleaderepoch', 23],
  ['addpartitionstotxn', 24],
  ['addoffsetstotxn', 25],
  ['endtxn', 26],
  ['writetxnmarkers', 27],
  ['txnoffsetcommit', 28],
  ['describeacls', 29],
  ['createacls', 30],
  ['deleteacls', 31],
  ['describeconfigs', 32],
  ['alterconfigs', 33],
  ['alterreplicalogdirs', 34],
  ['describelogdirs', 35],
  ['saslauthenticate', 36],
  ['createpartitions', 37],
  ['deletegroups', 42],
  ['electleaders', 43],
  ['incrementalalterconfigs', 44],
  ['offsetdelete', 47],
]);

/** What a role needs besides the operation itself: metadata and version discovery (and group membership for consumers). */
export const KAFKA_ROLES: ReadonlyMap<string, readonly number[]> = new Map([
  ['produce', [0, 3, 18]],
  ['consume', [1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 18]],
]);

export function kafkaApiKey(name: string): number | undefined {
  return KAFKA_API_KEYS.get(name.toLowerCase());
}

export function kafkaRoleKeys(role: string): readonly number[] | undefined {
  return KAFKA_ROLES.get(role.toLowerCase());
}

/** Kafka API versions are int16 and non-negative. */
export function parseKafkaApiVersion(v: number | string): number | undefined {
  const n = typeof v === 'number' ? v : /^[0-9]+$/.test(v) ? Number(v) : NaN;
  return Number.isInteger(n) && n >= 0 && n <= 32767 ? n : undefined;
}
