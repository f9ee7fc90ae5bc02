/**
 * The policy routing TPROXY needs: packets carrying tproxyMark are looked up in routeTable,
 * which routes every destination `local` via lo, so a captured packet addressed to a foreign
 * destination is delivered to the local proxy socket instead of being forwarded.
 * The rule matches the mark exactly (mask 0xffffffff): the default proxyMark 0x539 shares bit
 * 0 with tproxyMark 0x1, and a masked match would send the proxy's upstream traffic to lo too.
 */
import type { RedirectConfig } from '../../net/capture-config';
import { hex } from './validate';
import { runIn, runRawIn, type NetnsTarget } from './exec';

/** Priority of the fwmark rule: before `main` (32766), after `local` (0). */
export const RULE_PRIORITY = 9000;

type Family = '-4' | '-6';

interface IpRuleJson {
  priority?: number;
  fwmark?: string;
  fwmask?: string;
  table?: string;
}

async function familyEnabled(target: NetnsTarget, family: Family): Promise<boolean> {
  if (family === '-4') return true;
  // IPv6 may be disabled in the namespace (or the kernel); then there is nothing to route.
  const r = await runRawIn(target, ['ip', '-6', 'route', 'show', 'table', 'local']);
  return r.code === 0;
}

async function ourRules(target: NetnsTarget, family: Family, config: Pick<RedirectConfig, 'tproxyMark' | 'routeTable'>): Promise<IpRuleJson[]> {
  const r = await runIn(target, ['ip', '-j', family, 'rule', 'show']);
  const rules = JSON.parse(r.stdout || '[]') as IpRuleJson[];
  return rules.filter((x) => x.fwmark !== undefined && Number(x.fwmark) === config.tproxyMark && String(x.table) === String(config.routeTable));
}

function localDefault(family: Family): string {
  return family === '-4' ? '0.0.0.0/0' : '::/0';
}

/** Adds the rule and route when missing; running it twice changes nothing. */
export async function ensurePolicyRouting(target: NetnsTarget, config: RedirectConfig): Promise<void> {
  const families: Family[] = [];
  for (const family of ['-4', '-6'] as const) {
    if (family === '-6' && config.captureIpv6 === false) continue;
    if (await familyEnabled(target, family)) families.push(family);
  }
  // Every check before any change, so a refused table leaves nothing behind.
  for (const family of families) await checkTableIsOurs(target, family, config.routeTable);
  for (const family of families) {
    const existing = await ourRules(target, family, config);
    const exact = existing.filter((x) => x.priority === RULE_PRIORITY && (x.fwmask === undefined || Number(x.fwmask) === 0xffffffff));
    if (exact.length === 0) {
      await runIn(target, [
        'ip',
        family,
        'rule',
        'add',
        'fwmark',
        `${hex(config.tproxyMark)}/0xffffffff`,
        'lookup',
        String(config.routeTable),
        'priority',
        String(RULE_PRIORITY),
      ]);
    }
    await runIn(target, ['ip', family, 'route', 'replace', 'local', localDefault(family), 'dev', 'lo', 'table', String(config.routeTable)]);
  }
}

interface IpRouteJson {
  type?: string;
  dst?: string;
  dev?: string;
}

/**
 * `route replace` would silently swap out someone else's default route in that table (table
 * 100 is a popular choice for multi-homing): refuse unless the table is empty or holds only
 * our `local default dev lo`.
 */
async function checkTableIsOurs(target: NetnsTarget, family: Family, table: number): Promise<void> {
  const r = await runRawIn(target, ['ip', '-j', family, 'route', 'show', 'table', String(table)]);
  if (r.code !== 0) return; // an empty table may not exist yet
  const routes = JSON.parse(r.stdout || '[]') as IpRouteJson[];
  const foreign = routes.filter((x) => !(x.type === 'local' && x.dst === 'default' && x.dev === 'lo'));
  if (foreign.length > 0) {
    throw new Error(
      `routing table ${table} (${family === '-4' ? 'IPv4' : 'IPv6'}) already holds routes that are not meshaccel's (${foreign.map((x) => `${x.type ?? 'unicast'} ${x.dst ?? '?'}${x.dev ? ` dev ${x.dev}` : ''}`).join(', ')}); choose another --route-table`,
    );
  }
}

/** Deletes every rule this agent could have added and the local default route in routeTable (either can be kept). */
export async function removePolicyRouting(
  target: NetnsTarget,
  config: Pick<RedirectConfig, 'tproxyMark' | 'routeTable'>,
  options: { keepRoute?: boolean; keepRules?: boolean } = {},
): Promise<void> {
  for (const family of ['-4', '-6'] as const) {
    if (!(await familyEnabled(target, family))) continue;
    for (const rule of options.keepRules ? [] : await ourRules(target, family, config)) {
      const argv = [
        'ip',
        family,
        'rule',
        'del',
        'fwmark',
        `${hex(config.tproxyMark)}${rule.fwmask ? `/${rule.fwmask}` : ''}`,
        'lookup',
        String(config.routeTable),
      ];
      if (rule.priority !== undefined) argv.push('priority', String(rule.priority));
      await runIn(target, argv);
    }
    if (options.keepRoute) continue;
    const r = await runRawIn(target, ['ip', family, 'route', 'del', 'local', localDefault(family), 'dev', 'lo', 'table', String(config.routeTable)]);
    if (r.code !== 0 && !/No such process|No such file or directory|does not exist|not found|Cannot find/i.test(r.stderr)) {
      throw new Error(`ip ${family} route del local ${localDefault(family)} table ${config.routeTable}: ${r.stderr.trim()}`);
    }
  }
}

export interface RoutingState {
  rules: string[];
  routes: string[];
}

export async function readPolicyRouting(target: NetnsTarget, config: Pick<RedirectConfig, 'tproxyMark' | 'routeTable'>): Promise<RoutingState> {
  const state: RoutingState = { rules: [], routes: [] };
  for (const family of ['-4', '-6'] as const) {
    if (!(await familyEnabled(target, family))) continue;
    for (const rule of await ourRules(target, family, config)) {
      state.rules.push(
        `${family === '-4' ? 'ipv4' : 'ipv6'}: ${rule.priority}: fwmark ${rule.fwmark}${rule.fwmask ? `/${rule.fwmask}` : ''} lookup ${rule.table}`,
      );
    }
    const r = await runRawIn(target, ['ip', family, 'route', 'show', 'table', String(config.routeTable)]);
    if (r.code === 0)
      state.routes.push(
        ...r.stdout
          .split('\n')
          .filter((l) => l.trim() !== '')
          .map((l) => `${family === '-4' ? 'ipv4' : 'ipv6'}: ${l.trim()} table ${config.routeTable}`),
      );
  }
  return state;
}
