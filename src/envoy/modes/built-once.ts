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

const BUILT = new Map<string, Built>();
const BUILT_LIMIT = 16384;
const FROZEN_JSON = new WeakSet<object>();

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
  const hit = BUILT.get(key);
  if (hit) {
    BUILT.delete(key);
    BUILT.set(key, hit);
    warnings.push(...hit.warnings);
    return hit.resource;
  }
  const own: string[] = [];
  const resource = deepFreeze(build(own));
  FROZEN_JSON.add(resource.json);
  warnings.push(...own);
  BUILT.set(key, { resource, warnings: own });
  if (BUILT.size > BUILT_LIMIT) BUILT.delete(BUILT.keys().next().value as string);
  return resource;
}

/** Whether this resource JSON came from `builtOnce` (frozen throughout: its encoding may be kept by identity). */
export function isBuiltOnce(json: object): boolean {
  return FROZEN_JSON.has(json);
}
