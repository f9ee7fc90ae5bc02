/**
 * The node agent's redirect operations on one network namespace: apply (idempotent, the nft
 * table replaced in one transaction), remove (leaves nothing behind), status (what is installed
 * and its counters). Mode `nft` steers with nftables tproxy; mode `bpf` with a tc ingress
 * program calling bpf_sk_assign, nftables then only marks locally generated outbound flows.
 */
import * as fs from 'fs';
import * as path from 'path';
import type { RedirectConfig } from '../../net/capture-config';
import { validateRedirectConfig, withDefaults, type CaptureMode } from './validate';
import { attachedDevices, attachIngress, REDIRECT_BPFFS, detachIngress, ensureBpffs, listInterfaces, loadProgram, progPinOf, readStats } from './bpf-tc';
import { netnsPath, runRawIn, type NetnsTarget } from './exec';
import { applyNftTable, readNftTable, removeNftTable, type NftTableState } from './nft';
import { hasTool, missingPrerequisites } from './preflight';
import { ensurePolicyRouting, readPolicyRouting, removePolicyRouting, type RoutingState } from './routing';
import { deleteState, namespaceKey, readState, writeState, type InstalledState } from './state';

export class PrerequisiteError extends Error {
  constructor(readonly missing: string[]) {
    super(`missing: ${missing.join('; ')}`);
  }
}

export interface ApplyOptions {
  netns?: string;
  mode?: CaptureMode;
  /**
   * Devices for inbound capture (default every device but lo). In bpf mode the tc program is
   * attached to them (and to lo, for outbound); in nft mode the inbound chain matches them.
   * In the host namespace, name the uplink here so routed traffic is never captured.
   */
  interfaces?: string[];
}

async function preflight(mode: CaptureMode, netns: string | undefined): Promise<void> {
  const missing = await missingPrerequisites(mode, netns);
  if (missing.length > 0) throw new PrerequisiteError(missing);
}

function pinDirFor(netns: string | undefined): string {
  return path.join(REDIRECT_BPFFS, `redirect-${namespaceKey(netns)}-${Date.now().toString(36)}`);
}

/**
 * What a failed apply has to take back, newest first. Every step before the nft transaction
 * (itself all or nothing) registers how to undo itself, so a failure at any point leaves the
 * namespace as the previous apply left it.
 */
class Rollback {
  private undo: { what: string; run: () => Promise<void> }[] = [];

  add(what: string, run: () => Promise<void>): void {
    this.undo.push({ what, run });
  }

  /** Rethrows err, saying whether the namespace is back to where it was. */
  async fail(err: unknown): Promise<never> {
    const failures: string[] = [];
    for (const step of this.undo.reverse()) {
      try {
        await step.run();
      } catch (e) {
        failures.push(`${step.what}: ${(e as Error).message}`);
      }
    }
    const message = (err as Error).message ?? String(err);
    throw new Error(
      failures.length === 0
        ? `${message} (rolled back: the namespace is as the previous apply left it)`
        : `${message}; rolling back also failed (${failures.join('; ')}): run \`meshaccel redirect remove\` and apply again`,
    );
  }
}

/**
 * Captured flows are delivered through a `local` route on lo, which the kernel refuses while lo
 * is down ("Nexthop device is not up"). Bringing lo up is left to the user: it changes what
 * every process in the namespace can reach, which is not apply's to decide.
 */
async function requireLoopbackUp(target: NetnsTarget): Promise<void> {
  const where = target.netns ? `network namespace ${target.netns}` : 'the host network namespace';
  const lo = await runRawIn(target, ['ip', '-j', 'link', 'show', 'dev', 'lo']);
  if (lo.code !== 0) throw new Error(`cannot read lo in ${where}: ${lo.stderr.trim()}`);
  let flags: string[] = [];
  try {
    flags = (JSON.parse(lo.stdout) as { flags?: string[] }[])[0]?.flags ?? [];
  } catch {
    throw new Error(`cannot read lo in ${where}: unexpected output of \`ip -j link show dev lo\``);
  }
  if (!flags.includes('UP')) {
    const fix = target.netns ? `ip -n ${target.netns} link set lo up` : 'ip link set lo up';
    throw new Error(
      `loopback (lo) is down in ${where}: captured flows are delivered to the proxy through a local route on lo, which needs lo up. Bring it up first (\`${fix}\`); nothing was changed`,
    );
  }
}

