import type { WorkloadSpec } from './model';

/**
 * Which proxy serves a workload. A node-id binding names one proxy; a metadata binding names
 * every proxy whose xDS node metadata carries the given key/values (a per-node proxy serving all
 * pods of `NODE_NAME: n1`, say), so its policy is resolved when such a node connects.
 */
export type ProxyBinding = { kind: 'node'; nodeId: string } | { kind: 'metadata'; metadata: Readonly<Record<string, string>> };

const METADATA_PREFIX = 'metadata:';

export function bindingOf(proxy: WorkloadSpec['proxy']): ProxyBinding {
  if (proxy.nodeId !== undefined) return { kind: 'node', nodeId: proxy.nodeId };
  return { kind: 'metadata', metadata: proxy.nodeMetadata ?? {} };
}

/** The key a proxy's compiled policy is stored under: the node id itself, or `metadata:{...}`. */
export function bindingKey(b: ProxyBinding): string {
  if (b.kind === 'node') return b.nodeId;
  const sorted = Object.keys(b.metadata)
    .sort()
    .map((k) => [k, b.metadata[k]]);
  return METADATA_PREFIX + JSON.stringify(Object.fromEntries(sorted));
}

export function isMetadataKey(key: string): boolean {
  return key.startsWith(METADATA_PREFIX);
}

// Every policy update matches each metadata key against every connected node: parse a key once.
const parsedKeys = new Map<string, readonly (readonly [string, string])[]>();

function metadataRequirements(key: string): readonly (readonly [string, string])[] {
  let want = parsedKeys.get(key);
  if (!want) {
    want = Object.entries(parseMetadataKey(key));
    if (parsedKeys.size >= 10_000) parsedKeys.clear(); // keys of long-gone bindings
    parsedKeys.set(key, want);
  }
  return want;
}

export function parseMetadataKey(key: string): Record<string, string> {
  return JSON.parse(key.slice(METADATA_PREFIX.length)) as Record<string, string>;
}

/** Whether a proxy key applies to a connecting node. Metadata values compare as strings. */
export function keyMatchesNode(key: string, nodeId: string, nodeMetadata: Readonly<Record<string, unknown>> = {}): boolean {
  if (!isMetadataKey(key)) return key === nodeId;
  return metadataRequirements(key).every(([k, v]) => nodeMetadata[k] !== undefined && String(nodeMetadata[k]) === v);
}
