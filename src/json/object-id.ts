/**
 * A number per object, never reused, for cache keys made of several objects' identities (an
 * object that is gone leaves a key nothing can ask for again; bounded caches drop it).
 */
const IDS = new WeakMap<object, number>();
let next = 1;

export function objectId(o: object): number {
  let id = IDS.get(o);
  if (id === undefined) IDS.set(o, (id = next++));
  return id;
}

/** Freezes JSON data and everything in it (frozen parts are taken as frozen throughout). */
export function deepFreeze<T>(value: T): T {
  if (typeof value !== 'object' || value === null || Object.isFrozen(value)) return value;
  Object.freeze(value);
  for (const v of Object.values(value)) deepFreeze(v);
  return value;
}
