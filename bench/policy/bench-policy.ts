/**
 * make bench-policy: 1,000 policy rules over 3,000 identities (one workload, one proxy each),
 * run in one process on this tree and, side by side, on a baseline build (main at aaf9e6b,
 * built by `make bench-policy` under build/; `--baseline DIR` names its dist/), rounds
 * interleaved so both see the same machine load.
 *
 *  - full regeneration: a new SelectorCache (the class PolicyEngine uses) fed every identity,
 *    then every selector in use, in the order `PolicyEngine.sync` feeds them on a restart: the L3
 *    part of a from-scratch build;
 *  - engine from scratch: `sync` of every workload and policy into a new PolicyEngine (identity
 *    allocation, selector cache, policy compilation; no per-proxy IR);
 *  - identity add → resources rebuilt: a workload with a new label set arrives; identity
 *    allocation, selector cache update, commit (the affected proxies' IR recompiled) and, for
 *    every proxy the commit changed, its standalone Envoy resources built, schema-checked and
 *    encoded into a snapshot, as NodeSnapshotBuilder serves them;
 *  - the network RBAC (L3/L4 ECDS) share of that, and of a proxy's first (cold) resource build.
 *
 * Times are process CPU time (the machine is shared; wall time mostly measures the neighbours),
 * medians of repeated runs.
 */
import * as path from 'path';
import type { CompiledProxyPolicy } from '../../src/policy/compiled';
import type { PolicyEngine } from '../../src/policy/engine';
import type { SelectorCache } from '../../src/policy/selector-cache';
import { IDENTITIES, RULES, RESOURCES, arrival } from './world';
import type { buildProxyResourceJson, encodeGenerated } from '../../src/envoy/proxy-resources';
import type { Snapshot } from '../../src/xds/snapshot';
import type { RedirectConfig } from '../../src/net/capture-config';

const NETWORK_RBAC_PREFIX = 'meshaccel.l4';

/** The parts of a tree's dist/ the bench drives; equal in both trees. */
interface Tree {
  name: string;
  PolicyEngine: new () => PolicyEngine;
  SelectorCache: new () => SelectorCache;
  buildProxyResourceJson: typeof buildProxyResourceJson;
  encodeGenerated: typeof encodeGenerated;
  Snapshot: typeof Snapshot;
  redirect: RedirectConfig;
}

function loadTree(name: string, dist: string): Tree {
  const load = <T>(module: string): T => require(path.join(dist, module)) as T;
  const engine = load<{ PolicyEngine: Tree['PolicyEngine'] }>('src/policy/engine');
  const cache = load<{ SelectorCache: Tree['SelectorCache'] }>('src/policy/selector-cache');
  const resources = load<{ buildProxyResourceJson: Tree['buildProxyResourceJson']; encodeGenerated: Tree['encodeGenerated'] }>('src/envoy/proxy-resources');
  const snapshot = load<{ Snapshot: Tree['Snapshot'] }>('src/xds/snapshot');
  const capture = load<{ DEFAULT_REDIRECT_CONFIG: RedirectConfig }>('src/net/capture-config');
  return {
    name,
    PolicyEngine: engine.PolicyEngine,
    SelectorCache: cache.SelectorCache,
    buildProxyResourceJson: resources.buildProxyResourceJson,
    encodeGenerated: resources.encodeGenerated,
    Snapshot: snapshot.Snapshot,
    redirect: capture.DEFAULT_REDIRECT_CONFIG,
  };
}

function cpuMs(fn: () => void): number {
  const t0 = process.cpuUsage();
  fn();
  const d = process.cpuUsage(t0);
  return (d.user + d.system) / 1000;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
}

function fmt(ms: number): string {
  return ms >= 1 ? `${ms.toFixed(2)} ms` : `${(ms * 1000).toFixed(0)} µs`;
}

/** One tree's engine with the bench's state, and its measurements. */
class Run {
  readonly engine: PolicyEngine;
  readonly full: number[] = [];
  readonly fromScratch: number[] = [];
  readonly add: number[] = [];
  readonly addNetwork: number[] = [];
  readonly changed: number[] = [];
  readonly networkShare: { resources: number; all: number }[] = [];
  readonly cold: number[] = [];
  readonly coldNetwork: number[] = [];
  private coldNext = 0;

