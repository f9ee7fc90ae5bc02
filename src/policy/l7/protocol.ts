import type { L7Kind, L7RulesOf } from '../compiled';
import type { PathSegment } from '../../json/path';
import type { L7RulesSpec } from '../model';

/** What a protocol's checks may report through: an error at a path, or a regex to check as RE2. */
export interface SpecCheck {
  error(path: PathSegment[], message: string): void;
  regex(value: unknown, path: PathSegment[]): void;
}

/**
 * One L7 protocol on the policy side: the spec field it is written under (`rules.<kind>`), the
 * checks a schema cannot do, and how its rules compile. Its Envoy counterpart is in
 * `envoy/builders/l7.ts`.
 */
export interface L7Protocol<K extends L7Kind> {
  kind: K;
  /** For messages: `HTTP`, `Kafka`. */
  name: string;
  compile(specs: NonNullable<L7RulesSpec[K]>): L7RulesOf<K>;
  /** Checks one rule item (already schema-checked, but possibly of the wrong shape). */
  check(item: Record<string, unknown>, at: PathSegment[], check: SpecCheck): void;
  copy(l7: L7RulesOf<K>): L7RulesOf<K>;
  /** Rules that allow all of this protocol: what a rule without L7 rules gets on a port of this kind. */
  allowAll(): L7RulesOf<K>;
}