export async function applyRedirect(partial: Partial<RedirectConfig>, options: ApplyOptions = {}): Promise<InstalledState> {
  const config = withDefaults(partial);
  const mode = options.mode ?? 'nft';
  validateRedirectConfig(config, mode);
  await preflight(mode, options.netns);
  const target: NetnsTarget = { netns: options.netns };
  const previous = readState(options.netns);

  // Checked before anything is installed, so a typo changes nothing.
  await requireLoopbackUp(target);
  if (options.interfaces) {
    const all = await listInterfaces(target);
    for (const d of options.interfaces) if (!all.includes(d)) throw new Error(`interface "${d}" does not exist in ${options.netns ?? 'the host namespace'}`);
  }
  const state: InstalledState = { netns: options.netns, mode, config, appliedAt: new Date().toISOString(), interfaces: options.interfaces };
  const rollback = new Rollback();
  try {
    const routingBefore = await readPolicyRouting(target, config);
    await ensurePolicyRouting(target, config);
    const [hadRules, hadRoutes] = [routingBefore.rules.length > 0, routingBefore.routes.length > 0];
    if (!hadRules || !hadRoutes) {
      rollback.add('remove the policy routing it added', () => removePolicyRouting(target, config, { keepRules: hadRules, keepRoute: hadRoutes }));
    }
    if (mode === 'bpf') {
      await ensureBpffs();
      const pinDir = pinDirFor(options.netns);
      rollback.add(`remove ${pinDir}`, async () => fs.rmSync(pinDir, { recursive: true, force: true }));
      const progPin = await loadProgram(target, pinDir, config);
      const all = await listInterfaces(target);
      const wanted = options.interfaces ?? all.filter((d) => d !== 'lo');
      const devices = [...new Set([...wanted, 'lo'])];
      const createdClsact = new Set(previous?.createdClsact ?? []);
      // A device the previous bpf apply also used gets its previous program back; others lose ours.
      const previousProg = previous?.mode === 'bpf' && previous.pinDir ? progPinOf(previous.pinDir) : undefined;
      for (const dev of devices) {
        const hadOurs = previousProg !== undefined && (previous?.devices ?? []).includes(dev) && fs.existsSync(previousProg);
        const created = await attachIngress(target, dev, progPin);
        if (created) createdClsact.add(dev);
        rollback.add(`restore the tc filter on ${dev}`, () =>
          hadOurs ? attachIngress(target, dev, previousProg!).then(() => undefined) : detachIngress(target, dev, created),
        );
      }
      state.devices = devices;
      state.createdClsact = [...createdClsact];
      state.pinDir = pinDir;
    }
    await applyNftTable(target, config, mode, { interfaces: options.interfaces });
  } catch (err) {
    return rollback.fail(err);
  }

  // Committed: retire what the previous apply installed and this one no longer uses.
  if (mode === 'bpf') {
    const createdClsact = new Set(state.createdClsact ?? []);
    for (const dev of previous?.devices ?? []) if (!(state.devices ?? []).includes(dev)) await detachIngress(target, dev, createdClsact.has(dev));
  }
  if (previous?.mode === 'bpf' && mode === 'nft') {
    for (const dev of previous.devices ?? []) await detachIngress(target, dev, (previous.createdClsact ?? []).includes(dev));
  }
  if (previous?.pinDir && previous.pinDir !== state.pinDir) fs.rmSync(previous.pinDir, { recursive: true, force: true });
  // A previous apply with another mark/table leaves a rule that would now be stale.
  if (previous && (previous.config.tproxyMark !== config.tproxyMark || previous.config.routeTable !== config.routeTable)) {
    // The local default route stays when the table is still ours under the new config.
    await removePolicyRouting(target, previous.config, { keepRoute: previous.config.routeTable === config.routeTable });
  }
  writeState(state);
  return state;
}

/**
 * Removes the table, the policy routing, tc filters and pins. Without a state file (e.g. after
 * the agent's /run was lost) it removes what `fallback` (default config) would have installed.
 */
