import { NAMESPACE_LABEL, type LabelSelectorSpec } from './model';

/** Labels of an identity, looked up on the hot path of every selector test. */
export type Labels = ReadonlyMap<string, string>;

/**
 * A label selector compiled for repeated matching: requirements sorted into flat arrays, so a
 * test is a handful of Map lookups with no allocation, and a canonical key so that equal
 * selectors written in different policies share one selector-cache entry.
 */
export interface Selector {
  readonly key: string;
  /**
   * A requirement every selected label set meets, for the selector cache's label index: the
   * label `key` has one of `values` (an equality, or the smallest `In`). Absent if none.
   */
  readonly index?: { readonly key: string; readonly values: readonly string[] };
  matches(labels: Labels): boolean;
}

/** `label`/`labels` are the `key=value` strings, precomputed for index lookups. */
export type Requirement =
  | { op: 'Eq'; key: string; value: string; label: string }
  | { op: 'In' | 'NotIn'; key: string; values: ReadonlySet<string>; labels: readonly string[] }
  | { op: 'Exists' | 'DoesNotExist'; key: string };

function requirementKey(r: Requirement): string {
  switch (r.op) {
    case 'Eq':
      return `${r.key}=${r.value}`;
    case 'In':
    case 'NotIn':
      return `${r.key} ${r.op} (${[...r.values].sort().join(',')})`;
    default:
      return `${r.op === 'Exists' ? '' : '!'}${r.key}`;
  }
}

/**
 * Compiles a selector. With `namespace`, a selector that does not constrain
 * `meshaccel.io/namespace` itself is confined to that namespace (namespaced policies).
 */
export function compileSelector(spec: LabelSelectorSpec, namespace?: string): Selector {
  const reqs: Requirement[] = [];
  for (const [key, value] of Object.entries(spec.matchLabels ?? {})) reqs.push({ op: 'Eq', key, value, label: `${key}=${value}` });
  for (const e of spec.matchExpressions ?? []) {
    if (e.operator === 'In' || e.operator === 'NotIn') {
      const values = new Set(e.values ?? []);
      // `key In (v)` is `key=v`: same meaning, and it becomes indexable.
      if (e.operator === 'In' && values.size === 1) reqs.push({ op: 'Eq', key: e.key, value: [...values][0], label: `${e.key}=${[...values][0]}` });
      else reqs.push({ op: e.operator, key: e.key, values, labels: [...values].map((v) => `${e.key}=${v}`) });
    } else reqs.push({ op: e.operator, key: e.key });
  }
  if (namespace !== undefined && !reqs.some((r) => r.key === NAMESPACE_LABEL)) {
    reqs.push({ op: 'Eq', key: NAMESPACE_LABEL, value: namespace, label: `${NAMESPACE_LABEL}=${namespace}` });
  }
  const keyed = reqs.map((r) => ({ r, k: requirementKey(r) })).sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  const unique = keyed.filter((x, i) => i === 0 || keyed[i - 1].k !== x.k);
  const key = unique.map((x) => x.k).join('&');
  const sorted = unique.map((x) => x.r);

  // Equality requirements are the most selective and cheapest: test them first. The
  // namespace label is the least selective, so it is the last choice for the index.
  const eq = sorted.filter((r): r is Extract<Requirement, { op: 'Eq' }> => r.op === 'Eq');
  eq.sort((a, b) => Number(a.key === NAMESPACE_LABEL) - Number(b.key === NAMESPACE_LABEL));
  const eqKeys = eq.map((r) => r.key);
  const eqValues = eq.map((r) => r.value);
  const rest = sorted.filter((r) => r.op !== 'Eq');
  const smallestIn = rest
    .filter((r): r is Extract<Requirement, { op: 'In' | 'NotIn' }> => r.op === 'In')
    .sort((a, b) => a.values.size - b.values.size || (a.key < b.key ? -1 : 1))[0];
  const index = eq.length > 0 ? { key: eq[0].key, values: [eq[0].value] } : smallestIn && { key: smallestIn.key, values: [...smallestIn.values].sort() };

  const matches = (labels: Labels): boolean => {
    for (let i = 0; i < eqKeys.length; i++) if (labels.get(eqKeys[i]) !== eqValues[i]) return false;
    for (const r of rest) {
      const v = labels.get(r.key);
      switch (r.op) {
        case 'In':
          if (v === undefined || !r.values.has(v)) return false;
          break;
        case 'NotIn':
          // Kubernetes semantics: a missing key satisfies NotIn.
          if (v !== undefined && r.values.has(v)) return false;
          break;
        case 'Exists':
          if (v === undefined) return false;
          break;
        case 'DoesNotExist':
          if (v !== undefined) return false;
          break;
      }
    }
    return true;
  };
  return { key, index, matches };
}
