import { isSealedPortPolicy, type CompiledPortPolicy } from '../../policy/compiled';
import { deepFreeze, objectId } from '../../json/object-id';
import type { GeneratedResource } from './mode';

/**
 * Resources built from sealed port policies (see `sealPortPolicy`), kept by the identities of
 * what they were built from: the proxies of one app have the same rules, and after an identity
 * change most of a proxy's ports are the same sealed objects as before, so each distinct
 * resource is built once and every proxy serving it gets the same frozen object (which the
 * encoder then checks and encodes once, see `encodeGenerated`). A key names everything else the
 * build reads. Bounded; the least recently used entry goes first.
 */

interface Built {
  resource: GeneratedResource;
  warnings: readonly string[];
}

// Two generations: an entry used in the last BUILT_LIMIT insertions stays (a cheap LRU).
let recent = new Map<string, Built>();
let older = new Map<string, Built>();
const BUILT_LIMIT = 8192;
const FROZEN_JSON = new WeakSet<object>();
const CONTEXTS = new Map<string, number>();

/**
 * A short number for the text of what a build reads besides its ports (options), so the cache
 * keys stay short: they are hashed on every build of every proxy.
 */
export function contextId(text: string): number {
  let id = CONTEXTS.get(text);
  if (id === undefined) CONTEXTS.set(text, (id = CONTEXTS.size + 1));
  return id;
}

/**
 * A key part for these port policies (absent ones included), or undefined when one is not
 * sealed: its owner may still change it, so nothing built from it may be kept.
 */
export function sealedPortsKey(ports: readonly (CompiledPortPolicy | undefined)[]): string | undefined {
  let key = '';
  for (const p of ports) {
    if (p === undefined) key += '-,';
    else if (isSealedPortPolicy(p)) key += `${objectId(p)},`;
    else return undefined;
  }
  return key;
}

/** `build`'s resource, from the cache when `key` names one already built (its warnings are told again). */
export function builtOnce(key: string | undefined, warnings: string[], build: (warnings: string[]) => GeneratedResource): GeneratedResource {
  if (key === undefined) return build(warnings);
  let hit = recent.get(key);
  if (!hit) {
    hit = older.get(key);
    if (hit) remember(key, hit);
  }
  if (hit) {
    if (hit.warnings.length > 0) warnings.push(...hit.warnings);
    return hit.resource;
  }
  const own: string[] = [];
  const resource = deepFreeze(build(own));
  FROZEN_JSON.add(resource.json);
  warnings.push(...own);
  remember(key, { resource, warnings: own });
  return resource;
}

function remember(key: string, built: Built): void {
  recent.set(key, built);
  if (recent.size < BUILT_LIMIT) return;
  older = recent;
  recent = new Map();
}

/** Whether this resource JSON came from `builtOnce` (frozen throughout: its encoding may be kept by identity). */
export function isBuiltOnce(json: object): boolean {
  return FROZEN_JSON.has(json);
}