export async function removeRedirect(options: { netns?: string } = {}, fallback: Partial<RedirectConfig> = {}): Promise<'removed' | 'namespace-gone'> {
  // A pod's namespace can vanish before the agent hears of it: its rules went with it, but the
  // agent's record and pinned BPF objects (which keep the program alive) are still to free.
  if (options.netns !== undefined && !fs.existsSync(netnsPath(options.netns)) && (readState(options.netns) || pinDirsOf(options.netns).length > 0)) {
    forgetNamespace(options.netns, readState(options.netns));
    return 'namespace-gone';
  }
  await preflight('nft', options.netns);
  const target: NetnsTarget = { netns: options.netns };
  const state = readState(options.netns);
  const config = state?.config ?? withDefaults(fallback);
  await removeNftTable(target);
  await removePolicyRouting(target, config);
  const devices = new Set([...(state?.devices ?? [])]);
  if (await hasTool(['tc', '-V'])) for (const d of await attachedDevices(target)) devices.add(d);
  for (const dev of devices) await detachIngress(target, dev, (state?.createdClsact ?? []).includes(dev));
  forgetNamespace(options.netns, state);
  return 'removed';
}

/** Pin directories of a namespace, including those of interrupted applies. */
function pinDirsOf(netns: string | undefined): string[] {
  if (!fs.existsSync(REDIRECT_BPFFS)) return [];
  // Exactly `redirect-<key>-<base36 time>`: a prefix match would also take `ns-pod-2`'s for `ns-pod`.
  const key = namespaceKey(netns).replace(/[.]/g, '\\.');
  const ours = new RegExp(`^redirect-${key}-[0-9a-z]+$`);
  return fs
    .readdirSync(REDIRECT_BPFFS)
    .filter((e) => ours.test(e))
    .map((e) => path.join(REDIRECT_BPFFS, e));
}

function forgetNamespace(netns: string | undefined, state: InstalledState | undefined): void {
  if (state?.pinDir) fs.rmSync(state.pinDir, { recursive: true, force: true });
  for (const dir of pinDirsOf(netns)) fs.rmSync(dir, { recursive: true, force: true });
  deleteState(netns);
}

export interface RedirectStatus {
  netns?: string;
  installed: boolean;
  mode?: CaptureMode;
  appliedAt?: string;
  config?: RedirectConfig;
  nft: NftTableState;
  routing: RoutingState;
  bpf?: { devices: string[]; stats: Record<string, number> };
  /** Things that will stop capture from working although rules are installed. */
  warnings: string[];
}

export async function redirectStatus(options: { netns?: string } = {}): Promise<RedirectStatus> {
  await preflight('nft', options.netns);
  const target: NetnsTarget = { netns: options.netns };
  const state = readState(options.netns);
  const config = state?.config ?? withDefaults({});
  const nft = await readNftTable(target);
  const routing = await readPolicyRouting(target, config);
  const status: RedirectStatus = {
    netns: options.netns,
    installed: nft.installed,
    mode: state?.mode ?? (nft.installed ? (nft.chains.includes('prerouting') ? 'nft' : 'bpf') : undefined),
    appliedAt: state?.appliedAt,
    config: state?.config,
    nft,
    routing,
    warnings: [],
  };
  if (status.mode === 'bpf') {
    const devices = await attachedDevices(target);
    const stats = state?.pinDir && fs.existsSync(state.pinDir) ? await readStats(state.pinDir) : {};
    status.bpf = { devices, stats };
    if (!devices.includes('lo')) status.warnings.push('bpf mode: no tc filter on lo, outbound flows are not assigned');
  }
  const lo = await runRawIn(target, ['ip', '-j', 'link', 'show', 'dev', 'lo']);
  if (nft.installed && lo.code === 0 && !/"UP"/.test(lo.stdout)) status.warnings.push('lo is down: outbound flows rerouted through lo are dropped');
  if (nft.installed && routing.rules.length === 0)
    status.warnings.push('fwmark rule missing: captured packets for foreign addresses will not be delivered locally');
  if (nft.installed && routing.routes.length === 0) status.warnings.push(`table ${config.routeTable} has no local default route`);
  return status;
}
