import type { PathSegment } from '../json/path';
import { l7Protocol, L7_KINDS } from './l7';
import type { L7PolicySpec, PortRuleSpec, RuleSection } from './model';
import type { SemanticError } from './semantic-checks';

/**
 * Rule 1 of the project: a policy meshaccel accepts is enforced exactly as written, or refused.
 * These checks run on documents that passed the schema and the semantic checks, and refuse, with
 * the field that cannot be enforced, what the given Envoy mode has no enforcement for. Lift a
 * refusal in the same change that implements its enforcement.
 */

export type EnforcementMode = 'standalone' | 'istio' | 'grpc';

/**
 * L7 kinds each mode's Envoy filters enforce; the others are validated but refused. Kafka: the
 * proxy-wasm filter on standalone's Kafka chains and, in istio mode, inserted by the generated
 * EnvoyFilter; a proxyless gRPC server runs no network filters.
 */
const ENFORCED_L7: Record<EnforcementMode, ReadonlySet<string>> = {
  standalone: new Set(['http', 'kafka']),
  istio: new Set(['http', 'kafka']),
  grpc: new Set(['http']),
};

const L7_REFUSAL: Record<EnforcementMode, (protocol: string) => string> = {
  standalone: (p) => `${p} rules are validated but not enforced yet (no Envoy filter meshaccel configures parses ${p}); refused until that enforcement lands`,
  istio: (p) => `istio mode does not enforce ${p} rules yet (meshaccel generates no EnvoyFilter for its ${p} filter); use standalone mode`,
  grpc: (p) => `grpc mode cannot enforce ${p} rules: a proxyless gRPC server runs no ${p} filter; use standalone mode`,
};

const SECTION_REFUSALS: Record<EnforcementMode, Partial<Record<RuleSection, string>>> = {
  standalone: {},
  // Ingress is enforced on every inbound chain by the generated EnvoyFilter's network RBAC.
  istio: {
    egress: 'istio mode enforces no egress rules (its EnvoyFilter patches inbound chains only); use standalone mode',
    egressDeny: 'istio mode enforces no egress rules (its EnvoyFilter patches inbound chains only); use standalone mode',
  },
  grpc: {
    egress: 'grpc mode enforces no egress rules: a proxyless gRPC client runs no RBAC',
    egressDeny: 'grpc mode enforces no egress rules: a proxyless gRPC client runs no RBAC',
  },
};

/**
 * Cilium lets a request whose header does not match through anyway and logs or rewrites the
 * header; Envoy's RBAC can only allow or deny, so neither the log nor the rewrite would happen.
 */
const MISMATCH_REFUSAL =
  "Cilium's mismatch actions (LOG, ADD, DELETE, REPLACE) let the request through and log or rewrite the header; Envoy's RBAC can only allow or deny, so meshaccel cannot enforce them (remove mismatch to require the header's value)";

/**
 * Istio: the ports the deployed EnvoyFilter patches per port (`serve --served-ports`). L7 rules
 * need their filter on the port's chains; L3/L4 rules need no per-port patch (the network RBAC
 * is on every inbound chain).
 */
export interface EnforcementTarget {
  mode: EnforcementMode;
  coveredPorts?: readonly number[];
}

function checkPorts(toPorts: readonly PortRuleSpec[] | undefined, at: PathSegment[], target: EnforcementTarget, errors: SemanticError[]): void {
  const { mode, coveredPorts } = target;
  (toPorts ?? []).forEach((pr, j) => {
    const l7 = L7_KINDS.find((kind) => pr.rules?.[kind] !== undefined);
    pr.ports.forEach((p, k) => {
      if (p.protocol === 'UDP') {
        errors.push({
          path: [...at, 'toPorts', j, 'ports', k, 'protocol'],
          message: 'meshaccel captures and enforces TCP only; a UDP rule cannot be enforced (use TCP, or ANY for the TCP part)',
        });
      }
      if (mode === 'istio' && l7 && coveredPorts && coveredPorts.length > 0 && !coveredPorts.includes(Number(p.port))) {
        errors.push({
          path: [...at, 'toPorts', j, 'ports', k, 'port'],
          message: `port ${p.port} has ${l7Protocol(l7).name} rules but the deployed EnvoyFilter covers only port${coveredPorts.length === 1 ? '' : 's'} ${coveredPorts.join(', ')}; regenerate it (meshaccel envoy render --mode istio --envoyfilter) and add the port to --served-ports`,
        });
      }
    });
    (pr.rules?.http ?? []).forEach((h, k) => {
      (h.headerMatches ?? []).forEach((hm, m) => {
        if (hm.mismatch !== undefined) {
          errors.push({ path: [...at, 'toPorts', j, 'rules', 'http', k, 'headerMatches', m, 'mismatch'], message: MISMATCH_REFUSAL });
        }
      });
    });
    for (const kind of L7_KINDS) {
      if (pr.rules?.[kind] !== undefined && !ENFORCED_L7[mode].has(kind)) {
        errors.push({ path: [...at, 'toPorts', j, 'rules', kind], message: L7_REFUSAL[mode](l7Protocol(kind).name) });
      }
    }
  });
}

/** What `mode` cannot enforce in a validated policy spec, as errors at field paths. */
export function unenforceable(spec: L7PolicySpec, target: EnforcementMode | EnforcementTarget): SemanticError[] {
  const { mode } = typeof target === 'string' ? { mode: target } : target;
  const errors: SemanticError[] = [];
  for (const section of ['ingress', 'egress', 'ingressDeny', 'egressDeny'] as const) {
    const rules = spec[section];
    if (rules === undefined) continue;
    const refusal = SECTION_REFUSALS[mode][section];
    if (refusal) errors.push({ path: ['spec', section], message: refusal });
    rules.forEach((r, i) => checkPorts(r.toPorts, ['spec', section, i], typeof target === 'string' ? { mode } : target, errors));
  }
  return errors;
}
