import type { CompiledPortPolicy, CompiledRule, HttpRule, PeerEndpoint, PeerSet, PolicyOrigin } from '../../policy/compiled';
import { tryParseCidr as parseCidr } from '../../net/cidr';
import { shareText } from '../../json/shared-text';
import { shareEncoding } from '../encoding/fragments';
import { UnenforceableError } from './unenforceable';

/**
 * Compiled HTTP rules → Envoy's RBAC HTTP filter config (envoy.extensions.filters.http.rbac.v3.RBAC),
 * as Envoy JSON. Semantics follow CompiledPortPolicy: a request is allowed if some rule's
 * peers match and some of its HTTP rules match (ALLOW policies are OR-ed); with no policy
 * left the RBAC allows nothing, which is the deny-by-default an L7 port has.
 */

export type Json = Record<string, unknown>;

export const RBAC_TYPE_URL = 'type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC';
export const RBAC_FILTER_NAME = 'envoy.filters.http.rbac';

export interface RbacOptions {
  /** 'ingress': peers are the downstream (principals); 'egress': peers are destinations (permissions). */
  direction: 'ingress' | 'egress';
  /** Add mTLS principal names (Istio); otherwise peers are matched by address only. */
  mtlsPrincipals: boolean;
  /**
   * With mtlsPrincipals: a selected workload is its principal AND its address (Istio, where every
   * peer has mTLS). Without it, principal OR address (gRPC mode, whose clients may be plaintext).
   */
  exactPeers?: boolean;
  /** RBAC policy names (default `<ns>/<name>#<index>`); istio mode names them `meshaccel:...` to tell them from Istio's own. */
  policyName?: (rule: CompiledRule, index: number) => string;
}

export interface RbacCompilation {
  /** envoy.extensions.filters.http.rbac.v3.RBAC as Envoy JSON (no "@type"). */
  rbac: Json;
  /** Every policy that contributed, for error messages. */
  origins: PolicyOrigin[];
  /** Things RBAC cannot express (header mismatch actions, rules selecting no peer). */
  warnings: string[];
  /** The rule behind each policy name. */
  policyOrigins: Record<string, PolicyOrigin>;
}

function regexMatch(regex: string): Json {
  return { safe_regex: { regex } };
}

function headerRegex(name: string, regex: string): Json {
  return { header: { name, string_match: regexMatch(regex) } };
}

function headerExact(name: string, value: string | undefined): Json {
  return value === undefined ? { header: { name, present_match: true } } : { header: { name, string_match: { exact: value } } };
}

function andPermissions(parts: Json[]): Json {
  if (parts.length === 0) return { any: true };
  if (parts.length === 1) return parts[0];
  return { and_rules: { rules: parts } };
}

function orPermissions(parts: Json[]): Json {
  if (parts.length === 1) return parts[0];
  return { or_rules: { rules: parts } };
}

/** Cilium's `headers: ["X-Token"]` (presence), `["X-Token: abc"]` or `["X-Token abc"]` (exact value). */
function parseHeaderString(text: string): { name: string; value?: string } {
  const m = /^\s*([^:\s]+):?\s*(.*?)\s*$/.exec(text);
  if (!m) return { name: text.trim().toLowerCase() };
  return { name: m[1].toLowerCase(), value: m[2] === '' ? undefined : m[2] };
}

/** One HttpRule: AND of its method/path/host/header conditions. */
export function httpRulePermission(rule: HttpRule, origin: PolicyOrigin): Json {
  const parts: Json[] = [];
  if (rule.method) parts.push(headerRegex(':method', rule.method));
  if (rule.path) parts.push(headerRegex(':path', rule.path));
  if (rule.host) parts.push(headerRegex(':authority', rule.host));
  for (const h of rule.headers ?? []) {
    const { name, value } = parseHeaderString(h);
    parts.push(headerExact(name, value));
  }
  for (const hm of rule.headerMatches ?? []) {
    // `policy check` and the loader refuse mismatch actions (see policy/enforceability.ts); this
    // guards compiled policies that did not come through them.
    if (hm.mismatch) {
      throw new UnenforceableError(`header ${hm.name} has the mismatch action ${hm.mismatch}, which RBAC cannot carry out (it can only allow or deny)`, [
        { origin },
      ]);
    }
    parts.push(headerExact(hm.name.toLowerCase(), hm.value));
  }
  return andPermissions(parts);
}

