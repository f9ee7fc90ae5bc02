import { SchemaError, encodeEnvoyResource } from '../../src/envoy/encode';
import type { GeneratedResource } from '../../src/envoy/proxy-resources';
import type { EncodedResource } from '../../src/resource/encoded';

/**
 * Checks and encodes each resource on its own: the good ones and a SchemaError per bad one.
 * For a caller that wants to report every bad policy at once; serving a partial set is the
 * caller's decision (a listener whose ECDS resource is missing fails closed on deny-all).
 */
export function encodeGeneratedSettled(resources: readonly GeneratedResource[]): { encoded: EncodedResource[]; errors: SchemaError[] } {
  const encoded: EncodedResource[] = [];
  const errors: SchemaError[] = [];
  for (const r of resources) {
    try {
      encoded.push(encodeEnvoyResource(r.typeUrl, r.name, r.json, { origins: r.origins }));
    } catch (err) {
      if (err instanceof SchemaError) errors.push(err);
      else throw err;
    }
  }
  return { encoded, errors };
}
