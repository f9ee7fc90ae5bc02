import type { CidrSet, CompiledRule, FieldRefusal, PeerSet } from '../../policy/compiled';
import { UnenforceableError } from './unenforceable';

/**
 * What an XdsServer of @grpc/grpc-js-xds can be served. Its server listens on `[::]` whatever
 * host it binds (1.14.1, the newest), so an IPv4 client reaches its RBAC as `::ffff:a.b.c.d`:
 * that matches no IPv4 range, and checking it against any IPv6 range throws, uncaught, which
 * ends the server process. Every such server is reachable over IPv4 (127.0.0.1 at least), so:
 * - no IPv6 range is ever served to it;
 * - a deny rule that names its peers (by address, or by principal, which a plaintext client
 *   does not present) would not apply to IPv4 clients: refused, like what policy/enforceability
 *   refuses at each field (`grpcJsRefusals`, carried by the rule's origin);
 * - an allow rule keeps its IPv4 ranges (they match on a server without IPv6 and deny
 *   otherwise) and its principals, and loses the IPv6 ranges its entities and workloads add:
 *   it can only deny more than written, never allow more.
 */

/** gRPC's node user agents: @grpc/grpc-js-xds sends "gRPC Node Pure JS" (its own version as user_agent_version). */
export type GrpcImplementation = 'grpc-js' | 'other';

/**
 * The implementation behind a node's `user_agent_name`. An empty one is an implementation that
 * does not say: treated as grpc-js, whose restrictions only refuse or deny more.
 */
export function grpcImplementationOf(userAgentName: string): GrpcImplementation {
  return userAgentName.trim() === '' || /^gRPC Node\b/.test(userAgentName) ? 'grpc-js' : 'other';
}

function refusalLine(r: FieldRefusal, rule: CompiledRule): string {
  const where = rule.origin.file ? `${rule.origin.file}:${r.line ?? rule.origin.line ?? 1}: ` : '';
  return `${where}${rule.origin.policy} ${r.field}: ${r.message}`;
}

function rulePath(rule: CompiledRule): string {
  return rule.origin.rule ? `spec.${rule.origin.rule.section}[${rule.origin.rule.index}]` : '(a rule)';
}

/**
 * Throws UnenforceableError when a grpc-js server would be served `allows` or `denies` (the
 * rules of one Listener) other than as written: the fields the rules' origins name, and, for
 * compiled rules that did not come through the loader, deny rules that need an address.
 */
export function refuseForGrpcJs(allows: readonly CompiledRule[], denies: readonly CompiledRule[]): void {
  const refused: string[] = [];
  const from: CompiledRule[] = [];
  for (const rule of [...denies, ...allows]) {
    const own = rule.origin.grpcJsRefusals ?? [];
    if (own.length > 0) {
      refused.push(...own.map((r) => refusalLine(r, rule)));
      from.push(rule);
    } else if (denies.includes(rule) && (!rule.peers.any || rule.local !== undefined)) {
      const what = rule.peers.any ? "applies to some of the node's workloads by their addresses" : 'names its peers by address or principal';
      refused.push(
        `${rule.origin.policy} ${rulePath(rule)}: a deny rule that ${what}, which grpc-js (it sees an IPv4 client as ::ffff:a.b.c.d) cannot enforce`,
      );
      from.push(rule);
    }
  }
  if (refused.length > 0) {
    throw new UnenforceableError(`grpc mode cannot enforce on an XdsServer of @grpc/grpc-js-xds:\n  ${[...new Set(refused)].join('\n  ')}`, from);
  }
}

const isV4 = (cidr: string): boolean => !cidr.includes(':');

/** Per list, so every rule and proxy naming the same peers shares one filtered list (and its RBAC matchers). */
const V4_LISTS = new WeakMap<readonly string[], readonly string[]>();
const V4_SETS = new WeakMap<readonly CidrSet[], readonly CidrSet[]>();
const V4_RULES = new WeakMap<CompiledRule, CompiledRule>();

function v4List(list: readonly string[]): readonly string[] {
  if (list.every(isV4)) return list;
  let kept = V4_LISTS.get(list);
  if (!kept) V4_LISTS.set(list, (kept = list.filter(isV4)));
  return kept;
}

/** IPv4 ranges only; an IPv6 exception of an IPv4 range never matched what the range does. */
function v4Sets(sets: readonly CidrSet[]): readonly CidrSet[] {
  let kept = V4_SETS.get(sets);
  if (!kept) V4_SETS.set(sets, (kept = sets.filter((s) => isV4(s.cidr)).map((s) => ({ cidr: s.cidr, except: v4List(s.except) }))));
  return kept;
}

/** `rule` as a grpc-js server is served it: without IPv6 ranges (peers, workloads, local addresses). */
export function grpcJsRule(rule: CompiledRule): CompiledRule {
  if (rule.peers.any && rule.local === undefined) return rule;
  const kept = V4_RULES.get(rule);
  if (kept) return kept;
  const peers: PeerSet = { ...rule.peers, cidrs: v4List(rule.peers.cidrs) };
  if (rule.peers.cidrSets) peers.cidrSets = v4Sets(rule.peers.cidrSets);
  const out: CompiledRule = { ...rule, peers };
  if (rule.peerEndpoints) out.peerEndpoints = rule.peerEndpoints.map((e) => ({ principal: e.principal, cidrs: v4List(e.cidrs) }));
  if (rule.local) out.local = [...v4List(rule.local)];
  V4_RULES.set(rule, out);
  return out;
}
