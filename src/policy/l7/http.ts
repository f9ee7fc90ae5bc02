import type { HttpRule, L7RulesOf } from '../compiled';
import type { HttpRuleSpec } from '../model';
import type { L7Protocol, SpecCheck } from './protocol';

function nonEmpty(s: string | undefined): string | undefined {
  return s === undefined || s === '' ? undefined : s;
}

/** Cilium's HTTP rules: method, path and host are anchored RE2, headers must be present (or equal). */
export const HTTP_PROTOCOL: L7Protocol<'http'> = {
  kind: 'http',
  name: 'HTTP',
  compile(specs: readonly HttpRuleSpec[]): L7RulesOf<'http'> {
    const rules = specs.map((h) => {
      const out: HttpRule = {};
      if (nonEmpty(h.method)) out.method = h.method;
      if (nonEmpty(h.path)) out.path = h.path;
      if (nonEmpty(h.host)) out.host = h.host;
      if (h.headers?.length) out.headers = [...h.headers];
      if (h.headerMatches?.length) out.headerMatches = h.headerMatches.map((m) => ({ ...m }));
      return out;
    });
    return { kind: 'http', rules };
  },
  check(item, at, check: SpecCheck): void {
    for (const field of ['method', 'path', 'host']) check.regex(item[field], [...at, field]);
  },
  copy: (l7) => ({ kind: 'http', rules: l7.rules.map((h) => ({ ...h })) }),
  allowAll: () => ({ kind: 'http', rules: [] }),
};