  constructor(readonly tree: Tree) {
    this.engine = new tree.PolicyEngine();
    this.engine.sync(RESOURCES);
    this.engine.commit();
  }

  /** Selections of every selector in use, by selector key (to compare trees and caches). */
  static selections(cache: SelectorCache): Map<string, number[]> {
    return new Map([...cache.entries()].map((cs) => [cs.selector.key, [...cs.selected].sort((a, b) => a - b)]));
  }

  fullRegeneration(): SelectorCache {
    const identities = [...this.engine.identities.all()];
    const selectors = [...this.engine.selectors.entries()].map((cs) => cs.selector);
    let fresh = new this.tree.SelectorCache();
    this.full.push(
      cpuMs(() => {
        fresh = new this.tree.SelectorCache();
        for (const id of identities) fresh.addIdentity(id);
        for (const s of selectors) fresh.acquire(s);
      }),
    );
    return fresh;
  }

  engineFromScratch(): void {
    this.fromScratch.push(
      cpuMs(() => {
        new this.tree.PolicyEngine().sync(RESOURCES);
      }),
    );
  }

  /** The add, timed through the served resources; removed (untimed) afterwards. */
  identityAdd(j: number): void {
    const w = arrival(j);
    const { tree, engine } = this;
    let network = 0;
    let resources = 0;
    let all = 0;
    let changed = 0;
    const t = cpuMs(() => {
      engine.upsertWorkload(w);
      const commit = engine.commit();
      changed = commit.changed.length;
      for (const key of commit.changed) {
        const built = tree.buildProxyResourceJson(engine.proxy(key) as CompiledProxyPolicy, { mode: 'standalone', redirect: tree.redirect });
        const l4 = built.resources.filter((r) => r.name.startsWith(NETWORK_RBAC_PREFIX));
        const rest = built.resources.filter((r) => !r.name.startsWith(NETWORK_RBAC_PREFIX));
        network += cpuMs(() => tree.encodeGenerated(l4));
        tree.Snapshot.fromResources([...tree.encodeGenerated(l4), ...tree.encodeGenerated(rest)]);
        resources += l4.length;
        all += built.resources.length;
      }
    });
    this.add.push(t);
    this.addNetwork.push(network);
    this.changed.push(changed);
    this.networkShare.push({ resources, all });
    engine.removeWorkload(`Workload/${w.namespace}/${w.name}`);
    engine.commit();
  }

  /** A proxy whose resources this process has not built yet: every resource is checked and encoded. */
  coldBuild(): void {
    const { tree, engine } = this;
    const proxy = engine.proxy(`node-${(this.coldNext++ * 61 + 7) % IDENTITIES}`) as CompiledProxyPolicy;
    let network = 0;
    this.cold.push(
      cpuMs(() => {
        const built = tree.buildProxyResourceJson(proxy, { mode: 'standalone', redirect: tree.redirect });
        const l4 = built.resources.filter((r) => r.name.startsWith(NETWORK_RBAC_PREFIX));
        network = cpuMs(() => tree.encodeGenerated(l4));
        tree.encodeGenerated(built.resources.filter((r) => !r.name.startsWith(NETWORK_RBAC_PREFIX)));
      }),
    );
    this.coldNetwork.push(network);
  }
}

function sameSelections(a: Map<string, number[]>, b: Map<string, number[]>, what: string): void {
  if (a.size !== b.size) throw new Error(`${what}: ${a.size} selectors against ${b.size}`);
  for (const [key, ids] of a) {
    const other = b.get(key);
    if (!other || other.length !== ids.length || other.some((id, i) => id !== ids[i])) throw new Error(`${what}: selector ${key} differs`);
  }
}