/**
 * CIDR string → CidrRange, or undefined when malformed. PGV only bounds prefix_len by 128, but
 * Envoy (and gRPC) reject an IPv4 prefix over 32 when they build the matcher, so check here.
 */
export function cidrRange(cidr: string): Json | undefined {
  const c = parseCidr(cidr.trim());
  return c && { address_prefix: c.address, prefix_len: c.prefix };
}

/**
 * `{[field]: CidrRange}` per address, the same frozen object every time it is asked for (a
 * workload's address is a peer in many rules, a selector's list is rebuilt whenever one of its
 * identities changes). Undefined for a malformed CIDR.
 */
const ADDRESS_MATCHERS = { recent: new Map<string, Json | null>(), older: new Map<string, Json | null>() };
const ADDRESS_MATCHERS_LIMIT = 65536;

function addressMatcher(field: 'direct_remote_ip' | 'destination_ip', cidr: string): Json | undefined {
  const key = `${field} ${cidr}`;
  let m = ADDRESS_MATCHERS.recent.get(key);
  if (m === undefined) {
    m = ADDRESS_MATCHERS.older.get(key);
    if (m === undefined) {
      const range = cidrRange(cidr);
      // Shared, so its check and encoding are kept: it is in the lists of every selector that selects it.
      m = range ? shareEncoding({ [field]: range }) : null;
    }
    ADDRESS_MATCHERS.recent.set(key, m);
    if (ADDRESS_MATCHERS.recent.size >= ADDRESS_MATCHERS_LIMIT) {
      ADDRESS_MATCHERS.older = ADDRESS_MATCHERS.recent;
      ADDRESS_MATCHERS.recent = new Map();
    }
  }
  return m ?? undefined;
}

function addressMatchers(field: 'direct_remote_ip' | 'destination_ip', cidrs: readonly string[], origin: PolicyOrigin, warnings: string[]): Json[] {
  const out: Json[] = [];
  for (const c of cidrs) {
    const m = addressMatcher(field, c);
    // Dropping a peer from an ALLOW policy only narrows access: fail closed, and say so.
    if (m) out.push(m);
    else warnings.push(`policy ${origin.policy}: "${c}" is not a CIDR; that peer is not allowed`);
  }
  return out;
}

function cidrRanges(cidrs: readonly string[], origin: PolicyOrigin, warnings: string[]): Json[] {
  const out: Json[] = [];
  for (const c of cidrs) {
    const r = cidrRange(c);
    // Dropping a peer from an ALLOW policy only narrows access: fail closed, and say so.
    if (r) out.push(r);
    else warnings.push(`policy ${origin.policy}: "${c}" is not a CIDR; that peer is not allowed`);
  }
  return out;
}

/** Istio's principal names are SPIFFE URIs; the compiled form may carry them without scheme. */
export function spiffeUri(principal: string): string {
  return /^[a-z][a-z0-9+.-]*:\/\//i.test(principal) ? principal : `spiffe://${principal}`;
}

/** `cidr` minus `except`: an AND of the range and NOT any exception, through `wrap`. */
function cidrSetMatchers(peers: PeerSet, origin: PolicyOrigin, warnings: string[], kind: 'principal' | 'permission'): Json[] {
  const field = kind === 'principal' ? 'direct_remote_ip' : 'destination_ip';
  const out: Json[] = [];
  for (const set of peers.cidrSets ?? []) {
    const [range] = cidrRanges([set.cidr], origin, warnings);
    if (!range) continue;
    const except = cidrRanges(set.except, origin, warnings).map((r) => ({ [field]: r }));
    if (except.length === 0) out.push({ [field]: range });
    else if (kind === 'principal')
      out.push({ and_ids: { ids: [{ [field]: range }, { not_id: except.length === 1 ? except[0] : { or_ids: { ids: except } } }] } });
    else out.push({ and_rules: { rules: [{ [field]: range }, { not_rule: except.length === 1 ? except[0] : { or_rules: { rules: except } } }] } });
  }
  return out;
}

function peerPrincipals(
  peers: PeerSet,
  endpoints: readonly PeerEndpoint[] | undefined,
  mtls: boolean,
  exact: boolean,
  origin: PolicyOrigin,
  warnings: string[],
): Json[] {
  if (peers.any) return [{ any: true }];
  if (mtls && exact && endpoints) return exactPeers(peers, endpoints, origin, warnings);
  // direct_remote_ip, not remote_ip: Envoy derives remote_ip from X-Forwarded-For unless the
  // HCM sets use_remote_address, so a client could claim any peer address in a header.
  const ids: Json[] = addressMatchers('direct_remote_ip', peers.cidrs, origin, warnings);
  ids.push(...cidrSetMatchers(peers, origin, warnings, 'principal'));
  if (mtls) for (const p of peers.principals) ids.push({ authenticated: { principal_name: { exact: spiffeUri(p) } } });
  return ids;
}

