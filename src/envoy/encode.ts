import type { PolicyOrigin } from '../policy/compiled';
import { EncodedResource, encodedResource } from '../resource/encoded';
import { resolveEnvoyType } from './protos';
import { Violation, checkEnvoyJson, formatViolationPath } from './schema-check';
import { encodeWhole, writeMessage } from './encoding/fragments';

/**
 * The only way generated Envoy JSON becomes bytes: check it against Envoy's schema first and
 * refuse to encode on any violation, so a resource Envoy would NACK is never served.
 */

export class SchemaError extends Error {
  constructor(
    readonly typeUrl: string,
    readonly resourceName: string,
    readonly violations: readonly Violation[],
    readonly origins: readonly PolicyOrigin[] = [],
  ) {
    super(
      `${typeUrl.replace(/^type\.googleapis\.com\//, '')} "${resourceName}"` +
        (origins.length > 0 ? ` (from ${origins.map(describeOrigin).join(', ')})` : '') +
        ` fails Envoy's schema:\n` +
        violations.map((v) => `  ${formatViolationPath(v.path)}: ${v.message}`).join('\n'),
    );
    this.name = 'SchemaError';
  }
}

export function describeOrigin(o: PolicyOrigin): string {
  return `policy ${o.policy}${o.file ? ` (${o.file}${o.line ? `:${o.line}` : ''})` : ''}`;
}

/**
 * Checks and encodes one resource; `json` is Envoy JSON without "@type" (the type URL says it).
 * `keepShared`: the parts marked with `shareEncoding` are checked and encoded once and their
 * bytes reused, and the resource is written in one allocation (fragments.ts says why that
 * equals checking and encoding the whole every time).
 */
export function encodeEnvoyResource(
  typeUrl: string,
  name: string,
  json: unknown,
  options: { origins?: readonly PolicyOrigin[]; ttlMs?: number; keepShared?: boolean } = {},
): EncodedResource {
  const typeName = typeUrl.slice(typeUrl.lastIndexOf('/') + 1);
  const type = resolveEnvoyType(typeName);
  if (!type) throw new SchemaError(typeUrl, name, [{ path: [], message: `type ${typeUrl} does not resolve to a message in Envoy's API` }], options.origins);
  const result = checkEnvoyJson(type, json, { keepShared: options.keepShared });
  if (result.violations.length > 0) throw new SchemaError(typeUrl, name, result.violations, options.origins);
  // Serving writes around the kept parts; otherwise protobufjs encodes the whole (the reference the tests hold serving to).
  const bytes = options.keepShared ? writeMessage(type, result.message) : encodeWhole(type, result.message);
  return encodedResource(typeUrl, name, bytes, { ttlMs: options.ttlMs });
}
