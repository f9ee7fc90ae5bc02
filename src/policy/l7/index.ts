import type { L7Kind, L7Rules } from '../compiled';
import type { L7RulesSpec } from '../model';
import { HTTP_PROTOCOL } from './http';
import { KAFKA_PROTOCOL } from './kafka';
import type { L7Protocol } from './protocol';

export type { L7Protocol, SpecCheck } from './protocol';

/** Every L7 protocol policy may name, by kind (the key under `toPorts[].rules`). */
const PROTOCOLS: { readonly [K in L7Kind]: L7Protocol<K> } = {
  http: HTTP_PROTOCOL,
  kafka: KAFKA_PROTOCOL,
};

export const L7_KINDS = Object.keys(PROTOCOLS) as L7Kind[];

/** The registry entry for a kind, typed for any variant (callers hold an `L7Rules` of that kind). */
export function l7Protocol(kind: L7Kind): L7Protocol<L7Kind> {
  return PROTOCOLS[kind] as unknown as L7Protocol<L7Kind>;
}

/** The L7 rules a validated port rule carries, compiled; undefined without L7 rules. */
export function compileL7(spec: L7RulesSpec | undefined): L7Rules | undefined {
  if (!spec) return undefined;
  for (const kind of L7_KINDS) {
    const items = spec[kind];
    if (items !== undefined) return l7Protocol(kind).compile(items as never) as L7Rules;
  }
  return undefined;
}

export function copyL7(l7: L7Rules): L7Rules {
  return l7Protocol(l7.kind).copy(l7 as never) as L7Rules;
}

export function allowAllL7(kind: L7Kind): L7Rules {
  return l7Protocol(kind).allowAll() as L7Rules;
}