function main(): void {
  const args = process.argv.slice(2);
  const at = args.indexOf('--baseline');
  const trees: Tree[] = [];
  // build/bench-baseline-<commit>/dist: named after the commit it was built from.
  if (at >= 0)
    trees.push(loadTree(`main ${path.basename(path.dirname(path.resolve(args[at + 1]))).replace('bench-baseline-', '')}`, path.resolve(args[at + 1])));
  trees.push(loadTree('this tree', path.resolve(__dirname, '../..')));
  const runs = trees.map((t) => new Run(t));
  const ours = runs[runs.length - 1];

  // Both trees and both ways of building must agree on every selection, or nothing is compared.
  const reference = Run.selections(ours.engine.selectors);
  for (const r of runs) {
    sameSelections(reference, Run.selections(r.engine.selectors), `${r.tree.name}: engine`);
    sameSelections(reference, Run.selections(r.fullRegeneration()), `${r.tree.name}: full regeneration`);
  }
  for (let j = 0; j < 5; j++) for (const r of runs) r.identityAdd(j);

  const ROUNDS = 31;
  for (let i = 0; i < ROUNDS; i++) for (const r of runs) r.fullRegeneration();
  for (let i = 0; i < 5; i++) for (const r of runs) r.engineFromScratch();
  const ADDS = 40;
  for (let j = 0; j < ADDS; j++) for (const r of runs) r.identityAdd(5 + j);
  for (let i = 0; i < 20; i++) for (const r of runs) r.coldBuild();

  const pairs = [...ours.engine.selectors.entries()].reduce((n, cs) => n + cs.selected.size, 0);
  console.log(
    `bench-policy: ${RULES} rules, ${IDENTITIES} identities, ${ours.engine.selectors.selectorCount} distinct selectors, ${pairs} selector→identity entries`,
  );
  console.log(`  process CPU time, medians (${ROUNDS} regenerations, ${ADDS} identity adds); a shared, loaded 2-core machine`);
  const header = runs.map((r) => r.tree.name.padStart(14)).join('');
  console.log(`  ${''.padEnd(62)}${header}`);
  const row = (label: string, value: (r: Run) => string): void => console.log(`  ${label.padEnd(62)}${runs.map((r) => value(r).padStart(14)).join('')}`);
  row('full regeneration, L3 (new selector cache, as on a restart)', (r) => fmt(median(r.full)));
  row('  minimum of the regenerations (least disturbed by neighbours)', (r) => fmt(Math.min(...r.full)));
  row('engine from scratch (sync of every workload and policy)', (r) => fmt(median(r.fromScratch)));
  row('identity add → affected proxies\u2019 resources rebuilt', (r) => fmt(median(r.add)));
  row('  proxies changed per add (median; min–max)', (r) => `${median(r.changed)} (${Math.min(...r.changed)}–${Math.max(...r.changed)})`);
  row('  per proxy changed (add time / proxies changed, median)', (r) => fmt(median(r.add.map((t, i) => t / Math.max(1, r.changed[i])))));
  row('  of which network RBAC resources (check + encode)', (r) => fmt(median(r.addNetwork)));
  row('  network RBAC resources / all rebuilt (median add)', (r) => {
    const s = [...r.networkShare].sort((a, b) => a.all - b.all)[Math.floor(r.networkShare.length / 2)];
    return `${s.resources}/${s.all}`;
  });
  row('one proxy\u2019s first resource build (cold: check + encode all)', (r) => fmt(median(r.cold)));
  row('  of which network RBAC', (r) => fmt(median(r.coldNetwork)));
  if (runs.length > 1) {
    const base = runs[0];
    console.log(
      `  ratios (${base.tree.name} / this tree): full regeneration ${(median(base.full) / median(ours.full)).toFixed(1)}x, ` +
        `engine from scratch ${(median(base.fromScratch) / median(ours.fromScratch)).toFixed(1)}x, identity add → resources ${(median(base.add) / median(ours.add)).toFixed(1)}x`,
    );
  }
  const fullMs = median(ours.full);
  const addMs = median(ours.add);
  console.log(
    `  full regeneration of ${RULES} rules x ${IDENTITIES} identities < 1 ms: ${fullMs < 1 ? 'MET' : 'MISSED'} (${fmt(fullMs)}; Cilium, Go: ~2.15 ms)`,
  );
  console.log(`  identity add → affected proxies\u2019 resources rebuilt < 1 ms: ${addMs < 1 ? 'MET' : 'MISSED'} (${fmt(addMs)})`);
}

main();
