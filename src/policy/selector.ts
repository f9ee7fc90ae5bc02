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
  /** The requirements as label strings, for the selector cache's indexes. */
  readonly terms: SelectorTerms;
  matches(labels: Labels): boolean;
}

/**
 * A selector's requirements in the form the selector cache indexes: `k=v` label strings (which
 * identities carry interned) where the requirement is about values, label keys otherwise.
 */
export interface SelectorTerms {
  /** Labels every selected label set carries (`matchLabels`, and `In` with one value); the namespace label last. */
  readonly all: readonly LabelTerm[];
  /** One per `In` with several values: a selected label set carries one of its labels. */
  readonly anyOf: readonly { readonly key: string; readonly labels: readonly string[] }[];
  /** Labels no selected label set carries (`NotIn`). */
  readonly noneOf: readonly LabelTerm[];
  /** Keys a selected label set has (`Exists`) and does not have (`DoesNotExist`). */
  readonly present: readonly string[];
  readonly absent: readonly string[];
}

/** A label as its key and its `labelString`. */
export interface LabelTerm {
  readonly key: string;
  readonly label: string;
}

/** `label`/`labels` are the `key=value` strings, precomputed for index lookups. */
export type Requirement =
  | { op: 'Eq'; key: string; value: string; label: string }
  | { op: 'In' | 'NotIn'; key: string; values: ReadonlySet<string>; labels: readonly string[] }
  | { op: 'Exists' | 'DoesNotExist'; key: string };

/** Characters that separate the parts of labels and selector keys. */
const SEPARATORS = /[=&,()!"\\\s]/;

/** A key or value as written, or JSON-quoted when it holds a separator, so keys cannot collide. */
function part(s: string): string {
  return SEPARATORS.test(s) ? JSON.stringify(s) : s;
}

/**
 * The `key=value` string of a label, as identities intern it and selector terms name it.
 * Unambiguous: a key holding `=` (labels from files are not held to Kubernetes' syntax) is
 * quoted, so `a=b`:`c` and `a`:`b=c` are different labels.
 */
export function labelString(key: string, value: string): string {
  return `${part(key)}=${part(value)}`;
}

function requirementKey(r: Requirement): string {
  switch (r.op) {
    case 'Eq':
      return r.label;
    case 'In':
    case 'NotIn':
      return `${part(r.key)} ${r.op} (${[...r.values].sort().map(part).join(',')})`;
    default:
      return `${r.op === 'Exists' ? '' : '!'}${part(r.key)}`;
  }
}

/**
 * Compiles a selector. With `namespace`, a selector that does not constrain
 * `meshaccel.io/namespace` itself is confined to that namespace (namespaced policies).
 */
export function compileSelector(spec: LabelSelectorSpec, namespace?: string): Selector {
  const reqs: Requirement[] = [];
  for (const [key, value] of Object.entries(spec.matchLabels ?? {})) reqs.push({ op: 'Eq', key, value, label: labelString(key, value) });
  for (const e of spec.matchExpressions ?? []) {
    if (e.operator === 'In' || e.operator === 'NotIn') {
      const values = new Set(e.values ?? []);
      // `key In (v)` is `key=v`: same meaning, and it becomes indexable.
      if (e.operator === 'In' && values.size === 1) reqs.push({ op: 'Eq', key: e.key, value: [...values][0], label: labelString(e.key, [...values][0]) });
      else reqs.push({ op: e.operator, key: e.key, values, labels: [...values].map((v) => labelString(e.key, v)) });
    } else reqs.push({ op: e.operator, key: e.key });
  }
  if (namespace !== undefined && !reqs.some((r) => r.key === NAMESPACE_LABEL)) {
    reqs.push({ op: 'Eq', key: NAMESPACE_LABEL, value: namespace, label: labelString(NAMESPACE_LABEL, namespace) });
  }
  const keyed = reqs.map((r) => ({ r, k: requirementKey(r) })).sort((a, b) => (a.k < b.k ? -1 : a.k > b.k ? 1 : 0));
  const unique = keyed.filter((x, i) => i === 0 || keyed[i - 1].k !== x.k);
  const key = unique.map((x) => x.k).join('&');
  const sorted = unique.map((x) => x.r);

  // Equality requirements are the most selective and cheapest: test them first. The
  // namespace label is the least selective, so it is the last choice for an index.
  const eq = sorted.filter((r): r is Extract<Requirement, { op: 'Eq' }> => r.op === 'Eq');
  eq.sort((a, b) => Number(a.key === NAMESPACE_LABEL) - Number(b.key === NAMESPACE_LABEL));
  const eqKeys = eq.map((r) => r.key);
  const eqValues = eq.map((r) => r.value);
  const rest = sorted.filter((r) => r.op !== 'Eq');
  const terms: SelectorTerms = {
    all: eq.map((r) => ({ key: r.key, label: r.label })),
    anyOf: rest.filter((r): r is Extract<Requirement, { op: 'In' | 'NotIn' }> => r.op === 'In').map((r) => ({ key: r.key, labels: r.labels })),
    noneOf: rest.flatMap((r) => (r.op === 'NotIn' ? r.labels.map((label) => ({ key: r.key, label })) : [])),
    present: rest.filter((r) => r.op === 'Exists').map((r) => r.key),
    absent: rest.filter((r) => r.op === 'DoesNotExist').map((r) => r.key),
  };

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
  return { key, terms, matches };
}
