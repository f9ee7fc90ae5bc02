/** A field path into a JSON document: object keys as written, list indexes as numbers. */
export type PathSegment = string | number;

// `@type` is a field of the JSON mapping of Any, not a map key: it prints plain.
const PLAIN_KEY = /^@?[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * `['spec','ingress',0,'fromEndpoints',0,'matchLabels','app.kubernetes.io/name']` →
 * `spec.ingress[0].fromEndpoints[0].matchLabels["app.kubernetes.io/name"]`; a key that is not a
 * plain identifier is quoted so a dotted map key cannot read as nested fields. The empty path is
 * `root` (`''` unless the caller names it).
 */
export function formatPath(path: readonly PathSegment[], root = ''): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (PLAIN_KEY.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out || root;
}
