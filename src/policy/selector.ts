import { LABEL_IDS, type HeldIds } from './label-ids';
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
  /** The requirements as label strings. */
  readonly terms: SelectorTerms;
  /**
   * The terms as LABEL_IDS ids, interned when the selector is compiled, for the selector cache:
   * the equalities' label ids, and the other terms (absent when there are none; most selectors
   * are equalities only, and the cache then reads nothing else).
   */
  readonly allIds: readonly number[];
  readonly otherIds: SelectorIds | undefined;
  /** Small integer id of `key`, shared by equal selectors (the selector cache indexes by it). */
  readonly uid: number;
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

/** `SelectorTerms` other than `all` as LABEL_IDS ids: label ids for labels, key ids for keys. */
export interface SelectorIds {
  readonly anyOf: readonly (readonly number[])[];
  readonly anyOfKeys: readonly number[];
  readonly noneOf: readonly number[];
  readonly present: readonly number[];
  readonly absent: readonly number[];
}

/** Interns a selector's terms and key; held until the selector is garbage. */
function internTerms(terms: SelectorTerms, key: string): { allIds: number[]; otherIds: SelectorIds | undefined; uid: number; held: HeldIds } {
  const held: HeldIds = { labels: [], keys: [], selectorKeys: [] };
  const label = (t: LabelTerm): number => {
    const id = LABEL_IDS.acquire(t.label, t.key);
    held.labels.push(id);
    return id;
  };
  const keyId = (k: string): number => {
    const id = LABEL_IDS.acquireKey(k);
    held.keys.push(id);
    return id;
  };
  const allIds = terms.all.map(label);
  const others = terms.anyOf.length + terms.noneOf.length + terms.present.length + terms.absent.length;
  const otherIds: SelectorIds | undefined =
    others === 0
      ? undefined
      : {
          anyOf: terms.anyOf.map((g) => g.labels.map((l) => label({ key: g.key, label: l }))),
          anyOfKeys: terms.anyOf.map((g) => keyId(g.key)),
          noneOf: terms.noneOf.map(label),
          present: terms.present.map(keyId),
          absent: terms.absent.map(keyId),
        };
  const uid = LABEL_IDS.acquireSelectorKey(key);
  held.selectorKeys.push(uid);
  return { allIds, otherIds, uid, held };
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
  const { allIds, otherIds, uid, held } = internTerms(terms, key);
  const selector: Selector = { key, uid, allIds, otherIds, terms, matches };
  LABEL_IDS.releaseWhenCollected(selector, held);
  return selector;
}
