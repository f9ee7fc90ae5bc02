import type { PathSegment } from '../json/path';
import { tryParseCidr } from '../net/cidr';
import { l7Protocol, L7_KINDS } from './l7';
import type { IngressRuleSpec, L7PolicySpec, PortRuleSpec, RuleSection } from './model';
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
  /**
   * grpc mode: refuse what an XdsServer of @grpc/grpc-js-xds cannot enforce (`grpcJsRefusals`).
   * `policy check` sets it unless told no such server is served; `serve` leaves it unset and
   * refuses the same fields per node, when a grpc-js node's build meets them.
   */
  grpcJs?: boolean;
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
  if (mode === 'grpc' && typeof target !== 'string' && target.grpcJs === true) {
    for (const section of ['ingress', 'ingressDeny'] as const) (spec[section] ?? []).forEach((_, i) => errors.push(...grpcJsRefusals(spec, section, i)));
  }
  return errors;
}

/**
 * @grpc/grpc-js-xds (1.14.1, the newest) has its XdsServer listen on `[::]` whatever host it is
 * given, so an IPv4 client reaches its RBAC as `::ffff:a.b.c.d`: that matches no IPv4 range, and
 * checking it against any IPv6 range throws (`parseIPv6` reads `0x10.0.0.1`), uncaught, which
 * ends the server process. Every such server is reachable over IPv4 (127.0.0.1 at least, where a
 * `grpc_health_probe -addr=localhost` connects), so on these servers an address can only fail
 * to match. Principals (mTLS) and "any peer" are matched reliably.
 */
const GRPC_JS = 'an XdsServer of @grpc/grpc-js-xds sees an IPv4 client as ::ffff:a.b.c.d';
const GRPC_JS_DENY_V4 = `${GRPC_JS}, which matches no IPv4 range: this deny would not apply to the clients it names`;
const GRPC_JS_V6 = `${GRPC_JS}, and checking one against an IPv6 range throws and ends the server process: meshaccel never serves it an IPv6 range`;
const GRPC_JS_DENY_PEERS = `${GRPC_JS} (no IPv4 range matches it; an IPv6 range crashes the server), so a deny rule can name its peers only as every peer there (no from*, or fromEntities: [all]); use another gRPC server (grpc-go, grpc-java) or standalone mode`;

function cidrFamilyRefusal(cidr: string, deny: boolean): string | undefined {
  const family = tryParseCidr(cidr)?.family;
  if (family === 6) return `${cidr}: ${GRPC_JS_V6}`;
  if (family === 4 && deny) return `${cidr}: ${GRPC_JS_DENY_V4}`;
  return undefined;
}

/**
 * What an XdsServer of @grpc/grpc-js-xds cannot enforce in rule `index` of an ingress section,
 * at its fields. A deny rule names peers by address (CIDRs, world, cluster, endpoints: a
 * plaintext client of a selected workload is matched by address alone), which fails open there;
 * an allow rule may not name an IPv6 range of its own (the server would crash). What allow rules
 * derive from entities and workloads is served without its IPv6 ranges instead (fail closed),
 * and their IPv4 ranges stay (they match on a server without IPv6, and deny otherwise).
 */
export function grpcJsRefusals(spec: L7PolicySpec, section: 'ingress' | 'ingressDeny', index: number): SemanticError[] {
  const rule: IngressRuleSpec | undefined = spec[section]?.[index];
  if (!rule) return [];
  const deny = section === 'ingressDeny';
  const at = ['spec', section, index];
  const errors: SemanticError[] = [];
  const cidr = (text: string, path: PathSegment[]): void => {
    const message = cidrFamilyRefusal(text, deny);
    if (message) errors.push({ path, message });
  };
  (rule.fromCIDR ?? []).forEach((c, j) => cidr(c, [...at, 'fromCIDR', j]));
  // An IPv6 exception of an IPv4 range never matches what the range does: left out, equivalent.
  (rule.fromCIDRSet ?? []).forEach((set, j) => cidr(set.cidr, [...at, 'fromCIDRSet', j, 'cidr']));
  if (deny) {
    (rule.fromEntities ?? []).forEach((e, j) => {
      if (e !== 'all') errors.push({ path: [...at, 'fromEntities', j], message: `the ${e} entity: ${GRPC_JS_DENY_PEERS}` });
    });
    (rule.fromEndpoints ?? []).forEach((_, j) => {
      errors.push({
        path: [...at, 'fromEndpoints', j],
        message: `workloads are matched by address or principal, and a plaintext client by its address alone: ${GRPC_JS_DENY_PEERS}`,
      });
    });
  }
  return errors;
}