/**
 * With mTLS, a selected workload is its principal AND one of its addresses (`and_ids`): the
 * principal alone would admit every pod of that service account, the address alone any peer
 * that reuses it. CIDR peers of the rule stay address-only.
 */
function exactPeers(peers: PeerSet, endpoints: readonly PeerEndpoint[], origin: PolicyOrigin, warnings: string[]): Json[] {
  const endpointCidrs = new Set(endpoints.flatMap((e) => e.cidrs));
  const ids: Json[] = addressMatchers(
    'direct_remote_ip',
    peers.cidrs.filter((c) => !endpointCidrs.has(c)),
    origin,
    warnings,
  );
  ids.push(...cidrSetMatchers(peers, origin, warnings, 'principal'));
  for (const e of endpoints) {
    const addresses = addressMatchers('direct_remote_ip', e.cidrs, origin, warnings);
    if (addresses.length === 0) continue;
    const principal = { authenticated: { principal_name: { exact: spiffeUri(e.principal) } } };
    ids.push({ and_ids: { ids: [principal, addresses.length === 1 ? addresses[0] : { or_ids: { ids: addresses } }] } });
  }
  return ids;
}

/**
 * A peer set's matchers, built once and shared, frozen, by every RBAC that names the same peers:
 * the engine hands every rule whose peers are one selector that selector's address and
 * principal lists (the same objects, replaced only when its identities change), so an identity
 * add rebuilds the matchers of the selectors it changed and every other rule, proxy and rebuild
 * reuses them. Keyed by the address list, then by everything else the matchers read. Only
 * warning-free results are kept (a warning names the rule that asked).
 */
interface SharedMatchers {
  variant: string;
  any: boolean;
  principals: readonly string[];
  cidrSets: PeerSet['cidrSets'];
  endpoints: readonly PeerEndpoint[] | undefined;
  ids: readonly Json[];
}

const PEER_MATCHERS = new WeakMap<readonly string[], SharedMatchers[]>();
/** Distinct variants kept per address list: a few per mode and direction. */
const PEER_MATCHER_VARIANTS = 8;

function sharedPeerMatchers(
  peers: PeerSet,
  endpoints: readonly PeerEndpoint[] | undefined,
  variant: string,
  warnings: string[],
  build: (warnings: string[]) => Json[],
): Json[] {
  const kept = PEER_MATCHERS.get(peers.cidrs);
  const same = (m: SharedMatchers): boolean =>
    m.variant === variant && m.any === peers.any && m.principals === peers.principals && m.cidrSets === peers.cidrSets && m.endpoints === endpoints;
  const hit = kept?.find(same);
  if (hit) return hit.ids as Json[];
  const own: string[] = [];
  const ids = build(own);
  if (own.length > 0) {
    warnings.push(...own);
    return ids;
  }
  // Shared by every RBAC of these peers, and so are its check and encoding, and its items' (an
  // address's matcher is in the lists of every selector that selects it, old and new).
  const entry: SharedMatchers = {
    variant,
    any: peers.any,
    principals: peers.principals,
    cidrSets: peers.cidrSets,
    endpoints,
    ids: shareText(shareEncoding(ids)),
  };
  if (!kept) PEER_MATCHERS.set(peers.cidrs, [entry]);
  else {
    kept.push(entry);
    if (kept.length > PEER_MATCHER_VARIANTS) kept.shift();
  }
  return ids;
}

function policyName(rule: CompiledRule, index: number): string {
  return `${rule.origin.policy}#${index}`;
}

/**
 * The L7 condition of one rule as an RBAC permission: `{any: true}` when the rule has no L7
 * rules of the port's kind (or allows all of them). Each L7 builder supplies its own.
 */
export type L7Permission = (rule: CompiledRule, warnings: string[]) => Json;

/** HTTP's L7 condition: OR of the rule's HTTP rules, each an AND of its conditions. */
export const httpPermission: L7Permission = (rule) => {
  const http = rule.l7?.kind === 'http' ? rule.l7.rules : [];
  return http.length === 0 ? { any: true } : orPermissions(http.map((h) => httpRulePermission(h, rule.origin)));
};

