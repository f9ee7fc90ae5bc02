import * as assert from 'node:assert/strict';
import { encodeEnvoyResource } from '../../src/envoy/encode';
import { buildProxyResourceJson, encodeGenerated, type ProxyBuildOptions } from '../../src/envoy/proxy-resources';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';

/**
 * What a proxy must be served, found the long way: its compiled policy copied (so nothing built
 * from the engine's shared objects is reused), built, and every resource schema-checked and
 * encoded whole by `encodeEnvoyResource` from a copy of its JSON (so no kept encoding is reused).
 */
export function referenceEncoding(policy: CompiledProxyPolicy, options: ProxyBuildOptions): string[] {
  const copy = JSON.parse(JSON.stringify(policy)) as CompiledProxyPolicy;
  return buildProxyResourceJson(copy, options).resources.map((r) => {
    const e = encodeEnvoyResource(r.typeUrl, r.name, JSON.parse(JSON.stringify(r.json)), { origins: r.origins });
    return `${e.typeUrl} ${e.name} ${e.value.toString('base64')}`;
  });
}

/** What the serving path (`buildProxyResourceJson` then `encodeGenerated`, as NodeSnapshotBuilder runs them) encodes for the engine's own policy. */
export function servedEncoding(policy: CompiledProxyPolicy, options: ProxyBuildOptions): string[] {
  return encodeGenerated(buildProxyResourceJson(policy, options).resources).map((e) => `${e.typeUrl} ${e.name} ${e.value.toString('base64')}`);
}

/** The serving path's bytes equal the reference's, resource by resource (or both refuse the policy alike). */
export function assertServedAsReference(policy: CompiledProxyPolicy, options: ProxyBuildOptions, what: string): void {
  let reference: string[] | Error;
  try {
    reference = referenceEncoding(policy, options);
  } catch (err) {
    reference = err as Error;
  }
  if (reference instanceof Error) {
    assert.throws(() => servedEncoding(policy, options), { message: reference.message }, what);
    return;
  }
  assert.deepEqual(servedEncoding(policy, options), reference, what);
}
