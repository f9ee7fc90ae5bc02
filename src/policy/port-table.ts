import type { CompiledPortPolicy, CompiledRule, L7Kind } from './compiled';

/** An L7 parser clash: one port of one proxy with rules of one L7 protocol from one place and of another from elsewhere. */
export interface L7Conflict {
  port: number;
  protocol: CompiledPortPolicy['protocol'];
  first: CompiledRule;
  second: CompiledRule;
}

/**
 * Collects one direction's rules by (port, protocol) and applies Cilium's port semantics when
 * finished: once a port has L7 rules it is deny-by-default at L7, so a rule on it without L7
 * rules gets an empty list (allow all), and all-ports rules are copied onto it likewise, so an
 * Envoy builder can evaluate every port on its own.
 */
export class PortTable {
  private readonly ports = new Map<string, CompiledPortPolicy>();
  /** The first L7 rule per listening port: TCP and ANY entries of a port share one. */
  private readonly l7Source = new Map<string, CompiledRule>();
  readonly conflicts: L7Conflict[] = [];

  /** `fill(rule, kind)`: the rule, given no L7 rules of its own, allowing all of `kind` (the engine reuses its results). */
  constructor(private readonly fill: (rule: CompiledRule, kind: L7Kind) => CompiledRule) {}

  add(port: number, protocol: CompiledPortPolicy['protocol'], rule: CompiledRule): void {
    const key = `${port}/${protocol}`;
    let entry = this.ports.get(key);
    if (!entry) this.ports.set(key, (entry = { port, protocol, rules: [] }));
    const l7 = rule.l7?.kind;
    if (l7 !== undefined) {
      // TCP and ANY rules of one port end up on one Envoy listener port, which parses one L7
      // protocol: an HTTP/Kafka clash between them is the same conflict as within one entry.
      const portKey = protocol === 'UDP' ? key : String(port);
      const first = this.l7Source.get(portKey);
      if (first && first.l7?.kind !== l7) {
        this.conflicts.push({ port, protocol, first, second: rule });
        return;
      }
      if (!first) this.l7Source.set(portKey, rule);
      entry.l7 = l7;
    }
    entry.rules.push(rule);
  }

  finish(): CompiledPortPolicy[] {
    const all = [...this.ports.values()].sort((a, b) => a.port - b.port || (a.protocol < b.protocol ? -1 : a.protocol > b.protocol ? 1 : 0));
    const wildcard = all.find((p) => p.port === 0);
    for (const entry of all) {
      const kind = entry.l7;
      if (kind === undefined) continue;
      const fill = (r: CompiledRule): CompiledRule => this.fill(r, kind);
      entry.rules = entry.rules.map(fill);
      if (wildcard && entry !== wildcard) entry.rules.push(...wildcard.rules.map(fill));
    }
    return all;
  }
}