/** RBAC for one port's HTTP rules; an empty `rules` (or all unusable) denies every request. */
export function compileHttpRules(port: CompiledPortPolicy, options: RbacOptions): RbacCompilation {
  return compileRbac(port, options, httpPermission);
}

export interface RbacPolicies {
  policies: Record<string, Json>;
  /** The rule behind each policy name, for `policy trace`. */
  policyOrigins: Record<string, PolicyOrigin>;
  origins: PolicyOrigin[];
  warnings: string[];
}

/**
 * One RBAC policy per rule of `port`, with `l7` as each rule's L7 (or port) condition, added to
 * `into`; `name` makes the policy names (unique within one RBAC).
 */
export function addRbacPolicies(
  into: RbacPolicies,
  port: CompiledPortPolicy,
  options: RbacOptions,
  l7Permission: L7Permission,
  name: (rule: CompiledRule, index: number) => string = policyName,
): void {
  const { policies, origins, warnings } = into;
  port.rules.forEach((rule, index) => {
    if (!origins.some((o) => o.policy === rule.origin.policy)) origins.push(rule.origin);
    const l7 = l7Permission(rule, warnings);
    // A proxy serving several workloads: a rule meant for some of them must not open the port
    // for the others, so it also names the local addresses it applies to.
    const local = rule.local === undefined ? undefined : cidrRanges(rule.local, rule.origin, warnings);
    let permissions: Json[];
    let principals: Json[];
    if (options.direction === 'ingress') {
      const mtls = options.mtlsPrincipals;
      const exact = options.exactPeers === true;
      principals = sharedPeerMatchers(rule.peers, rule.peerEndpoints, `principals ${mtls} ${exact}`, warnings, (w) =>
        peerPrincipals(rule.peers, rule.peerEndpoints, mtls, exact, rule.origin, w),
      );
      // Inbound, the local workload is the connection's (original) destination.
      permissions = local === undefined ? [l7] : local.length === 0 ? [] : [andPermissions([orPermissions(local.map((r) => ({ destination_ip: r }))), l7])];
    } else {
      // Egress: the downstream is the local workload; the peers are where it connects to.
      principals = local === undefined ? [{ any: true }] : local.map((r) => ({ direct_remote_ip: r }));
      const destinations = rule.peers.any
        ? []
        : sharedPeerMatchers(rule.peers, undefined, 'destinations', warnings, (w) => [
            ...addressMatchers('destination_ip', rule.peers.cidrs, rule.origin, w),
            ...cidrSetMatchers(rule.peers, rule.origin, w, 'permission'),
          ]);
      permissions = rule.peers.any ? [l7] : destinations.length === 0 ? [] : [andPermissions([orPermissions(destinations), l7])];
    }
    if (principals.length === 0 || permissions.length === 0) {
      warnings.push(
        `policy ${rule.origin.policy}: rule ${index} on port ${port.port} selects no peer address${options.mtlsPrincipals ? ' or principal' : ''}; it allows nothing`,
      );
      return;
    }
    let key = name(rule, index);
    for (let n = 2; policies[key] !== undefined; n++) key = `${name(rule, index)}~${n}`;
    policies[key] = { permissions, principals };
    into.policyOrigins[key] = rule.origin;
  });
}

export function emptyRbacPolicies(): RbacPolicies {
  return { policies: {}, policyOrigins: {}, origins: [], warnings: [] };
}

/** RBAC for one port's rules with `l7` as each rule's L7 condition; no usable rule denies everything. */
export function compileRbac(port: CompiledPortPolicy, options: RbacOptions, l7Permission: L7Permission): RbacCompilation {
  const into = emptyRbacPolicies();
  addRbacPolicies(into, port, options, l7Permission, options.policyName);
  return { rbac: { rules: { action: 'ALLOW', policies: into.policies } }, origins: into.origins, warnings: into.warnings, policyOrigins: into.policyOrigins };
}

/** RBAC that allows every request (ports without L7 rules, where gRPC still wants a filter). */
export function allowAllRbac(): Json {
  return { rules: { action: 'ALLOW', policies: { 'allow-all': { permissions: [{ any: true }], principals: [{ any: true }] } } } };
}

/** RBAC that allows nothing: the fail-closed default for an ECDS reference. */
export function denyAllRbac(): Json {
  return { rules: { action: 'ALLOW', policies: {} } };
}
